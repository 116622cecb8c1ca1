"""What the mobile-pay calls share: the order's query input (6301/6401), the 6301 lookup, reading an order view,
settling an order from a verified answer, and giving an order's lines back."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from yibao.chains.model import Effects, Lookup
from yibao.core import clock
from yibao.core.money import ZERO, money
from yibao.envelope.mobilepay.models import OrderView
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.results import count_order, emit_settled
from yibao.mobilepay.state import MobilePayState, Order, Parked

__all__ = ["query_data", "lookup_6301", "view_of", "settle_order", "finish_settled", "release_lines", "end_order",
           "envelope_input", "parse_time"]

Found = Callable[[dict[str, Any], str], dict[str, Any] | None]


def envelope_input(order: Order, data: dict[str, Any]) -> dict[str, Any]:
    """A call's input: the business data and the order's version (the client picks the envelope by it)."""
    return {"data": data, "version": order.version}


def query_data(cfg: ChainConfig, order: Order) -> dict[str, Any]:
    """6301 / 6401 input of an uploaded order."""
    return {"payOrdId": order.pay_ord_id, "payToken": order.pay_token, "orgCodg": cfg.org_codg}


def lookup_6301(cfg: ChainConfig, order: Order, found: Found) -> Lookup:
    return Lookup("6301", envelope_input(order, query_data(cfg, order)), found=found)


def view_of(output: dict[str, Any]) -> OrderView | None:
    try:
        return OrderView.model_validate(output)
    except ValueError:
        return None


def parse_time(text: str | None) -> Any:
    """yyyyMMddHHmmss (traceTime, hiChrgTime) or yyyy-MM-dd HH:mm:ss, Asia/Shanghai; None when unreadable."""
    if not text:
        return None
    try:
        return clock.parse_datetime(text)
    except (ValueError, TypeError, AttributeError):
        return None


def settle_order(cfg: ChainConfig, fx: Effects, st: MobilePayState, order: Order, *, fee: Decimal | None,
                 cash: Decimal | None, acct: Decimal | None, fund: Decimal | None, hi_doc_sn: str | None,
                 hi_rgst_sn: str | None, when: Any, by: str) -> None:
    """The platform settled the order (a final callback, 6301, or 6202 confirmed): check the split, book it, tell
    HIS — or, for a WeChat order with a cash part, go on to WeChat Pay. A split that does not add up, or that is not
    the order's total, is never passed on: the visit is held for a person."""
    problem = None
    if None in (fee, cash, acct, fund):
        problem = "amounts missing"
    elif money(fee) != money(order.total):  # type: ignore[arg-type]
        problem = f"feeSumamt {fee} is not the order's total {order.total}"
    elif money(cash + acct + fund) != money(fee):  # type: ignore[operator]
        problem = f"ownPayAmt {cash} + psnAcctPay {acct} + fundPay {fund} ≠ feeSumamt {fee}"
    elif not hi_doc_sn:
        problem = "hiDocSn (the settlement id) missing"
    if problem:
        st.hold = Parked(reason_code="inconsistent_split",
                         reason=f"order {order.id} (payOrdId {order.pay_ord_id}) settled by {by}, but {problem}; the "
                                "platform holds it — a person must decide (never guessed)")
        return
    order.fee_sumamt, order.own_pay_amt, order.psn_acct_pay, order.fund_pay = (
        money(fee), money(cash), money(acct), money(fund))  # type: ignore[arg-type]
    order.hi_doc_sn, order.hi_rgst_sn = hi_doc_sn, hi_rgst_sn
    order.setl_time = when or fx.now
    order.settled_by = by
    order.updated_at = fx.now
    for cb in order.callbacks:
        cb.applied = True
    if order.wechat is not None and order.wechat.status == "new":
        order.phase = "wechat_ordering"  # WeChat's order next: the cash part, or the record of an insurance-only one
        return
    finish_settled(fx, st, order)


def finish_settled(fx: Effects, st: MobilePayState, order: Order) -> None:
    order.phase = "settled"
    for sn in order.sns:
        line = st.lines.get(sn)
        if line is not None and line.order_id == order.id:
            line.status = "paid"
    emit_settled(fx, st, order)


def release_lines(st: MobilePayState, order: Order) -> None:
    """The order will not be paid: its lines are pending again (those HIS reversed meanwhile are reversed; once the
    counter is settling the visit, they are the counter's)."""
    for sn in order.sns:
        line = st.lines.get(sn)
        if line is not None and line.order_id == order.id and line.status == "ordered":
            line.order_id = None
            line.status = "reversed" if line.reversed_by else ("counter" if st.counter_applied else "pending")


def end_order(fx: Effects, st: MobilePayState, order: Order, phase: str, *, reason: str | None = None,
              reason_code: str | None = None) -> None:
    """An order ends unpaid (revoked, failed, refused): its lines go back, the reason is kept, it is counted."""
    order.phase = phase  # type: ignore[assignment]
    order.updated_at = fx.now
    if reason is not None:
        order.reason = reason[:1000]
    if reason_code is not None:
        order.reason_code = reason_code
    release_lines(st, order)
    count_order(fx, order, phase)
