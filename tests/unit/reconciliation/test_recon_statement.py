"""3201 对总账: keys, the hospital's totals (settlements minus cancellations), the 3201 input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from unit.reconciliation.recon_fakes import NOON, TODAY, entry
from yibao.reconciliation.ledger import ledger_totals
from yibao.reconciliation.statement import (
    StatementKey,
    Totals,
    input_3201,
    keys_to_ask,
    period_bounds,
    statement_flags,
    totals_of,
)

KEY = StatementKey("310", "11", "440100")


def test_net_totals_are_settlements_minus_cancellations() -> None:
    entries = [entry("S1", "100.00", acct="10.00"), entry("S2", "50.50", acct="5.25"),
               entry("C1", "100.00", acct="10.00", flag="1", orig="S1")]
    totals = totals_of(entries)[KEY]
    assert totals.medfee_sumamt == Decimal("50.50")
    assert totals.acct_pay == Decimal("5.25")
    assert totals.fund_pay_sumamt == Decimal("25.25")


def test_the_count_counts_entries_of_both_kinds() -> None:
    entries = [entry("S1"), entry("S2"), entry("C1", flag="1", orig="S1")]
    assert totals_of(entries)[KEY].count == 3


def test_a_flag_selects_settlements_or_cancellations_only() -> None:
    entries = [entry("S1", "100.00"), entry("C1", "40.00", flag="1", orig="S1")]
    assert totals_of(entries, "0")[KEY].medfee_sumamt == Decimal("100.00")
    assert totals_of(entries, "1")[KEY].medfee_sumamt == Decimal("-40.00")
    assert totals_of(entries, "1")[KEY].count == 1


def test_sums_are_exact_decimals() -> None:
    entries = [entry(f"S{i}", "0.10", fund="0.10", acct="0.00") for i in range(10)]
    totals = totals_of(entries)[KEY]
    assert totals.medfee_sumamt == Decimal("1.00") and isinstance(totals.medfee_sumamt, Decimal)


def test_entries_are_grouped_by_insutype_clr_type_and_setl_optins() -> None:
    entries = [entry("A"), entry("B", insutype="390"), entry("C", clr_type="21"), entry("D", optins="440300")]
    assert sorted(totals_of(entries)) == sorted([KEY, StatementKey("390", "11", "440100"),
                                                 StatementKey("310", "21", "440100"),
                                                 StatementKey("310", "11", "440300")])


def test_the_database_sums_agree_with_the_python_sums(engine, book) -> None:
    entries = [entry("S1", "100.01", acct="3.33"), entry("S2", "7.77", insutype="390"),
               entry("C1", "100.01", acct="3.33", flag="1", orig="S1"), entry("S3", "1.11", clr_type="21")]
    book(*entries)
    with engine.connect() as conn:
        for flag in ("", "0", "1"):
            assert ledger_totals(conn, TODAY, TODAY, flag) == totals_of(entries, flag)


def test_the_period_is_whole_days_in_shanghai(engine, book) -> None:
    start, end = period_bounds(TODAY, TODAY)
    book(entry("IN1", when=start), entry("IN2", when=end - dt.timedelta(seconds=1)), entry("OUT", when=end))
    with engine.connect() as conn:
        assert ledger_totals(conn, TODAY, TODAY)[KEY].count == 2


def test_statement_modes_name_the_flags_sent() -> None:
    assert statement_flags("net") == ("",)
    assert statement_flags("split") == ("0", "1")


def test_the_3201_input_carries_the_key_period_sums_and_count() -> None:
    data = input_3201(KEY, Totals(Decimal("1.5"), Decimal("1"), Decimal("0.5"), Decimal("0"), 2), TODAY,
                      TODAY + dt.timedelta(days=1), "")["data"]
    assert data == {"insutype": "310", "clr_type": "11", "setl_optins": "440100",
                    "stmt_begndate": TODAY.isoformat(), "stmt_enddate": (TODAY + dt.timedelta(days=1)).isoformat(),
                    "medfee_sumamt": Decimal("1.50"), "fund_pay_sumamt": Decimal("1.00"),
                    "acct_pay": Decimal("0.50"), "fixmedins_setl_cnt": 2, "refd_setl_flag": ""}


def test_configured_keys_are_asked_even_without_ledger_entries() -> None:
    keys = keys_to_ask([], insutypes=["310", "390"], clr_types=["11"], setl_optins=["440100"])
    assert keys == [StatementKey("310", "11", "440100"), StatementKey("390", "11", "440100")]


def test_ledger_keys_are_crossed_with_the_configured_axes() -> None:
    keys = keys_to_ask([StatementKey("310", "21", "440300")], insutypes=["310"], clr_types=["11"],
                       setl_optins=["440100"])
    assert StatementKey("310", "11", "440300") in keys and StatementKey("310", "21", "440100") in keys


def test_run_filters_narrow_the_keys() -> None:
    keys = keys_to_ask([], insutypes=["310", "390"], clr_types=["11", "21"], setl_optins=["440100"],
                       insutype="390", clr_type="21")
    assert keys == [StatementKey("390", "21", "440100")]


def test_noon_helper_is_today() -> None:
    assert NOON.date() == TODAY
