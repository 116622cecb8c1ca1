"""6202 支付下单 and 6301 医保订单结算结果查询: paying an uploaded order, and learning what the platform made of it.

* **6202** once the patient confirmed (or right after 6201 for a one-step payment), with the order's payToken and
  the patient's payAuthNo; orgBizSer is the call's msgid (the client fills it), so the platform's settlement
  carries it. Lost answer (catalog): 6301 — settled (or refunded since), in payment, failed or revoked: adopted as
  the answer; still unpaid: sent again. The platform never settles an order twice, and the engine never sends 6202
  again without asking 6301 first.
* Answered: the order is ``paid``. HIS hears of it only from a *final* answer: the platform's settlement callback
  (2.0 orders) or 6301 — the callback is awaited ``callback_wait_s``, then 6301 asked; a 1.0 order (no callback)
  and an answer adopted by 6301 are confirmed at once.
* **6301** (confirming): settled with amounts → the order is settled (steps.common.settle_order); still in payment
  → asked again after ``confirm_poll_s`` (doubling), parked after ``confirm_max_polls``; revoked or failed → the
  order ends unpaid; unpaid → it waits for the patient again (or its expiry).
* A refused 6202 worded ``not_payable`` (paid, closed) is confirmed by 6301; any other refusal revokes the upload.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.state import MobilePayState, Order, Parked
from yibao.mobilepay.steps.common import (
    end_order,
    envelope_input,
    lookup_6301,
    parse_time,
    query_data,
    settle_order,
    view_of,
)

__all__ = ["pay_call", "confirm_call", "apply_view"]

_ADOPTABLE = frozenset({"paying", "settled", "refunded", "failed", "revoked"})


def pay_data(cfg: ChainConfig, st: MobilePayState, order: Order) -> dict[str, Any]:
    data = {"payAuthNo": order.pay_auth_no or order.ec_token, "payOrdId": order.pay_ord_id,
            "payToken": order.pay_token, "orgCodg": cfg.org_codg, "acctUsedFlag": order.acct_used_flag,
            "chrgBchno": order.id, "feeType": "01", "mdtrtId": st.patient.mdtrt_id}
    return {k: v for k, v in data.items() if v is not None}


def pay_call(cfg: ChainConfig, st: MobilePayState, order: Order, *, not_payable: Any) -> Call[MobilePayState]:
    order_id = order.id

    def current(s: MobilePayState) -> Order | None:
        o = s.order(order_id)
        return o if o is not None and o.phase == "uploaded" and o.pay_requested else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        o.pay_msgid = reply.msgid
        o.paid_at, o.updated_at = fx.now, fx.now
        view = view_of(reply.output)
        meaning = cfg.meaning(view.ordStas) if view is not None else None
        if view is None or meaning not in _ADOPTABLE:
            o.phase, o.confirm_at = "confirming", fx.now  # an answer that says nothing final: ask
            return
        if meaning in ("failed", "revoked"):
            end_order(fx, s, o, "failed", reason=f"6202: the platform reports the order {meaning} "
                                                 f"(ordStas {view.ordStas})", reason_code="platform_failed")
            return
        o.phase = "paid"
        o.ord_stas = view.ordStas
        _keep_amounts(o, view)
        if reply.adopted or o.version == "1.0":
            o.phase, o.confirm_at = "confirming", fx.now  # 6301 said it, or no callback will come: confirm now
            if reply.adopted and meaning in ("settled", "refunded"):
                apply_view(cfg, fx, s, o, view, by="6301")
        else:
            o.confirm_at = fx.now + cfg.callback_wait  # the callback is awaited, then 6301

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        o.updated_at = fx.now
        if not_payable(refusal.text):
            o.phase, o.confirm_at = "confirming", fx.now
            return
        o.pay_requested = False
        o.phase, o.revoke_reason = "revoking", f"6202 refused: {refusal.text}"
        o.reason_code = "platform_rejected"

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        view = view_of(output)
        if view is None or cfg.meaning(view.ordStas) not in _ADOPTABLE:
            return None  # still unpaid (or unreadable): the 6202 never took effect
        return output

    return Call(f"6202:{order.id}", "6202", envelope_input(order, pay_data(cfg, st, order)), on_ok=on_ok,
                on_refused=on_refused, lookup=lookup_6301(cfg, order, found))


def _keep_amounts(o: Order, view: Any) -> None:
    o.fee_sumamt, o.own_pay_amt = view.feeSumamt, view.ownPayAmt
    o.psn_acct_pay, o.fund_pay = view.psnAcctPay, view.fundPay
    o.hi_doc_sn, o.hi_rgst_sn = view.hiDocSn or o.hi_doc_sn, view.hiRgstSn or o.hi_rgst_sn


def apply_view(cfg: ChainConfig, fx: Effects, s: MobilePayState, o: Order, view: Any, *, by: str) -> None:
    """What a 6301 answer (or an adopted one) makes of a confirming order."""
    meaning = cfg.meaning(view.ordStas)
    o.ord_stas = view.ordStas
    o.updated_at = fx.now
    ours = {r.id for r in o.refunds}
    elsewhere = [r for r in view.refdList if str(r.refStatus) == "SUCC" and str(r.appRefdSn or "") not in ours]
    if meaning == "refunded" and elsewhere and not o.settled:
        # paid, then refunded by someone else before we ever booked it — reconciliation's repair of this very
        # 单边账 (it told HIS of the payment and the refund): the order is over; HIS hears nothing more from us
        end_order(fx, s, o, "revoked", reason_code="refunded_elsewhere",
                  reason=f"paid on the platform and refunded outside this order (refund "
                         f"{elsewhere[0].appRefdSn or elsewhere[0].model_extra.get('via', '?')}); reconciliation "
                         "told HIS")
        return
    if meaning in ("settled", "refunded"):
        settle_order(cfg, fx, s, o, fee=view.feeSumamt, cash=view.ownPayAmt, acct=view.psnAcctPay,
                     fund=view.fundPay, hi_doc_sn=view.hiDocSn, hi_rgst_sn=view.hiRgstSn,
                     when=parse_time(view.traceTime), by=by)
    elif meaning == "paying":
        o.confirms += 1
        if o.confirms >= cfg.confirm_max_polls:
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"order {o.id}: 6301 still reports it in payment after {o.confirms} queries")
            return
        o.confirm_at = fx.now + min(cfg.confirm_poll * (2 ** (o.confirms - 1)), cfg.confirm_poll * 10)
    elif meaning in ("revoked", "failed"):
        end_order(fx, s, o, "revoked" if meaning == "revoked" else "failed",
                  reason=f"the platform reports the order {meaning} (ordStas {view.ordStas})",
                  reason_code=f"platform_{meaning}")
    elif meaning == "uploaded":
        o.phase, o.pay_requested = "uploaded", False  # never paid: it waits for the patient again (or expires)
    else:
        s.hold = Parked(reason_code="unknown_status",
                        reason=f"order {o.id}: 6301 answered ordStas {view.ordStas!r}, which the configuration "
                               "(YIBAO_MP_ORD_STAS) does not know")


def confirm_call(cfg: ChainConfig, st: MobilePayState, order: Order, *, not_found: Any) -> Call[MobilePayState]:
    order_id, n = order.id, order.confirms

    def current(s: MobilePayState) -> Order | None:
        o = s.order(order_id)
        return o if o is not None and o.phase == "confirming" and o.confirms == n else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        view = view_of(reply.output)
        if view is None:
            s.hold = Parked(reason_code="unreadable_answer", reason=f"order {o.id}: 6301 answer unreadable")
            return
        apply_view(cfg, fx, s, o, view, by="6301" if o.settled_by is None else o.settled_by)

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        what = "has no such order" if not_found(refusal.text) else f"refused: {refusal.text}"
        s.hold = Parked(reason_code="unknown_outcome", reason=f"order {o.id} (payOrdId {o.pay_ord_id}): 6301 {what}")

    return Call(f"6301:{order.id}:{n}", "6301", envelope_input(order, query_data(cfg, order)), on_ok=on_ok,
                on_refused=on_refused)
