"""Classification of 3202 rows, the repair of each class, and the approval policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from unit.reconciliation.recon_fakes import NOON, TODAY, PEntry, entry
from yibao.reconciliation.approval import ApprovalPolicy
from yibao.reconciliation.classify import classify
from yibao.reconciliation.plans import RepairContext, plan_repair
from yibao.reconciliation.result_file import ResultRow
from yibao.reconciliation.truth import CallInfo, entry_from_setlinfo

CTX = RepairContext(today=TODAY, reversible_infnos=frozenset({"2207", "2208", "2304", "2305"}))


def row(setl_id: str, cls: str, code: str = "1", **kw) -> ResultRow:
    return ResultRow(member="r.txt", line=1, setl_id=setl_id, stmt_rslt=code, diff_class=cls, **kw)


def lookup_of(*entries):
    table = {e.setl_id: e for e in entries}
    return lambda ids: {i: table[i] for i in ids if i in table}


# --- classification ----------------------------------------------------------------------------------------


def test_the_hospital_side_is_attached_to_each_difference() -> None:
    local = entry("S2", "30.00", channel="mobilepay")
    [diff] = classify([row("S2", "his_only", "2")], lookup_of(local), clr_type="11", setl_optins="440100")
    assert (diff.his_medfee_sumamt, diff.channel, diff.his_visit_id) == (Decimal("30.00"), "mobilepay", "V-S2")
    assert (diff.mdtrt_id, diff.psn_no) == ("M-S2", "P-S2")


def test_a_platform_only_row_has_no_hospital_amounts() -> None:
    [diff] = classify([row("S1", "platform_only", psn_no="P1", mdtrt_id="M1", msgid="MSG")], lookup_of(),
                      clr_type="11", setl_optins="440100")
    assert diff.his_medfee_sumamt is None and diff.channel == "national" and diff.msgid == "MSG"


def test_a_platform_only_row_the_ledger_holds_elsewhere_says_so() -> None:
    [diff] = classify([row("S1", "platform_only")], lookup_of(entry("S1")), clr_type="11", setl_optins="440100")
    assert "another key or period" in diff.memo


def test_the_ledger_is_looked_up_in_batches() -> None:
    asked: list[int] = []

    def lookup(ids):
        asked.append(len(ids))
        return {}

    classify([row(f"S{i}", "platform_only") for i in range(1200)], lookup, clr_type="11", setl_optins="x",
             batch=500)
    assert asked == [500, 500, 200]


# --- the truth ---------------------------------------------------------------------------------------------


def truth(e, **changes):
    return entry_from_setlinfo(PEntry.of(e, **changes).setlinfo())


def test_a_5203_answer_becomes_a_platform_entry() -> None:
    t = truth(entry("S1", "25.00", acct="5.00"))
    assert (t.setl_id, t.medfee_sumamt, t.acct_pay, t.psn_cash_pay, t.msgid, t.active) == (
        "S1", Decimal("25.00"), Decimal("5.00"), Decimal("7.50"), "MSG-S1", True)
    assert t.split["psn_part_amt"] == "12.50"


def test_cash_payamt_and_psn_pay_are_read_as_their_2207_names() -> None:
    t = entry_from_setlinfo({"setl_id": "S", "setl_time": "2026-01-02 03:04:05", "medfee_sumamt": "10",
                             "fund_pay_sumamt": "4", "acct_pay": "1", "cash_payamt": "5", "psn_pay": "6"})
    assert (t.psn_cash_pay, t.split["psn_part_amt"]) == (Decimal("5.00"), "6.00")


# --- plans per class ---------------------------------------------------------------------------------------


def diff_of(cls: str, setl_id: str = "S1", **kw):
    return classify([row(setl_id, cls, msgid=kw.pop("msgid", None))], lookup_of(*kw.pop("local", ())),
                    clr_type="11", setl_optins="440100")[0]


def call(outcome: str, visit: str | None = "V9", infno: str = "2207") -> CallInfo:
    return CallInfo("MSG-S1", infno, outcome, visit, NOON, "settlement")


def test_a_same_day_unknown_outcome_is_reversed() -> None:
    plan = plan_repair(diff_of("platform_only"), local=None, truth=truth(entry("S1")), call=call("unknown"), ctx=CTX)
    assert (plan.action, plan.oinfno, plan.omsgid, plan.amount) == ("reverse", "2207", "MSG-S1", Decimal("100.00"))


def test_an_unknown_outcome_of_another_day_is_booked_in_his_instead() -> None:
    yesterday = NOON - dt.timedelta(days=1)
    plan = plan_repair(diff_of("platform_only"), local=None, truth=truth(entry("S1"), setl_time=yesterday),
                       call=call("unknown"), ctx=CTX)
    assert (plan.action, plan.his_visit_id) == ("adopt", "V9")


def test_a_settlement_his_missed_the_answer_of_is_booked_in_his() -> None:
    plan = plan_repair(diff_of("platform_only"), local=None, truth=truth(entry("S1")), call=call("success"), ctx=CTX)
    assert plan.action == "adopt"


def test_a_platform_entry_no_his_visit_is_known_for_goes_to_people() -> None:
    plan = plan_repair(diff_of("platform_only"), local=None, truth=truth(entry("S1")), call=None, ctx=CTX)
    assert plan.action == "manual"


def test_a_platform_only_entry_gone_since_needs_nothing() -> None:
    assert plan_repair(diff_of("platform_only"), local=None, truth=None, call=None, ctx=CTX).action == "none"


def test_a_not_reversible_transaction_is_not_reversed() -> None:
    ctx = replace(CTX, reversible_infnos=frozenset({"2304"}))
    plan = plan_repair(diff_of("platform_only"), local=None, truth=truth(entry("S1")), call=call("unknown"), ctx=ctx)
    assert plan.action == "adopt"


def test_a_his_only_entry_the_platform_lacks_is_voided() -> None:
    local = entry("S1", "40.00")
    plan = plan_repair(diff_of("his_only", local=[local]), local=local, truth=None, ctx=CTX)
    assert (plan.action, plan.amount) == ("void", Decimal("40.00"))


def test_a_his_only_entry_the_platform_has_elsewhere_goes_to_people() -> None:
    local = entry("S1")
    plan = plan_repair(diff_of("his_only", local=[local]), local=local, truth=truth(local), ctx=CTX)
    assert plan.action == "manual"


def test_an_amount_mismatch_is_corrected_to_the_platforms_amounts() -> None:
    local = entry("S1", "100.00")
    plan = plan_repair(diff_of("amount_mismatch", local=[local]), local=local,
                       truth=truth(local, medfee=Decimal("90.00"), fund=Decimal("45.00")), ctx=CTX)
    assert (plan.action, plan.amount) == ("correct", Decimal("10.00"))


def test_amounts_that_agree_by_now_need_nothing() -> None:
    local = entry("S1")
    plan = plan_repair(diff_of("amount_mismatch", local=[local]), local=local, truth=truth(local), ctx=CTX)
    assert plan.action == "none"


def test_a_cancellation_his_did_not_record_is_booked() -> None:
    local = entry("S1", "60.00")
    cancelled = truth(local, status="cancelled", cancel_setl_id="C1")
    cancellation = truth(entry("C1", "60.00", flag="1", orig="S1"))
    plan = plan_repair(diff_of("status_mismatch", local=[local]), local=local, truth=cancelled,
                       cancellation=cancellation, ctx=CTX)
    assert (plan.action, plan.cancellation.setl_id, plan.amount) == ("adopt_cancellation", "C1", Decimal("60.00"))


def test_flags_differing_on_one_setl_id_go_to_people() -> None:
    local = entry("S1")
    plan = plan_repair(diff_of("status_mismatch", local=[local]), local=local, truth=truth(local, flag="1"),
                       ctx=CTX)
    assert plan.action == "manual"


# --- approval policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reverse", "adopt", "adopt_cancellation", "void", "correct"])
def test_money_moving_repairs_need_approval_by_default(action) -> None:
    assert ApprovalPolicy.of([], Decimal("1000")).needs_approval("platform_only", action, Decimal("1.00"))


@pytest.mark.parametrize("action", ["none", "manual"])
def test_repairs_moving_nothing_never_wait(action) -> None:
    assert not ApprovalPolicy.of([], Decimal("0")).needs_approval("his_only", action, Decimal("99.00"))


def test_listed_classes_are_automatic_up_to_the_threshold() -> None:
    policy = ApprovalPolicy.of(["his_only"], Decimal("50.00"))
    assert not policy.needs_approval("his_only", "void", Decimal("50.00"))
    assert policy.needs_approval("his_only", "void", Decimal("50.01"))
    assert policy.needs_approval("amount_mismatch", "correct", Decimal("0.01"))
