"""A run end to end against the stand-in platform: states, repairs, approvals, bad input, overlaps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from unit.reconciliation.recon_fakes import NOON, TODAY, PEntry, entry, txt_zip
from yibao.core import clock
from yibao.envelope.errors import BusinessRejection, FileTransferError, UnknownOutcome
from yibao.reconciliation.errors import ApprovalError, RunNotFound
from yibao.reconciliation.ledger import entry_by_setl_id, insert_entry
from yibao.reconciliation.models import RunRequest
from yibao.reconciliation.runs import differences_of, get_run, statements_of
from yibao.core.db.schema import platform_calls

TODAY_RUN = RunRequest.for_day(TODAY)


def both(platform, book, *entries):
    """Entries both sides hold."""
    book(*entries)
    platform.add(*(PEntry.of(e) for e in entries))


async def test_a_period_where_both_sides_agree_is_balanced(reconciler, platform, book) -> None:
    both(platform, book, entry("S1"), entry("S2"), entry("C1", flag="1", orig="S1"))
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "balanced" and "3 entries" in run.message
    assert platform.count("3202") == 0


async def test_a_period_with_no_data_is_balanced_and_says_so(reconciler) -> None:
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "balanced" and "no data" in run.message


async def test_split_mode_asks_3201_once_per_flag(make_reconciler, platform, book) -> None:
    both(platform, book, entry("S1"), entry("C1", flag="1", orig="S1"))
    run = await make_reconciler(statement_mode="split").run(TODAY_RUN)
    assert run.state == "balanced"
    assert sorted(i["data"]["refd_setl_flag"] for n, i in platform.calls if n == "3201") == ["0", "1"]


async def test_every_statement_is_recorded_with_its_verdict(reconciler, platform, book, engine) -> None:
    both(platform, book, entry("S1", "12.34"))
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [statement] = statements_of(conn, run.run_id)
    assert (statement.medfee_sumamt, statement.setl_cnt, statement.stmt_rslt) == (Decimal("12.34"), 1, "0")


async def test_differences_of_every_class_are_found(reconciler, platform, book, engine) -> None:
    both(platform, book, entry("OK"))
    platform.add(PEntry.of(entry("PO")))  # platform only
    book(entry("HO"))  # HIS only
    altered = entry("AM", "100.00")
    book(altered)
    platform.add(PEntry.of(altered, medfee=Decimal("90.00"), fund=Decimal("45.00")))
    original = entry("SM", "50.00")
    both(platform, book, original)
    platform.entries["SM"].status, platform.entries["SM"].cancel_setl_id = "cancelled", "SMC"
    platform.add(PEntry.of(entry("SMC", "50.00", flag="1", orig="SM")))
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "differences_found"
    with engine.connect() as conn:
        found = {d.setl_id: d.diff_class for d in differences_of(conn, run.run_id)}
    assert found == {"PO": "platform_only", "HO": "his_only", "AM": "amount_mismatch", "SM": "status_mismatch"}


async def test_repairs_wait_for_finance_by_default(reconciler, platform, book, engine, sent_results) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "differences_found" and "await finance approval" in run.message
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
        assert entry_by_setl_id(conn, "HO").status == "booked"
    assert (diff.status, diff.action, diff.needs_approval) == ("pending_approval", "void", True)
    assert sent_results() == []


async def test_approval_applies_the_repair_and_the_recheck_balances(reconciler, platform, book, engine,
                                                                    sent_results) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(TODAY_RUN)
    approved = await reconciler.approve(run.run_id, by="finance-li", reason="confirmed with the platform")
    assert approved.state == "repaired_and_balanced"
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
        assert entry_by_setl_id(conn, "HO").status == "voided"
        recheck = statements_of(conn, run.run_id, "recheck")
    assert (diff.status, diff.approved_by, diff.approval_reason) == ("repaired", "finance-li",
                                                                     "confirmed with the platform")
    assert diff.approved_at is not None and recheck and all(s.balanced for s in recheck)
    [result] = sent_results()
    assert (result.kind, result.orig_setl_id, result.reason_code) == ("refunded", "HO", "reconciliation_repair")
    assert result.split.medfee_sumamt == Decimal("-40.00")


async def test_a_rerun_after_repair_balances(reconciler, platform, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(TODAY_RUN)
    await reconciler.approve(run.run_id, by="finance-li", reason="ok")
    assert (await reconciler.run(TODAY_RUN)).state == "balanced"


async def test_repairs_within_the_policy_apply_during_the_run(make_reconciler, platform, book, sent_results) -> None:
    book(entry("HO", "40.00"))
    reconciler = make_reconciler(auto_approve_classes=["his_only"], auto_approve_max_amount="50.00")
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "repaired_and_balanced"
    assert [r.kind for r in sent_results()] == ["refunded"]


async def test_a_repair_over_the_threshold_still_waits(make_reconciler, platform, book) -> None:
    book(entry("HO", "40.00"))
    run = await make_reconciler(auto_approve_classes=["his_only"], auto_approve_max_amount="39.99").run(TODAY_RUN)
    assert run.state == "differences_found"


async def test_an_amount_mismatch_is_corrected_in_the_ledger_and_his(make_reconciler, platform, book, engine,
                                                                      sent_results) -> None:
    altered = entry("AM", "100.00")
    book(altered)
    platform.add(PEntry.of(altered, medfee=Decimal("90.00"), fund=Decimal("45.00")))
    run = await make_reconciler(auto_approve_classes=["amount_mismatch"], auto_approve_max_amount="100").run(TODAY_RUN)
    assert run.state == "repaired_and_balanced"
    with engine.connect() as conn:
        assert entry_by_setl_id(conn, "AM").medfee_sumamt == Decimal("90.00")
    [result] = sent_results()
    assert (result.kind, result.setl_id, result.split.medfee_sumamt) == ("settled", "AM", Decimal("90.00"))
    assert result.detail["previous"]["medfee_sumamt"] == "100.00"


async def test_a_platform_cancellation_is_booked_in_his(make_reconciler, platform, book, engine,
                                                        sent_results) -> None:
    original = entry("SM", "50.00")
    both(platform, book, original)
    platform.entries["SM"].status, platform.entries["SM"].cancel_setl_id = "cancelled", "SMC"
    platform.add(PEntry.of(entry("SMC", "50.00", flag="1", orig="SM")))
    run = await make_reconciler(auto_approve_classes=["status_mismatch"], auto_approve_max_amount="100").run(TODAY_RUN)
    assert run.state == "repaired_and_balanced"
    [result] = sent_results()
    assert (result.kind, result.setl_id, result.orig_setl_id) == ("refunded", "SMC", "SM")
    with engine.connect() as conn:
        assert entry_by_setl_id(conn, "SMC").medfee_sumamt == Decimal("-50.00")


def _log_call(engine, msgid: str, outcome: str, visit: str, infno: str = "2207") -> None:
    with engine.begin() as conn:
        conn.execute(platform_calls.insert().values(service="settlement", platform="national", infno=infno,
                                                    msgid=msgid, visit_key=visit, started_at=NOON, outcome=outcome))


async def test_a_timed_out_settlement_is_reversed_with_2601(make_reconciler, platform, engine, sent_results) -> None:
    platform.add(PEntry.of(entry("PO", msgid="MSG-PO")))
    _log_call(engine, "MSG-PO", "unknown", "V-7")
    run = await make_reconciler(auto_approve_classes=["platform_only"], auto_approve_max_amount="1000").run(TODAY_RUN)
    assert run.state == "repaired_and_balanced"
    [(_, reversal)] = [c for c in platform.calls if c[0] == "2601"]
    assert (reversal["omsgid"], reversal["oinfno"]) == ("MSG-PO", "2207")
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert diff.repair_msgid == reversal["msgid"] and diff.status == "repaired"
    [result] = sent_results()
    assert (result.kind, result.his_visit_id, result.msgid) == ("rejected", "V-7", "MSG-PO")


async def test_a_settlement_his_never_heard_of_is_booked_for_its_visit(make_reconciler, platform, engine,
                                                                       sent_results) -> None:
    platform.add(PEntry.of(entry("PO", "30.00", msgid="MSG-PO")))
    _log_call(engine, "MSG-PO", "success", "V-8")
    run = await make_reconciler(auto_approve_classes=["platform_only"], auto_approve_max_amount="1000").run(TODAY_RUN)
    assert run.state == "repaired_and_balanced"
    [result] = sent_results()
    assert (result.kind, result.his_visit_id, result.setl_id) == ("settled", "V-8", "PO")
    with engine.connect() as conn:
        booked = entry_by_setl_id(conn, "PO")
    assert booked.source == "repair" and booked.his_visit_id == "V-8"


async def test_a_repaired_result_coming_back_is_not_booked_twice(make_reconciler, platform, engine,
                                                                 sent_results) -> None:
    from yibao.reconciliation.ledger import record_result

    platform.add(PEntry.of(entry("PO", msgid="MSG-PO")))
    _log_call(engine, "MSG-PO", "success", "V-8")
    await make_reconciler(auto_approve_classes=["platform_only"], auto_approve_max_amount="1000").run(TODAY_RUN)
    [result] = sent_results()
    with engine.begin() as conn:
        assert record_result(conn, result) == "duplicate"


async def test_a_platform_entry_of_unknown_origin_goes_to_people(reconciler, platform, engine) -> None:
    platform.add(PEntry.of(entry("PO")))
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert diff.status == "manual" and run.state == "differences_found" and "manual" in run.message


async def test_a_2601_with_an_unknown_outcome_is_checked_before_sending_again(make_reconciler, platform,
                                                                             engine) -> None:
    platform.add(PEntry.of(entry("PO", msgid="MSG-PO")))
    _log_call(engine, "MSG-PO", "unknown", "V-7")
    platform.reverse_answer = UnknownOutcome("2601", "M1", "timeout")
    reconciler = make_reconciler(auto_approve_classes=["platform_only"], auto_approve_max_amount="1000")
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert (diff.status, run.state) == ("applying", "differences_found")
    platform.reverse_answer = None
    platform.entries["PO"].status = "reversed"  # the lost 2601 did take effect
    finished = await reconciler.approve(run.run_id, by="finance-li", reason="retry")
    assert finished.state == "repaired_and_balanced"
    assert platform.count("2601") == 1  # 5203 said it is gone: no second 2601


async def test_applying_a_repair_twice_sends_one_result(make_reconciler, platform, book, engine,
                                                        sent_results) -> None:
    from yibao.reconciliation.repairs import apply_difference

    book(entry("HO", "40.00"))
    reconciler = make_reconciler(auto_approve_classes=["his_only"], auto_approve_max_amount="50")
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert await apply_difference(reconciler.deps, diff.id) == "repaired"
    assert len(sent_results()) == 1


async def test_approval_needs_who_and_why(reconciler, book) -> None:
    book(entry("HO"))
    run = await reconciler.run(TODAY_RUN)
    with pytest.raises(ApprovalError, match="approver"):
        await reconciler.approve(run.run_id, by="", reason="x")
    with pytest.raises(ApprovalError, match="reason"):
        await reconciler.approve(run.run_id, by="li", reason=" ")


async def test_approving_when_nothing_waits_is_refused(reconciler) -> None:
    run = await reconciler.run(TODAY_RUN)
    with pytest.raises(ApprovalError, match="no repair awaits"):
        await reconciler.approve(run.run_id, by="li", reason="x")
    with pytest.raises(RunNotFound):
        await reconciler.approve("R-nope", by="li", reason="x")


async def test_a_rejected_repair_goes_to_manual_handling(reconciler, book, engine, sent_results) -> None:
    book(entry("HO"))
    run = await reconciler.run(TODAY_RUN)
    after = await reconciler.reject(run.run_id, by="finance-wang", reason="patient will pay")
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
        assert entry_by_setl_id(conn, "HO").status == "booked"
    assert (diff.status, diff.approved_by, after.state) == ("rejected", "finance-wang", "differences_found")
    assert sent_results() == []


async def test_only_the_named_differences_are_approved(reconciler, book, engine) -> None:
    book(entry("H1"), entry("H2"))
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        first, second = differences_of(conn, run.run_id)
    after = await reconciler.approve(run.run_id, by="li", reason="one", ids=[first.id])
    with engine.connect() as conn:
        assert [d.status for d in differences_of(conn, run.run_id)] == ["repaired", "pending_approval"]
    assert after.state == "differences_found"


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault, message", [
    (UnknownOutcome("3202", "H1", "read timeout"), "never returned"),
    (BusinessRejection("3202", "文件格式错误"), "文件格式错误"),
])
async def test_a_3202_that_fails_ends_the_run_failed_with_nothing_stored(reconciler, platform, book, engine,
                                                                         fault, message) -> None:
    book(entry("HO"))
    platform.faults["3202"] = fault
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "failed" and message in run.message
    with engine.connect() as conn:
        assert differences_of(conn, run.run_id) == []
        assert entry_by_setl_id(conn, "HO").status == "booked"


async def test_a_malformed_result_file_fails_the_run_with_the_reason(reconciler, platform, book) -> None:
    book(entry("HO"))
    platform.download_bytes = txt_zip("r.txt", [["P", "M", "S", "m", "X", "0", "memo"]])
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "failed" and "code table" in run.message and "line 1" in run.message


async def test_a_json_error_instead_of_the_result_fails_the_run(reconciler, platform, book) -> None:
    book(entry("HO"))
    platform.faults["9102"] = FileTransferError("9102 answered an error instead of a file: 文件已过期")
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "failed" and "文件已过期" in run.message


async def test_a_3201_that_never_returns_fails_the_run(reconciler, platform) -> None:
    platform.faults["3201"] = UnknownOutcome("3201", "H1", "reset")
    run = await reconciler.run(TODAY_RUN)
    assert run.state == "failed" and "3201" in run.message


async def test_an_overlapping_run_is_refused_naming_the_holder(reconciler, engine) -> None:
    first = await reconciler.submit(RunRequest(date_from=TODAY - dt.timedelta(days=2), date_to=TODAY))
    second = await reconciler.submit(TODAY_RUN)
    assert first.state == "running" and second.state == "refused" and first.run_id in second.message
    done = await reconciler.execute(first.run_id)
    assert done.state == "balanced"
    assert (await reconciler.submit(TODAY_RUN)).state == "running"


async def test_the_days_of_a_dead_run_are_taken_over(make_reconciler, engine) -> None:
    reconciler = make_reconciler(run_stale_after_s=0)
    dead = await reconciler.submit(TODAY_RUN)
    fresh = await reconciler.submit(TODAY_RUN)
    assert fresh.state == "running"
    with engine.connect() as conn:
        assert get_run(conn, dead.run_id).state == "failed"


async def test_submitting_the_same_run_id_twice_is_one_run(reconciler) -> None:
    first = await reconciler.submit(TODAY_RUN, run_id="C-same")
    again = await reconciler.submit(TODAY_RUN, run_id="C-same")
    assert first.run_id == again.run_id and again.state == "running"


async def test_progress_events_are_published_to_the_results_topic(reconciler, platform, book, run_events) -> None:
    both(platform, book, entry("S1"))
    run = await reconciler.run(TODAY_RUN)
    events = [e for e in run_events() if e["run_id"] == run.run_id]
    assert events[0]["state"] == "running" and events[-1]["state"] == "balanced"
    assert any(e.get("step", "").startswith("3201") for e in events)


async def test_a_difference_found_again_supersedes_the_old_one_and_keeps_its_age(reconciler, platform,
                                                                                 engine) -> None:
    platform.add(PEntry.of(entry("PO")))
    first = await reconciler.run(TODAY_RUN)
    second = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [old] = differences_of(conn, first.run_id)
        [new] = differences_of(conn, second.run_id)
    assert old.status == "superseded" and new.first_seen_at == old.first_seen_at


async def test_the_single_sided_gauges_follow_open_entries(reconciler, platform, book) -> None:
    from yibao.reconciliation import metrics

    platform.add(PEntry.of(entry("PO", "100.00")))
    book(entry("HO", "40.00"))  # (equal amounts would offset each other in 3201)
    run = await reconciler.run(TODAY_RUN)
    assert metrics.SINGLE_SIDED_OPEN._value.get() == 2
    await reconciler.approve(run.run_id, by="li", reason="void")
    assert metrics.SINGLE_SIDED_OPEN._value.get() == 1  # the platform-only one is for people


async def test_insert_entry_helper_books_once(engine) -> None:
    with engine.begin() as conn:
        assert insert_entry(conn, entry("X"))
        assert not insert_entry(conn, entry("X"))


async def test_run_clock_is_shanghai() -> None:
    assert clock.as_shanghai(NOON).utcoffset() == dt.timedelta(hours=8)


async def test_a_difference_the_platform_cannot_be_asked_about_goes_to_people(reconciler, book, engine) -> None:
    from dataclasses import replace

    book(replace(entry("HO", "40.00"), mdtrt_id=None))
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert diff.status == "manual" and "5203 cannot be asked" in diff.outcome


async def test_a_platform_that_cannot_answer_5203_leaves_the_difference_open(reconciler, platform, book,
                                                                             engine) -> None:
    book(entry("HO", "40.00"))
    platform.faults["5203"] = UnknownOutcome("5203", "M", "timeout")
    run = await reconciler.run(TODAY_RUN)
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert diff.status == "open" and "truth unknown" in diff.outcome
    assert run.state == "differences_found" and "not yet repaired" in run.message
    platform.faults.clear()
    after = await reconciler.approve(run.run_id, by="li", reason="platform back")
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert diff.status == "pending_approval" and after.state == "differences_found"
