"""Repairs written back to HIS: the HisResult each repair sends on ``yibao.his.results.v1``.

Every result carries ``service="reconciliation"``, ``reason_code="reconciliation_repair"`` (or
``reconciliation_manual`` for a difference left to people) and ``detail.repair`` naming the repair, with the run
and the difference it came from. Its ``message_id`` is derived from the difference and the repair, so applying a
repair again (after a crash) sends the very same message, which HIS's inbox absorbs.

* ``adopt`` — the platform's entry booked in HIS: ``settled`` (or ``refunded`` for a cancellation) with the
  platform's setl_id, msgid, time and split.
* ``adopt_cancellation`` — ``refunded``: the platform's cancellation setl_id, the original as orig_setl_id, the
  (negative) split.
* ``void`` of a settlement — ``refunded`` with orig_setl_id = the voided setl_id, no setl_id of its own (the
  platform holds no cancellation: there was never a settlement), the split negated; ``detail.void`` is true.
  Void of a cancellation — ``settled`` again for orig_setl_id with the original's split.
* ``correct`` — ``settled`` / ``refunded`` again for the same setl_id with the platform's split;
  ``detail.previous`` holds HIS's old amounts.
* ``reverse`` — ``rejected``: the settlement whose outcome was unknown was undone by 2601; settle again.
* ``manual`` — ``parked`` with the reason, when the HIS visit is known.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.money import money
from yibao.core.results import HisResult, SettlementSplit, stable_id

from .ledger import KIND_OF_CLR_TYPE, LedgerEntry
from .truth import PlatformEntry

__all__ = [
    "SERVICE",
    "REPAIR_REASON",
    "MANUAL_REASON",
    "repair_message_id",
    "split_of",
    "negated",
    "adopted",
    "cancellation_adopted",
    "voided",
    "corrected",
    "reversed_result",
    "manual_result",
    "ledger_entry_of",
]

SERVICE = "reconciliation"
REPAIR_REASON = "reconciliation_repair"
MANUAL_REASON = "reconciliation_manual"


def repair_message_id(run_id: str, difference_id: int, action: str) -> str:
    return stable_id("reconciliation-repair", run_id, difference_id, action)


def _visit_kind(clr_type: str) -> str:
    return KIND_OF_CLR_TYPE.get(clr_type, "outpatient")


def split_of(values: dict[str, Any]) -> SettlementSplit:
    """A SettlementSplit from a stored or platform split (psn_part_amt computed when absent)."""
    data = {k: v for k, v in values.items() if k in SettlementSplit.model_fields and v is not None}
    for key in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay"):
        data.setdefault(key, "0")
    if "psn_part_amt" not in data:
        data["psn_part_amt"] = str(money(data["acct_pay"]) + money(data["psn_cash_pay"]))
    return SettlementSplit.model_validate({k: str(v) if isinstance(v, Decimal) else v for k, v in data.items()})


def negated(split: SettlementSplit) -> SettlementSplit:
    values = {k: -v for k, v in split.model_dump().items() if isinstance(v, Decimal) and k != "balc"}
    return SettlementSplit.model_validate(values)


def _entry_split(entry: LedgerEntry) -> SettlementSplit:
    if entry.split:
        return split_of(entry.split)
    return split_of({"medfee_sumamt": entry.medfee_sumamt, "fund_pay_sumamt": entry.fund_pay_sumamt,
                     "acct_pay": entry.acct_pay, "psn_cash_pay": entry.psn_cash_pay})


def _base(message_id: str, his_visit_id: str, visit_clr_type: str, run_id: str, difference_id: int, action: str,
          **fields: Any) -> HisResult:
    detail = {"repair": action, "run_id": run_id, "difference_id": difference_id, **fields.pop("detail", {})}
    return HisResult(message_id=message_id, his_visit_id=his_visit_id, visit_kind=_visit_kind(visit_clr_type),
                     service=SERVICE, reason_code=fields.pop("reason_code", REPAIR_REASON), detail=detail, **fields)


def adopted(entry: PlatformEntry, *, his_visit_id: str, run_id: str, difference_id: int) -> HisResult:
    kind = "refunded" if entry.refd_setl_flag == "1" else "settled"
    return _base(repair_message_id(run_id, difference_id, "adopt"), his_visit_id, entry.clr_type, run_id,
                 difference_id, "adopt", kind=kind, step_infno=None, msgid=entry.msgid, psn_no=entry.psn_no,
                 insutype=entry.insutype or None, insuplc_admdvs=entry.clr_optins or None,
                 med_type=entry.med_type, mdtrt_id=entry.mdtrt_id, setl_id=entry.setl_id,
                 setl_time=entry.setl_time, clr_type=entry.clr_type, clr_optins=entry.clr_optins,
                 refd_setl_flag=entry.refd_setl_flag, split=split_of(entry.split or entry.amounts()),
                 reason="booked from the platform's ledger by reconciliation")


def cancellation_adopted(cancellation: PlatformEntry, original: LedgerEntry, *, run_id: str,
                         difference_id: int) -> HisResult:
    split = split_of(cancellation.split or cancellation.amounts())
    if split.medfee_sumamt > 0:
        split = negated(split)
    return _base(repair_message_id(run_id, difference_id, "adopt_cancellation"), original.his_visit_id,
                 original.clr_type, run_id, difference_id, "adopt_cancellation", kind="refunded",
                 msgid=cancellation.msgid, psn_no=original.psn_no, insutype=original.insutype,
                 insuplc_admdvs=original.setl_optins, mdtrt_id=original.mdtrt_id, setl_id=cancellation.setl_id,
                 orig_setl_id=original.setl_id, setl_time=cancellation.setl_time, clr_type=original.clr_type,
                 clr_optins=original.setl_optins, refd_setl_flag="1", split=split,
                 reason="the platform cancelled this settlement; booked by reconciliation")


def voided(entry: LedgerEntry, *, run_id: str, difference_id: int) -> HisResult:
    split = _entry_split(entry)
    common: dict[str, Any] = dict(psn_no=entry.psn_no, insutype=entry.insutype, insuplc_admdvs=entry.setl_optins,
                                  mdtrt_id=entry.mdtrt_id, clr_type=entry.clr_type, clr_optins=entry.setl_optins,
                                  setl_time=clock.now())
    message_id = repair_message_id(run_id, difference_id, "void")
    if entry.refd_setl_flag == "1":  # the cancellation never happened: the original stands again
        return _base(message_id, entry.his_visit_id, entry.clr_type, run_id, difference_id, "void",
                     kind="settled", setl_id=entry.orig_setl_id, refd_setl_flag="0",
                     split=negated(split) if split.medfee_sumamt < 0 else split,
                     reason=f"the platform has no cancellation {entry.setl_id}: the settlement stands",
                     detail={"void": True, "voided_setl_id": entry.setl_id}, **common)
    return _base(message_id, entry.his_visit_id, entry.clr_type, run_id, difference_id, "void",
                 kind="refunded", setl_id=None, orig_setl_id=entry.setl_id, refd_setl_flag="1",
                 split=negated(split) if split.medfee_sumamt > 0 else split,
                 reason=f"the platform has no settlement {entry.setl_id}: void it in HIS",
                 detail={"void": True, "voided_setl_id": entry.setl_id}, **common)


def corrected(entry: LedgerEntry, truth: PlatformEntry, *, run_id: str, difference_id: int) -> HisResult:
    split = split_of(truth.split or truth.amounts())
    kind = "refunded" if entry.refd_setl_flag == "1" else "settled"
    previous = {"medfee_sumamt": str(entry.medfee_sumamt), "fund_pay_sumamt": str(entry.fund_pay_sumamt),
                "acct_pay": str(entry.acct_pay), "psn_cash_pay": str(entry.psn_cash_pay)}
    return _base(repair_message_id(run_id, difference_id, "correct"), entry.his_visit_id, entry.clr_type, run_id,
                 difference_id, "correct", kind=kind, msgid=entry.msgid, psn_no=entry.psn_no,
                 insutype=entry.insutype, insuplc_admdvs=entry.setl_optins, mdtrt_id=entry.mdtrt_id,
                 setl_id=entry.setl_id, orig_setl_id=entry.orig_setl_id, setl_time=entry.setl_time,
                 clr_type=entry.clr_type, clr_optins=entry.setl_optins, refd_setl_flag=entry.refd_setl_flag,
                 split=split, reason="amounts corrected to the platform's by reconciliation",
                 detail={"previous": previous})


def reversed_result(*, his_visit_id: str, clr_type: str, oinfno: str, omsgid: str, mdtrt_id: str | None,
                    psn_no: str | None, run_id: str, difference_id: int) -> HisResult:
    return _base(repair_message_id(run_id, difference_id, "reverse"), his_visit_id, clr_type, run_id,
                 difference_id, "reverse", kind="rejected", step_infno=oinfno, msgid=omsgid, mdtrt_id=mdtrt_id,
                 psn_no=psn_no, reason=f"the {oinfno} whose outcome was unknown was reversed (冲正 2601) by "
                                       "reconciliation: nothing was settled, settle again")


def manual_result(*, his_visit_id: str, clr_type: str, setl_id: str, reason: str, run_id: str,
                  difference_id: int) -> HisResult:
    return _base(repair_message_id(run_id, difference_id, "manual"), his_visit_id, clr_type, run_id,
                 difference_id, "manual", kind="parked", setl_id=setl_id, reason_code=MANUAL_REASON,
                 reason=f"reconciliation: {reason}")


def ledger_entry_of(entry: PlatformEntry, *, his_visit_id: str, message_id: str,
                    orig_setl_id: str | None = None) -> LedgerEntry:
    """The ledger entry a repair books for a platform entry (source ``repair``)."""
    refunded = entry.refd_setl_flag == "1"

    def amount(value: Decimal) -> Decimal:
        return -abs(money(value)) if refunded else money(value)

    return LedgerEntry(
        setl_id=entry.setl_id, his_visit_id=his_visit_id, visit_kind=_visit_kind(entry.clr_type),
        channel="national", insutype=entry.insutype, clr_type=entry.clr_type, setl_optins=entry.clr_optins,
        refd_setl_flag="1" if refunded else "0", setl_time=entry.setl_time,
        medfee_sumamt=amount(entry.medfee_sumamt), fund_pay_sumamt=amount(entry.fund_pay_sumamt),
        acct_pay=amount(entry.acct_pay), psn_cash_pay=amount(entry.psn_cash_pay), mdtrt_id=entry.mdtrt_id,
        psn_no=entry.psn_no, orig_setl_id=orig_setl_id, msgid=entry.msgid, split=entry.split or None,
        producer=SERVICE, message_id=message_id, source="repair",
    )
