"""What mobile pay tells others: HisResults to HIS (paid, refunded, refused), the verified callbacks on their
topic, and its metrics (counted once the unit of work committed).

HIS learns of a mobile payment exactly as of a counter one — a ``settled`` HisResult with the national setl_id
(``hiDocSn``), the visit (``hiRgstSn``) and the split — plus ``detail``: the channel (``mobilepay-2.0`` /
``mobilepay-1.0``, which reconciliation and reports keep apart), the order, the platform's payOrdId and the
lines paid. A refund is a ``refunded`` result: for ALL and HI the national cancellation (its setl_id, the
negated split); a cash-only refund (CASH) moves no fund money and books nothing nationally: its result carries
``detail.cash_only`` and only the cash amount. Message ids are stable (the order, the refund), so a unit of work
run again emits the same ids.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.chains.model import Effects
from yibao.core import clock, money
from yibao.core.results import HisResult, SettlementSplit, stable_id
from yibao.mobilepay.metrics import (
    CALLBACKS,
    CHANNEL_REQUESTS,
    ORDER_SECONDS,
    ORDERS,
    ORDERS_BY_PHASE,
    REFUNDS,
)
from yibao.mobilepay.state import MobilePayState, Order, Refund

__all__ = ["SERVICE", "ORDERS", "REFUNDS", "CALLBACKS", "CHANNEL_REQUESTS", "ORDERS_BY_PHASE", "ORDER_SECONDS",
           "channel_of", "split_of", "emit_result", "emit_settled", "emit_refunded", "emit_refund_refused",
           "count_order", "count_refund"]

SERVICE = "mobilepay"

def channel_of(order: Order) -> str:
    """The ledger channel of an order: reconciliation and reports keep 1.0 and 2.0 apart."""
    return f"mobilepay-{order.version}"


def split_of(order: Order) -> SettlementSplit:
    cash = order.own_pay_amt or Decimal("0")
    acct = order.psn_acct_pay or Decimal("0")
    return SettlementSplit(medfee_sumamt=order.fee_sumamt or Decimal("0"), fund_pay_sumamt=order.fund_pay or
                           Decimal("0"), psn_part_amt=money.money(cash + acct), acct_pay=acct, psn_cash_pay=cash,
                           hifp_pay=order.fund_pay or Decimal("0"))


def _base(st: MobilePayState, order: Order) -> dict[str, Any]:
    p = st.patient
    return {k: v for k, v in {"psn_no": p.psn_no, "insutype": p.insutype, "insuplc_admdvs": p.insuplc_admdvs,
                              "med_type": p.med_type, "mdtrt_id": order.hi_rgst_sn or p.mdtrt_id}.items()
            if v is not None}


def _detail(order: Order, **extra: Any) -> dict[str, Any]:
    return {"channel": channel_of(order), "order_id": order.id, "channel_name": order.channel,
            "channel_order_id": order.channel_order_id, "pay_ord_id": order.pay_ord_id,
            "med_org_ord": order.med_org_ord, **{k: v for k, v in extra.items() if v is not None}}


def emit_result(fx: Effects, st: MobilePayState, order: Order, *, kind: str, request_id: str | None,
                id_parts: tuple = (), detail: dict[str, Any] | None = None, **fields: Any) -> HisResult:
    result = HisResult(
        message_id=stable_id(SERVICE, fx.key, order.id, kind, *id_parts), his_visit_id=fx.key, visit_kind="outpatient",
        kind=kind, service=SERVICE, his_request_id=request_id,  # type: ignore[arg-type]
        **{**_base(st, order), **{k: v for k, v in fields.items() if v is not None}},
        detail=detail if detail is not None else _detail(order))
    fx.emit("his_results", result)
    return result


def emit_settled(fx: Effects, st: MobilePayState, order: Order) -> None:
    """HIS: the order is paid (its lines, the national settlement, the split)."""
    cash_only = not order.hi_doc_sn  # a CASH_ONLY WeChat order: no 医保 settlement, the WeChat order names it
    emit_result(fx, st, order, kind="settled", request_id=order.channel_order_id,
                step_infno="8802" if cash_only else "6202", msgid=order.pay_msgid,
                setl_id=order.hi_doc_sn or (order.wechat.out_trade_no if order.wechat else order.id),
                setl_time=order.setl_time or fx.now, clr_type="11",
                clr_optins=st.patient.insuplc_admdvs, refd_setl_flag="0", split=split_of(order),
                detail=_detail(order, lines=list(order.sns), settled_by=order.settled_by,
                               wechat_out_trade_no=order.wechat.out_trade_no if order.wechat else None,
                               wechat_mix_pay_type=order.wechat.mix_pay_type if order.wechat else None,
                               cash_unpaid=True if order.wechat and order.wechat.status == "unpaid" else None,
                               cash_only=True if not order.hi_doc_sn else None))
    count_order(fx, order, "settled")


def emit_refunded(fx: Effects, st: MobilePayState, order: Order, refund: Refund) -> None:
    """HIS: a refund succeeded. ALL/HI: the national cancellation (the whole settlement negated: the fund and the
    account get their part back; a HI refund leaves the patient's cash part paid, ``detail.cash_kept``). CASH: the
    cash amount only, ``detail.cash_only`` — nothing national."""
    if refund.refd_type == "CASH":
        zero = Decimal("0.00")
        split = SettlementSplit(medfee_sumamt=zero, fund_pay_sumamt=zero, psn_part_amt=-refund.cash, acct_pay=zero,
                                psn_cash_pay=-refund.cash)
        setl_id = refund.id
        extra: dict[str, Any] = {"cash_only": True}
    else:
        s = split_of(order)
        split = SettlementSplit(**{k: -v for k, v in s.model_dump().items() if isinstance(v, Decimal)})
        setl_id = refund.hi_doc_sn or refund.id
        extra = {"cash_kept": str(money.money((order.own_pay_amt or Decimal("0")) - refund.cash))
                 if refund.refd_type == "HI" else None}
    emit_result(fx, st, order, kind="refunded", request_id=refund.request_id, id_parts=(refund.id,),
                step_infno="6203", msgid=refund.id, setl_id=setl_id, orig_setl_id=order.hi_doc_sn,
                setl_time=refund.done_at or fx.now, clr_type="11", clr_optins=st.patient.insuplc_admdvs,
                refd_setl_flag="1", split=split,
                detail=_detail(order, refund_id=refund.id, refd_type=refund.refd_type, operator=refund.operator,
                               refund_cash=str(refund.cash), refund_acct=str(refund.acct), refund_fund=str(refund.fund),
                               **extra))
    count_refund(fx, order, refund, "succeeded")


def emit_refund_refused(fx: Effects, st: MobilePayState, order: Order, refund: Refund) -> None:
    emit_result(fx, st, order, kind="rejected", request_id=refund.request_id, id_parts=(refund.id,),
                step_infno="6203", reason_code=f"refund_{refund.phase}", reason=(refund.reason or refund.phase)[:1000],
                detail=_detail(order, refund_id=refund.id, refd_type=refund.refd_type))
    count_refund(fx, order, refund, refund.phase)


def count_order(fx: Effects, order: Order, outcome: str) -> None:
    version, since = order.version, order.created_at

    def count() -> None:
        ORDERS.labels(version, outcome).inc()
        ORDER_SECONDS.labels(version, outcome).observe(max(0.0, (clock.now() - since).total_seconds()))

    fx.after_commit(count)


def count_refund(fx: Effects, order: Order, refund: Refund, outcome: str) -> None:
    version, kind = order.version, refund.refd_type
    fx.after_commit(lambda: REFUNDS.labels(version, kind, outcome).inc())
