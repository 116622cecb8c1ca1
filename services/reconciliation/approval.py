"""Which repairs finance must approve before they are applied.

A repair *moves money* when it changes what the fund pays or what HIS books: 冲正 (2601) of a platform entry,
booking a platform entry in HIS, voiding a HIS entry, correcting HIS's amounts, booking a cancellation — and, for
mobile pay, refunding a patient (6203 / 2208) and booking a platform's mobile payment or refund in HIS. Those
need an approval unless their class is listed in ``auto_approve_classes`` and their amount is at most
``auto_approve_max_amount`` (defaults: no class listed, so every money-moving repair waits for finance).
Repairs that move nothing (``none``: the platform agrees by now; ``manual``: left to people) never wait.

The amount judged is the money the repair moves: the entry's medfee_sumamt for a reversal, a booking or a void,
the largest difference of the compared amounts for a correction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from yibao.core.money import money

__all__ = ["MONEY_MOVING_ACTIONS", "ApprovalPolicy"]

MONEY_MOVING_ACTIONS: frozenset[str] = frozenset({"reverse", "adopt", "adopt_cancellation", "void", "correct",
                                                  # the mobile-pay reconciliation's (yibao.reconciliation.mobile)
                                                  "mp_refund", "mp_book", "mp_adopt_refund",
                                                  "mp_adopt_wechat_refund", "mp_wechat_refund",
                                                  "mp_refund_as_booked", "mp_cash_refund_as_booked"})


@dataclass(frozen=True)
class ApprovalPolicy:
    auto_classes: frozenset[str]
    max_amount: Decimal

    @classmethod
    def of(cls, classes: Iterable[str], max_amount: Decimal) -> "ApprovalPolicy":
        return cls(frozenset(classes), money(max_amount))

    def needs_approval(self, diff_class: str, action: str, amount: Decimal | None) -> bool:
        if action not in MONEY_MOVING_ACTIONS:
            return False
        if diff_class not in self.auto_classes:
            return True
        return amount is None or abs(money(amount)) > self.max_amount
