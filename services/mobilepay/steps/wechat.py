"""WeChat Pay's side of an order (placeholder until the WeChat steps land)."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Action, Change, Effects
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.state import MobilePayState, Order, Refund
from yibao.mobilepay.steps.common import end_order

__all__ = ["plan", "cash_only", "wechat_action", "refund_action"]


def plan(cfg: ChainConfig, order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        return None

    return apply


def cash_only(cfg: ChainConfig, order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order(order_id)
        if o is not None and o.phase == "new":
            end_order(fx, st, o, "refused", reason="WeChat Pay is not configured", reason_code="cash_not_here")

    return apply


def wechat_action(cfg: ChainConfig, st: MobilePayState, o: Order, now: Any) -> Action | None:
    return None


def refund_action(cfg: ChainConfig, st: MobilePayState, o: Order, r: Refund) -> Action | None:
    return None
