"""3201 对总账: the statement keys, the hospital's totals per key, and the 3201 input built from them.

Ledger semantics (national-platform.md and the simulator's README, which follow the platform): a settlement is
an entry with refd_setl_flag "0" and positive amounts, dated by its settlement time; its cancellation is a
separate entry with its own setl_id, refd_setl_flag "1" and negative amounts, dated by the cancellation time.
So "settlements minus cancellations" is the plain sum over both kinds of entries, and the count
(fixmedins_setl_cnt) counts entries of both kinds. With ``refd_setl_flag`` "0" or "1" 3201 compares one kind
only; empty compares both together (the ``net`` statement mode).

Keys are insutype × clr_type × setl_optins (setl_optins = the person's 参保地 = clr_optins of the settlement).
The keys asked are those of the hospital ledger in the period plus the configured ones, because a platform-only
entry (单边账) may be the only entry of its key and would go unnoticed if only the ledger's keys were asked.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from yibao.core import clock
from yibao.core.money import ZERO, money

__all__ = [
    "StatementKey",
    "Totals",
    "EntryLike",
    "totals_of",
    "statement_flags",
    "input_3201",
    "keys_to_ask",
    "period_bounds",
]


@dataclass(frozen=True, order=True)
class StatementKey:
    insutype: str
    clr_type: str
    setl_optins: str

    def label(self) -> str:
        return f"{self.insutype}/{self.clr_type}/{self.setl_optins}"


class EntryLike(Protocol):
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal


@dataclass
class Totals:
    """Decimal sums and the entry count of one key (and flag selection)."""

    medfee_sumamt: Decimal = ZERO
    fund_pay_sumamt: Decimal = ZERO
    acct_pay: Decimal = ZERO
    psn_cash_pay: Decimal = ZERO
    count: int = 0

    def add(self, entry: EntryLike) -> None:
        self.medfee_sumamt += entry.medfee_sumamt
        self.fund_pay_sumamt += entry.fund_pay_sumamt
        self.acct_pay += entry.acct_pay
        self.psn_cash_pay += entry.psn_cash_pay
        self.count += 1

    def merge(self, other: "Totals") -> None:
        self.medfee_sumamt += other.medfee_sumamt
        self.fund_pay_sumamt += other.fund_pay_sumamt
        self.acct_pay += other.acct_pay
        self.psn_cash_pay += other.psn_cash_pay
        self.count += other.count

    def rounded(self) -> "Totals":
        return Totals(money(self.medfee_sumamt), money(self.fund_pay_sumamt), money(self.acct_pay),
                      money(self.psn_cash_pay), self.count)


def totals_of(entries: Iterable[EntryLike], refd_setl_flag: str = "") -> dict[StatementKey, Totals]:
    """Totals per key of the entries whose flag matches (empty: every entry, settlements minus cancellations)."""
    out: dict[StatementKey, Totals] = {}
    for entry in entries:
        if refd_setl_flag and entry.refd_setl_flag != refd_setl_flag:
            continue
        key = StatementKey(entry.insutype, entry.clr_type, entry.setl_optins)
        out.setdefault(key, Totals()).add(entry)
    return {k: v.rounded() for k, v in out.items()}


def statement_flags(mode: str) -> tuple[str, ...]:
    """The refd_setl_flag values 3201 is called with: ("",) in net mode, ("0", "1") in split mode."""
    return ("0", "1") if mode == "split" else ("",)


def input_3201(key: StatementKey, totals: Totals, date_from: _dt.date, date_to: _dt.date,
               refd_setl_flag: str = "") -> dict[str, Any]:
    return {"data": {
        "insutype": key.insutype,
        "clr_type": key.clr_type,
        "setl_optins": key.setl_optins,
        "stmt_begndate": clock.format_date(date_from),
        "stmt_enddate": clock.format_date(date_to),
        "medfee_sumamt": money(totals.medfee_sumamt),
        "fund_pay_sumamt": money(totals.fund_pay_sumamt),
        "acct_pay": money(totals.acct_pay),
        "fixmedins_setl_cnt": totals.count,
        "refd_setl_flag": refd_setl_flag,
    }}


@dataclass
class _Axes:
    insutypes: set[str] = field(default_factory=set)
    clr_types: set[str] = field(default_factory=set)
    optins: set[str] = field(default_factory=set)


def keys_to_ask(ledger_keys: Iterable[StatementKey], *, insutypes: Sequence[str], clr_types: Sequence[str],
                setl_optins: Sequence[str], insutype: str | None = None,
                clr_type: str | None = None) -> list[StatementKey]:
    """Every key of the ledger, plus the configured insutypes × clr_types × optins (and the ledger's axes
    crossed with them), narrowed by the run's filters; sorted."""
    axes = _Axes(set(insutypes), set(clr_types), set(setl_optins))
    keys = set(ledger_keys)
    for key in keys:
        axes.insutypes.add(key.insutype)
        axes.clr_types.add(key.clr_type)
        axes.optins.add(key.setl_optins)
    keys |= {StatementKey(i, c, o) for i in axes.insutypes for c in axes.clr_types for o in axes.optins}
    return sorted(k for k in keys if (insutype is None or k.insutype == insutype)
                  and (clr_type is None or k.clr_type == clr_type))


def period_bounds(date_from: _dt.date, date_to: _dt.date) -> tuple[_dt.datetime, _dt.datetime]:
    """[start, end) in Asia/Shanghai: whole days, as the platform reads stmt_begndate ~ stmt_enddate."""
    start = _dt.datetime.combine(date_from, _dt.time(0), tzinfo=clock.SHANGHAI)
    end = _dt.datetime.combine(date_to + _dt.timedelta(days=1), _dt.time(0), tzinfo=clock.SHANGHAI)
    return start, end
