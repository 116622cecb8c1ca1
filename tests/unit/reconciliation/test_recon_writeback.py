"""What each repair tells HIS (HisResult shapes), and that telling it again is the same message."""

from __future__ import annotations

from decimal import Decimal

from unit.reconciliation.recon_fakes import PEntry, entry
from yibao.reconciliation import writeback
from yibao.reconciliation.truth import entry_from_setlinfo


def platform_entry(e, **changes):
    return entry_from_setlinfo(PEntry.of(e, **changes).setlinfo())


def test_a_repair_sends_the_same_message_id_when_applied_again() -> None:
    first = writeback.voided(entry("S1"), run_id="R1", difference_id=7)
    again = writeback.voided(entry("S1"), run_id="R1", difference_id=7)
    assert first.message_id == again.message_id
    assert writeback.voided(entry("S1"), run_id="R1", difference_id=8).message_id != first.message_id


def test_voiding_a_settlement_tells_his_to_refund_it_without_a_cancellation_id() -> None:
    result = writeback.voided(entry("S1", "40.00"), run_id="R1", difference_id=1)
    assert (result.kind, result.setl_id, result.orig_setl_id) == ("refunded", None, "S1")
    assert result.split.medfee_sumamt == Decimal("-40.00") and result.detail["void"] is True
    assert (result.service, result.reason_code, result.detail["repair"]) == (
        "reconciliation", "reconciliation_repair", "void")


def test_voiding_a_cancellation_tells_his_the_settlement_stands() -> None:
    result = writeback.voided(entry("C1", "40.00", flag="1", orig="S1"), run_id="R1", difference_id=1)
    assert (result.kind, result.setl_id, result.refd_setl_flag) == ("settled", "S1", "0")
    assert result.split.medfee_sumamt == Decimal("40.00")


def test_adopting_a_platform_settlement_carries_its_ids_and_split() -> None:
    truth = platform_entry(entry("P1", "47.00"))
    result = writeback.adopted(truth, his_visit_id="V-9", run_id="R1", difference_id=2)
    assert (result.kind, result.his_visit_id, result.setl_id, result.msgid) == ("settled", "V-9", "P1", "MSG-P1")
    assert result.split.medfee_sumamt == Decimal("47.00") and result.clr_optins == "440100"


def test_adopting_a_platform_cancellation_is_a_negative_refund() -> None:
    cancellation = platform_entry(entry("C1", "60.00", flag="1", orig="S1"))
    result = writeback.cancellation_adopted(cancellation, entry("S1", "60.00"), run_id="R1", difference_id=3)
    assert (result.kind, result.setl_id, result.orig_setl_id) == ("refunded", "C1", "S1")
    assert result.split.medfee_sumamt == Decimal("-60.00")


def test_a_correction_sends_the_platforms_split_and_keeps_the_old_amounts() -> None:
    local = entry("S1", "100.00")
    result = writeback.corrected(local, platform_entry(local, medfee=Decimal("90.00")), run_id="R1",
                                 difference_id=4)
    assert result.split.medfee_sumamt == Decimal("90.00") and result.detail["previous"]["medfee_sumamt"] == "100.00"


def test_a_reversal_tells_his_to_settle_again() -> None:
    result = writeback.reversed_result(his_visit_id="V-1", clr_type="21", oinfno="2304", omsgid="M1", mdtrt_id="D",
                                       psn_no="P", run_id="R1", difference_id=5)
    assert (result.kind, result.visit_kind, result.step_infno, result.msgid) == ("rejected", "inpatient", "2304", "M1")


def test_manual_handling_is_a_parked_result() -> None:
    result = writeback.manual_result(his_visit_id="V-1", clr_type="11", setl_id="S1", reason="check by hand",
                                     run_id="R1", difference_id=6)
    assert (result.kind, result.reason_code) == ("parked", "reconciliation_manual")


def test_a_booked_platform_entry_has_the_ledgers_signs() -> None:
    cancellation = platform_entry(entry("C1", "60.00", flag="1", orig="S1"))
    booked = writeback.ledger_entry_of(cancellation, his_visit_id="V", message_id="m", orig_setl_id="S1")
    assert booked.refd_setl_flag == "1" and booked.medfee_sumamt == Decimal("-60.00") and booked.source == "repair"
