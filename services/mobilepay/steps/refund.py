"""6203 医保退费: a paid order refunded — all of it (ALL), the cash part (CASH) or the insurance part (HI); asked by
a channel (the patient in the app, the HIS window with the patient's authorisation) or by finance's approved repair
of a mobile 单边账 (services/reconciliation).

* The amounts are what remains refundable of the part(s) (checked when the refund is asked); appRefdSn is the
  refund's id, which the platform treats as the refund's identity.
* Lost answer (catalog): 6301 — the order's refunds list our appRefdSn: its refStatus is adopted; no trace: sent
  again with the same appRefdSn.
* SUCC: HIS gets ``refunded`` (the national cancellation for ALL/HI; the cash amount for CASH); FAIL or EXP (the
  refund expired before the fund answered): HIS and the channel get ``rejected`` with the reason; a new refund may
  be asked.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core import clock
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.results import emit_refund_refused, emit_refunded
from yibao.mobilepay.state import MobilePayState, Order, Refund
from yibao.mobilepay.steps.common import envelope_input, lookup_6301

__all__ = ["refund_call", "refund_data"]


def _wechat_cash(order: Order) -> bool:
    return order.wechat is not None and order.wechat.status == "paid" and order.wechat.cash_fee > 0


def refund_data(cfg: ChainConfig, order: Order, refund: Refund) -> dict[str, Any]:
    """6203's input. The cash part of a WeChat order went through WeChat Pay: 6203 returns the insurance part only
    (HI), WeChat the cash (steps/wechat.py)."""
    cash, kind = refund.cash, refund.refd_type
    if _wechat_cash(order):
        cash, kind = refund.cash * 0, "HI"
    data = {"payOrdId": order.pay_ord_id, "appRefdSn": refund.id, "appRefdTime": clock.format_compact(refund.asked_at),
            "totlRefdAmt": cash + refund.acct + refund.fund, "cashRefdAmt": cash, "psnAcctRefdAmt": refund.acct,
            "fundRefdAmt": refund.fund, "refdType": kind, "orgCodg": cfg.org_codg,
            "payAuthNo": refund.pay_auth_no, "ecToken": refund.ec_token}
    return {k: v for k, v in data.items() if v is not None}


def _end(fx: Effects, s: MobilePayState, o: Order, r: Refund, status: str, *, hi_doc_sn: str | None,
         reason: str | None) -> None:
    r.done_at = fx.now
    o.updated_at = fx.now
    if status == "SUCC":
        r.hi_doc_sn = hi_doc_sn
        if _wechat_cash(o) and r.cash > 0:
            r.phase = "wechat"  # the cash part next, through WeChat Pay (8804)
            return
        r.phase = "succeeded"
        emit_refunded(fx, s, o, r)
        return
    r.phase = "expired" if status == "EXP" else "failed"
    r.reason = (reason or f"refStatus {status}")[:500]
    emit_refund_refused(fx, s, o, r)


def refund_call(cfg: ChainConfig, st: MobilePayState, order: Order, refund: Refund) -> Call[MobilePayState]:
    order_id, refund_id = order.id, refund.id

    def current(s: MobilePayState) -> tuple[Order, Refund] | None:
        o = s.order(order_id)
        r = o.refund(refund_id) if o is not None else None
        return (o, r) if o is not None and r is not None and r.phase == "requested" else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        got = current(s)
        if got is None:
            return
        o, r = got
        out = reply.output
        _end(fx, s, o, r, str(out.get("refStatus") or "FAIL"), hi_doc_sn=out.get("hiDocSn") or None,
             reason=out.get("message"))

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        got = current(s)
        if got is None:
            return
        o, r = got
        _end(fx, s, o, r, "FAIL", hi_doc_sn=None, reason=f"6203 refused: {refusal.text}")

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in output.get("refdList") or []:
            if isinstance(row, dict) and str(row.get("appRefdSn") or "") == refund_id:
                return {"refStatus": row.get("refStatus"), "hiDocSn": row.get("hiDocSn"),
                        "appRefdSn": refund_id, "payOrdId": order.pay_ord_id}
        return None

    return Call(f"6203:{refund.id}", "6203", envelope_input(order, refund_data(cfg, order, refund)), on_ok=on_ok,
                on_refused=on_refused, lookup=lookup_6301(cfg, order, found))
