"""3201 totals and 3202 row-by-row results on planted differences."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.simulator.files import read_txt_zip, txt_zip
from yibao.simulator.reconcile import (
    ROW_AMOUNT_DIFFERS,
    ROW_CONSISTENT,
    ROW_HOSPITAL_ONLY,
    ROW_PLATFORM_ONLY,
    ROW_STATUS_DIFFERS,
    STMT_ROW_RESULTS,
)

from .conftest import Hospital


def totals(platform, flag: str = "") -> dict[str, Any]:
    rows = [s for s in platform.ledger.settlements.values() if s.status != "reversed" and (not flag or s.refd_setl_flag == flag)]
    return {k: sum((s.amounts[k] for s in rows), Decimal("0.00")) for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay")} | {
        "fixmedins_setl_cnt": Decimal(len(rows))}


def stmt(hosp: Hospital, claimed: dict[str, Any], flag: str = "0") -> dict[str, Any]:
    today = clock.format_date(clock.now())
    return hosp.ok("3201", {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "440100",
                                     "stmt_begndate": today, "stmt_enddate": today, "refd_setl_flag": flag, **claimed}})["stmtinfo"]


def test_3201_balances_when_totals_agree(hosp: Hospital, platform) -> None:
    hosp.outpatient_settled()
    hosp.outpatient_settled(("5.55",))
    assert stmt(hosp, totals(platform, "0"))["stmt_rslt"] == "0"


def test_3201_does_not_balance_on_a_planted_difference(hosp: Hospital, platform) -> None:
    hosp.outpatient_settled()
    claimed = totals(platform, "0")
    claimed["medfee_sumamt"] += Decimal("0.01")
    out = stmt(hosp, claimed)
    assert out["stmt_rslt"] == "1" and "medfee_sumamt" in out["stmt_rslt_dscr"]


def test_3201_counts_a_settlement_the_hospital_never_heard_of(hosp: Hospital, platform) -> None:
    hosp.outpatient_settled()
    claimed = totals(platform, "0")
    hosp.outpatient_settled(("9.99",))  # the 单边账: the platform settled, the hospital's books lack it
    out = stmt(hosp, claimed)
    assert out["stmt_rslt"] == "1" and "fixmedins_setl_cnt" in out["stmt_rslt_dscr"]


def test_3201_refd_setl_flag_selects_cancellations(hosp: Hospital, platform) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert stmt(hosp, totals(platform, "1"), flag="1")["stmt_rslt"] == "0"
    net = totals(platform)
    assert net["medfee_sumamt"] == 0 and stmt(hosp, net, flag="")["stmt_rslt"] == "0"


def test_3201_ignores_settlements_reversed_by_2601(hosp: Hospital, platform) -> None:
    hosp.outpatient_settled()
    hosp.ok("2601", {"data": {"psn_no": "P0001", "omsgid": hosp.last_msgid, "oinfno": "2207"}})
    zero = {"medfee_sumamt": Decimal("0"), "fund_pay_sumamt": Decimal("0"), "acct_pay": Decimal("0"), "fixmedins_setl_cnt": 0}
    assert stmt(hosp, zero)["stmt_rslt"] == "0"


def detail_rows(platform) -> list[list[Any]]:
    return [[s.setl_id, s.mdtrt_id, s.psn_no, s.amounts["medfee_sumamt"], s.amounts["fund_pay_sumamt"],
             s.amounts["acct_pay"], s.refd_setl_flag]
            for s in platform.ledger.settlements.values() if s.status != "reversed"]


def run_3202(hosp: Hospital, rows: list[list[Any]]) -> dict[str, str]:
    up = hosp.platform.process(hosp.envelope("9101", {"fsUploadIn": {"filename": "d.zip", "fixmedins_code": hosp.code}}),
                               file_bytes=txt_zip("d.txt", rows), file_name="d.zip")
    assert up.ok, up.response["err_msg"]
    today = clock.format_date(clock.now())
    info = hosp.ok("3202", {"data": {"setl_optins": "440100", "file_qury_no": up.response["output"]["file_qury_no"],
                                     "stmt_begndate": today, "stmt_enddate": today, "medfee_sumamt": 0,
                                     "fund_pay_sumamt": 0, "cash_payamt": 0, "fixmedins_setl_cnt": len(rows),
                                     "clr_type": "11", "refd_setl_flag": ""}})["fileinfo"]
    down = hosp.call("9102", {"fsDownloadIn": {"file_qury_no": info["file_qury_no"], "filename": info["filename"],
                                               "fixmedins_code": hosp.code}})
    assert down.file is not None
    result = read_txt_zip(down.file[1])
    assert all(len(r) == 7 for r in result)
    return {r[2]: r[4] for r in result}


def test_3202_marks_every_row_consistent_when_books_agree(hosp: Hospital, platform) -> None:
    hosp.outpatient_settled()
    hosp.outpatient_settled(("1.00",))
    assert set(run_3202(hosp, detail_rows(platform)).values()) == {ROW_CONSISTENT}


def test_3202_finds_each_planted_difference(hosp: Hospital, platform) -> None:
    _, consistent = hosp.outpatient_settled(("1.00",))
    _, platform_only = hosp.outpatient_settled(("2.00",))
    _, amount_wrong = hosp.outpatient_settled(("3.00",))
    mdtrt_c, status_wrong = hosp.outpatient_settled(("4.00",))
    rows = {r[0]: r for r in detail_rows(platform)}
    hosp.ok("2208", {"data": {"setl_id": status_wrong, "mdtrt_id": mdtrt_c, "psn_no": "P0001"}})
    file_rows = [rows[consistent], [*rows[amount_wrong][:3], Decimal("3.01"), *rows[amount_wrong][4:]],
                 rows[status_wrong], ["HOSPITAL-ONLY-1", "M1", "P0001", Decimal("8.00"), Decimal("4.00"), Decimal("0"), "0"]]
    result = run_3202(hosp, file_rows)
    assert result[consistent] == ROW_CONSISTENT
    assert result[platform_only] == ROW_PLATFORM_ONLY
    assert result[amount_wrong] == ROW_AMOUNT_DIFFERS
    assert result[status_wrong] == ROW_STATUS_DIFFERS
    assert result["HOSPITAL-ONLY-1"] == ROW_HOSPITAL_ONLY
    assert len(result) == 5  # the cancellation is reported on its settlement's row, not twice


def test_3202_flag_difference_is_a_status_difference(hosp: Hospital, platform) -> None:
    _, setl_id = hosp.outpatient_settled()
    row = detail_rows(platform)[0]
    row[6] = "1"
    assert run_3202(hosp, [row])[setl_id] == ROW_STATUS_DIFFERS


def test_3202_needs_an_uploaded_file(hosp: Hospital) -> None:
    today = clock.format_date(clock.now())
    err = hosp.refused("3202", {"data": {"setl_optins": "440100", "file_qury_no": "NOPE", "stmt_begndate": today,
                                         "stmt_enddate": today, "clr_type": "11"}})
    assert "file_qury_no" in err


def test_3202_refuses_a_file_that_is_not_a_zip(hosp: Hospital) -> None:
    up = hosp.platform.process(hosp.envelope("9101", {"fsUploadIn": {"filename": "d.txt", "fixmedins_code": hosp.code}}),
                               file_bytes=b"not a zip", file_name="d.txt")
    today = clock.format_date(clock.now())
    err = hosp.refused("3202", {"data": {"setl_optins": "440100", "file_qury_no": up.response["output"]["file_qury_no"],
                                         "stmt_begndate": today, "stmt_enddate": today, "clr_type": "11"}})
    assert "not a zip" in err


def test_row_result_codes_are_documented() -> None:
    assert set(STMT_ROW_RESULTS) == {"0", "1", "2", "3", "4"}
