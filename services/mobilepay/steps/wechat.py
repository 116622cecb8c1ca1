"""WeChat Pay's side of an order: the cash part of a WeChat channel's order (8802 统一支付下单, 8803 查询订单), the
notification, and refunds of the cash part (8804 申请退款, 8805 退款查询) — the insurance part is 6202's and 6203's.

* A WeChat channel's 医保 order: 6201 → 6202 (the insurance part settles) → **8802** with ``serial_no`` = the
  order's medOrgOrd, ``pay_order_id`` = its payOrdId and the split in fen: CASH_AND_INSURANCE when the patient has
  a cash part (they pay it in WeChat), INSURANCE_ONLY when not (WeChat records the order as paid). A 自费 order on a
  visit HIS registered for 医保 (医保 → 自费 for one visit) is **CASH_ONLY**: no 6201, WeChat collects it all.
* Lost answer (catalog): 8803 by out_trade_no — found: adopted; not found: placed again.
* Paid when WeChat says so: its notification (verified and decrypted by the HTTP side) with
  ``mix_pay_status`` MIX_PAY_SUCCESS, or 8803. A notification without mix_pay_status is confirmed by 8803 first.
  Only then does HIS hear of the order (``settled``).
* The cash part unpaid ``wechat_cash_wait_s`` after the order (asked once more with 8803): the insurance part is
  given back — HIS gets the settlement and its refund (6203 HI), and the order ends; a CASH_ONLY order just fails.
* A refund of a WeChat order: the insurance part by 6203 (HI), the cash part by **8804** (out_refund_no = the
  refund's id), looked up by **8805** when the answer is lost or WeChat says PROCESSING.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

from yibao.chains.model import Action, Call, Change, Effects, Lookup, Refusal, Reply, Wait
from yibao.core.money import ZERO
from yibao.envelope.mobilepay.wechat import fen
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.results import emit_refund_refused, emit_refunded
from yibao.mobilepay.state import MobilePayState, Order, Parked, Refund, WeChatOrder, refund_id_for
from yibao.mobilepay.steps.common import end_order, finish_settled

__all__ = ["plan", "cash_only", "wechat_action", "refund_action", "order_data", "uses_wechat_cash"]


def uses_wechat_cash(o: Order) -> bool:
    """Whether the order's cash part was paid through WeChat Pay (refunded through it too)."""
    return o.wechat is not None and o.wechat.status == "paid" and o.wechat.cash_fee > ZERO


def _order(st: MobilePayState, order_id: str) -> Order:
    o = st.order(order_id)
    assert o is not None, order_id
    return o


def plan(cfg: ChainConfig, order_id: str) -> Any:
    """A WeChat channel's 医保 order: its WeChat order is placed once the insurance part settled."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.wechat is None:
            o.wechat = WeChatOrder(out_trade_no=f"{o.id}W")

    return apply


def cash_only(cfg: ChainConfig, order_id: str) -> Any:
    """医保 → 自费 for one visit: WeChat collects the whole order (CASH_ONLY), no 医保 order at all."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase != "new":
            return
        if not (cfg.wechat_enabled and o.channel_kind == "wechat"):
            end_order(fx, st, o, "refused", reason="a 自费 (cash) order is paid through WeChat Pay or at the counter",
                      reason_code="cash_not_here")
            return
        o.wechat = WeChatOrder(mix_pay_type="CASH_ONLY", out_trade_no=f"{o.id}W", cash_fee=o.total)
        o.fee_sumamt, o.own_pay_amt, o.psn_acct_pay, o.fund_pay = o.total, o.total, ZERO, ZERO
        o.phase, o.updated_at = "wechat_ordering", fx.now

    return apply


def order_data(cfg: ChainConfig, st: MobilePayState, o: Order) -> dict[str, Any]:
    """8802's body: the split in fen, the mobile-pay order it pays for."""
    w = o.wechat
    assert w is not None
    cash, acct, fund = o.own_pay_amt or ZERO, o.psn_acct_pay or ZERO, o.fund_pay or ZERO
    if w.mix_pay_type == "CASH_ONLY":
        kind, fees = "CASH_ONLY", {"med_ins_gov_fee": 0, "med_ins_self_fee": 0, "med_ins_cash_fee": 0,
                                   "wechat_pay_cash_fee": fen(o.total)}
    else:
        kind = "CASH_AND_INSURANCE" if cash > ZERO else "INSURANCE_ONLY"
        fees = {"med_ins_gov_fee": fen(fund), "med_ins_self_fee": fen(acct), "med_ins_cash_fee": fen(cash),
                "wechat_pay_cash_fee": fen(cash) if cash > ZERO else 0}
    payer = {"card_type": "ID_CARD"}
    if st.patient.certno:
        payer["id_digest"] = hashlib.md5(st.patient.certno.encode()).hexdigest().upper()  # noqa: S324 - WeChat's
    data: dict[str, Any] = {
        "mix_pay_type": kind, "order_type": cfg.wechat_order_type, "appid": cfg.wechat_appid, "payer": payer,
        "out_trade_no": w.out_trade_no, "serial_no": o.med_org_ord if o.pay_ord_id else o.id,
        "pay_order_id": o.pay_ord_id, "pay_auth_no": o.pay_auth_no, "city_id": cfg.wechat_city_id,
        "med_inst_name": cfg.wechat_med_inst_name, "med_inst_no": cfg.wechat_med_inst_no,
        "med_ins_order_create_time": (o.uploaded_at or o.created_at).isoformat(timespec="seconds"),
        "total_fee": fen(o.total), "med_ins_other_fee": 0, **fees, "callback_url": cfg.wechat_notify_url,
        "attach": o.id,
    }
    return {k: v for k, v in data.items() if v not in (None, "")}


def _found_order(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
    return output if output.get("out_trade_no") else None


def _paid(order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.wechat is None or o.final:
            return
        o.wechat.status = "paid"
        for n in o.wechat.notices:
            n.applied = True
        finish_settled(fx, st, o)

    return apply


def _unpaid(order_id: str, reason: str) -> Any:
    """The cash part will not be paid: a 医保 order gives the insurance part back (HIS gets the settlement and its
    refund); a CASH_ONLY order fails."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.wechat is None or o.final:
            return
        o.wechat.status = "unpaid"
        for n in o.wechat.notices:
            n.applied = True
        if not o.hi_doc_sn:
            end_order(fx, st, o, "failed", reason=reason, reason_code="cash_unpaid")
            return
        o.reason, o.reason_code = reason, "cash_unpaid"
        finish_settled(fx, st, o)
        refund_id = refund_id_for(o.id, "bridge", "cash-unpaid")
        o.refunds.append(Refund(id=refund_id, request_id="cash-unpaid", channel="bridge", message_id=refund_id,
                                refd_type="HI", cash=ZERO, acct=o.psn_acct_pay or ZERO, fund=o.fund_pay or ZERO,
                                asked_at=fx.now, phase="requested", internal=True,
                                reason="the cash part was not paid: the insurance part is given back"))

    return apply


def _to(order_id: str, phase: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.wechat is not None and not o.final:
            for n in o.wechat.notices:
                n.applied = True
            o.phase, o.updated_at = phase, fx.now  # type: ignore[assignment]

    return apply


def wechat_action(cfg: ChainConfig, st: MobilePayState, o: Order, now: _dt.datetime) -> Action | None:
    w = o.wechat
    if w is None:
        return Change(f"no wechat order {o.id}", _unpaid(o.id, "the order has no WeChat side"))
    if o.phase == "wechat_ordering":
        return _order_call(cfg, st, o)
    if o.phase == "wechat_pending":
        fresh = [n for n in w.notices if not n.applied]
        if any(n.mix_pay_status == "MIX_PAY_SUCCESS" for n in fresh):
            return Change(f"wechat paid {o.id}", _paid(o.id))
        if fresh or (w.deadline is not None and now >= w.deadline):
            return Change(f"wechat confirm {o.id}", _to(o.id, "wechat_confirming"))
        return Wait(f"order {o.id}: the patient's cash payment in WeChat", until=w.deadline)
    if o.phase == "wechat_confirming":
        return _query_call(cfg, st, o)
    return None


def _order_call(cfg: ChainConfig, st: MobilePayState, o: Order) -> Call[MobilePayState]:
    order_id = o.id

    def current(s: MobilePayState) -> Order | None:
        x = s.order(order_id)
        return x if x is not None and x.phase == "wechat_ordering" and x.wechat is not None else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        x = current(s)
        if x is None:
            return
        w = x.wechat
        assert w is not None
        out = reply.output
        w.mix_trade_no = str(out.get("mix_trade_no") or "") or w.mix_trade_no
        w.mix_pay_type = out.get("mix_pay_type") or w.mix_pay_type
        w.cash_fee = (x.own_pay_amt or ZERO) if w.mix_pay_type != "CASH_ONLY" else x.total
        w.insurance_fee = (x.psn_acct_pay or ZERO) + (x.fund_pay or ZERO)
        status = str(out.get("mix_pay_status") or "")
        if status == "MIX_PAY_SUCCESS":
            _paid(order_id)(s, fx)
        elif status == "MIX_PAY_FAIL":
            _unpaid(order_id, "WeChat refused the payment (MIX_PAY_FAIL)")(s, fx)
        else:
            w.status, w.deadline = "created", fx.now + cfg.wechat_cash_wait
            x.phase, x.updated_at = "wechat_pending", fx.now

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        if current(s) is not None:
            _unpaid(order_id, f"8802 refused: {refusal.text}")(s, fx)

    lookup = Lookup("8803", {"data": {"out_trade_no": o.wechat.out_trade_no if o.wechat else ""}}, found=_found_order)
    return Call(f"8802:{o.id}", "8802", {"data": order_data(cfg, st, o)}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup)


def _query_call(cfg: ChainConfig, st: MobilePayState, o: Order) -> Call[MobilePayState]:
    order_id = o.id
    assert o.wechat is not None
    n = o.wechat.queries

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        x = s.order(order_id)
        if x is None or x.phase != "wechat_confirming" or x.wechat is None or x.wechat.queries != n:
            return
        w = x.wechat
        w.queries += 1
        status = str(reply.output.get("mix_pay_status") or "")
        if status == "MIX_PAY_SUCCESS":
            _paid(order_id)(s, fx)
        elif status == "MIX_PAY_CREATED" and not (w.deadline is not None and fx.now >= w.deadline):
            x.phase, x.updated_at = "wechat_pending", fx.now
        else:
            _unpaid(order_id, f"the cash part was not paid in WeChat ({status or 'no status'})")(s, fx)

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        x = s.order(order_id)
        if x is not None and x.phase == "wechat_confirming":
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"order {order_id}: 8803 refused: {refusal.text}")

    return Call(f"8803:{o.id}:{n}", "8803", {"data": {"out_trade_no": o.wechat.out_trade_no}}, on_ok=on_ok,
                on_refused=on_refused)


# --- refunds of the cash part -------------------------------------------------------------------------------------


def refund_action(cfg: ChainConfig, st: MobilePayState, o: Order, r: Refund, now: _dt.datetime) -> Action | None:
    if o.wechat is None:
        return None
    if r.wechat_refund_id == "PROCESSING":
        again = o.updated_at + _dt.timedelta(seconds=5)
        if now < again:
            return Wait(f"refund {r.id}: WeChat is processing it", until=again)
        return _refund_query(o, r)
    return _refund_call(o, r)


def _done(s: MobilePayState, fx: Effects, order_id: str, refund_id: str, status: str, reason: str | None) -> None:
    o = s.order(order_id)
    r = o.refund(refund_id) if o is not None else None
    if o is None or r is None or r.phase != "wechat":
        return
    if status == "SUCCESS":
        r.phase, r.done_at, r.wechat_refund_id = "succeeded", fx.now, "SUCCESS"
        emit_refunded(fx, s, o, r)
    elif status == "PROCESSING":
        r.wechat_refund_id = "PROCESSING"
    else:
        r.phase, r.done_at, r.reason = "failed", fx.now, (reason or f"WeChat refund {status}")[:500]
        emit_refund_refused(fx, s, o, r)
    o.updated_at = fx.now


def _refund_call(o: Order, r: Refund) -> Call[MobilePayState]:
    assert o.wechat is not None
    order_id, refund_id = o.id, r.id
    data = {"out_trade_no": o.wechat.out_trade_no, "out_refund_no": r.id,
            "reason": (r.reason or "医保移动支付退费")[:80],
            "amount": {"refund": fen(r.cash), "total": fen(o.wechat.cash_fee), "currency": "CNY"}}

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        _done(s, fx, order_id, refund_id, str(reply.output.get("status") or ""), None)

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        _done(s, fx, order_id, refund_id, "FAIL", f"8804 refused: {refusal.text}")

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        return output if output.get("out_refund_no") == refund_id else None

    return Call(f"8804:{r.id}", "8804", {"data": data}, on_ok=on_ok, on_refused=on_refused,
                lookup=Lookup("8805", {"data": {"out_refund_no": r.id}}, found=found))


def _refund_query(o: Order, r: Refund) -> Call[MobilePayState]:
    order_id, refund_id = o.id, r.id

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        status = str(reply.output.get("status") or "")
        if status == "PROCESSING":
            o2 = s.order(order_id)
            if o2 is not None:
                o2.updated_at = fx.now  # asked again a little later
            return
        _done(s, fx, order_id, refund_id, status, None)

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        _done(s, fx, order_id, refund_id, "FAIL", f"8805 refused: {refusal.text}")

    return Call(f"8805:{r.id}", "8805", {"data": {"out_refund_no": r.id}}, on_ok=on_ok, on_refused=on_refused)
