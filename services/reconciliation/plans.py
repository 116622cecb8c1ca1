"""What to do about each difference: the documented repair per class, decided from the truth (pure).

The platform's ledger is what the fund pays, so repairs bring HIS in line with the platform — except for the
one case the platform's rules give a way back: a settlement (or cancellation) *we* sent whose outcome stayed
unknown (timeout, reset) and that HIS therefore never booked. That one is undone by 冲正 2601 while still
allowed (same day, a reversible infno, the original msgid known), so the visit can be settled again normally.

============== ============================================================ ==================================
class          truth (5203, call log)                                       repair
============== ============================================================ ==================================
platform_only  gone from the platform by now                                none (nothing to do)
               our call, outcome unknown, 2601 still allowed               reverse (2601; HIS told: rejected)
               the HIS visit is known (our call log)                       adopt: book it in HIS (settled /
                                                                           refunded result, the platform's
                                                                           split)
               settled elsewhere, or cancelled since                       manual
his_only       the platform has no such entry                              void: out of the ledger, HIS gets
                                                                           the compensating result (refunded
                                                                           for a settlement, settled again for
                                                                           a cancellation)
               the platform does have it (another key or period)           manual
amount_mismatch the platform's amounts differ from HIS's                    correct: HIS gets the platform's
                                                                           split (settled / refunded again)
               they agree by now                                           none
status_mismatch the platform cancelled it, HIS did not record the          adopt_cancellation: book the
               cancellation                                                cancellation, HIS gets refunded
               valid again on the platform                                 none
               anything else (flags differ on one setl_id)                 manual
============== ============================================================ ==================================

Every money-moving repair passes the approval policy (:mod:`.approval`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from yibao.core import clock
from yibao.core.money import money

from .truth import CallInfo, PlatformEntry, infno_of

__all__ = ["Plan", "RepairContext", "plan_repair", "DiffLike", "LocalLike"]


class DiffLike(Protocol):
    diff_class: str
    setl_id: str
    clr_type: str
    msgid: str | None
    refd_setl_flag: str | None
    his_visit_id: str | None


class LocalLike(Protocol):
    setl_id: str
    refd_setl_flag: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal


@dataclass(frozen=True)
class RepairContext:
    today: _dt.date
    reversible_infnos: frozenset[str]
    same_day_only: bool = True


@dataclass(frozen=True)
class Plan:
    action: str  # none | reverse | adopt | adopt_cancellation | void | correct | manual | mobile_run (repairs.py)
    reason: str
    amount: Decimal | None = None
    oinfno: str | None = None  # reverse: the transaction to undo
    omsgid: str | None = None  # reverse: its msgid
    his_visit_id: str | None = None  # adopt: the HIS visit to write back to
    entry: PlatformEntry | None = None  # adopt / correct: the platform's record
    cancellation: PlatformEntry | None = None  # adopt_cancellation: the cancellation to book


_COMPARED = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")


def _abs(value: Decimal) -> Decimal:
    return abs(money(value))


def _reversal(diff: DiffLike, truth: PlatformEntry, call: CallInfo | None, ctx: RepairContext) -> Plan | None:
    if call is None or call.outcome != "unknown":
        return None
    infno = call.infno or infno_of(truth.clr_type or diff.clr_type, truth.refd_setl_flag)
    omsgid = call.msgid or diff.msgid or truth.msgid
    if not omsgid or infno not in ctx.reversible_infnos:
        return None
    booked_on = clock.as_shanghai(truth.setl_time).date()
    if ctx.same_day_only and booked_on != ctx.today:
        return None
    return Plan("reverse", f"our {infno} (msgid {omsgid}) ended unknown and HIS never booked it: 冲正 2601",
                amount=_abs(truth.medfee_sumamt), oinfno=infno, omsgid=omsgid, his_visit_id=call.visit_key,
                entry=truth)


def _platform_only(diff: DiffLike, truth: PlatformEntry | None, call: CallInfo | None,
                   ctx: RepairContext) -> Plan:
    if truth is None:
        return Plan("none", "the platform no longer holds this entry (reversed since)")
    if truth.refd_setl_flag == "0" and not truth.active:
        return Plan("manual", "cancelled on the platform since: HIS lacks both the settlement and its "
                              "cancellation; book them by hand")
    reversal = _reversal(diff, truth, call, ctx)
    if reversal is not None:
        return reversal
    visit = call.visit_key if call is not None else None
    if visit:
        what = "cancellation" if truth.refd_setl_flag == "1" else "settlement"
        why = "its outcome was unknown and 2601 is no longer allowed" if call and call.outcome == "unknown" \
            else "HIS never received the result"
        return Plan("adopt", f"book the platform's {what} in HIS ({why})", amount=_abs(truth.medfee_sumamt),
                    his_visit_id=visit, entry=truth)
    return Plan("manual", "no HIS visit is known for this platform entry (not sent by the bridge): "
                          "book it in HIS by hand or ask the platform to reverse it",
                amount=_abs(truth.medfee_sumamt), entry=truth)


def _his_only(local: LocalLike | None, truth: PlatformEntry | None) -> Plan:
    if local is None:
        return Plan("manual", "the entry is no longer in the hospital ledger")
    if truth is not None and truth.active:
        return Plan("manual", "the platform holds this setl_id in another key or period: check its date and "
                              "清算机构", entry=truth)
    if truth is not None and not truth.active and local.refd_setl_flag == "0":
        return Plan("manual", "the platform holds this settlement as cancelled: check the cancellation")
    what = "cancellation" if local.refd_setl_flag == "1" else "settlement"
    return Plan("void", f"the platform has no such {what}: void it in HIS", amount=_abs(local.medfee_sumamt))


def _amount_mismatch(local: LocalLike | None, truth: PlatformEntry | None) -> Plan:
    if local is None or truth is None:
        return Plan("manual", "one side no longer holds the entry", entry=truth)
    differences = [abs(money(getattr(truth, k)) - money(getattr(local, k))) for k in _COMPARED]
    if not any(differences):
        return Plan("none", "the amounts agree by now", entry=truth)
    return Plan("correct", "HIS takes the platform's amounts", amount=max(differences), entry=truth)


def _status_mismatch(local: LocalLike | None, truth: PlatformEntry | None,
                     cancellation: PlatformEntry | None) -> Plan:
    if local is None or truth is None:
        return Plan("manual", "one side no longer holds the entry", entry=truth)
    if truth.refd_setl_flag != local.refd_setl_flag:
        return Plan("manual", f"refd_setl_flag differs (HIS {local.refd_setl_flag}, platform "
                              f"{truth.refd_setl_flag}) on one setl_id", entry=truth)
    if truth.active:
        return Plan("none", "valid on the platform again: the statuses agree by now", entry=truth)
    if cancellation is None:
        return Plan("manual", "cancelled on the platform, but its cancellation cannot be read (5203)", entry=truth)
    return Plan("adopt_cancellation", f"the platform cancelled it ({cancellation.setl_id}): book the "
                                      "cancellation in HIS", amount=_abs(cancellation.medfee_sumamt), entry=truth,
                cancellation=cancellation)


def plan_repair(diff: DiffLike, *, local: LocalLike | None, truth: PlatformEntry | None,
                cancellation: PlatformEntry | None = None, call: CallInfo | None = None,
                ctx: RepairContext) -> Plan:
    """The repair of one difference (see the table in the module docstring)."""
    if diff.diff_class == "platform_only":
        return _platform_only(diff, truth, call, ctx)
    if diff.diff_class == "his_only":
        return _his_only(local, truth)
    if diff.diff_class == "amount_mismatch":
        return _amount_mismatch(local, truth)
    if diff.diff_class == "status_mismatch":
        return _status_mismatch(local, truth, cancellation)
    return Plan("manual", f"unknown difference class {diff.diff_class!r}")
