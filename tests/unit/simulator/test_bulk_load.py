"""A large day loaded at once (admin bulk load) is a ledger like any other: 3201 and 3202 read it as they read
settlements booked by 2207/2208; a malformed body loads nothing and names the line and the column."""

from __future__ import annotations

from decimal import Decimal

import pytest

from yibao.simulator.bulk import BulkLoadError, load_settlements
from yibao.simulator.files import read_txt_zip, txt_zip
from yibao.simulator.reconcile import ROW_AMOUNT_DIFFERS, ROW_CONSISTENT, ROW_HOSPITAL_ONLY, ROW_STATUS_DIFFERS

from .conftest import Hospital

HEADER = ("setl_id\tmdtrt_id\tpsn_no\tmsgid\tsetl_time\tinsutype\tclr_type\tclr_optins\trefd_setl_flag\t"
          "orig_setl_id\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\tpsn_cash_pay")
DAY = "2024-05-01"


def line(setl_id: str, medfee: str, *, flag: str = "0", orig: str = "null", time: str = "10:00:00",
         optins: str = "440100") -> str:
    amount = Decimal(medfee)
    fund, acct = (amount / 2).quantize(Decimal("0.01")), Decimal("1.00") * (1 if amount >= 0 else -1)
    return "\t".join((setl_id, f"M-{setl_id}", f"P-{setl_id}", "null", f"{DAY} {time}", "310", "11", optins,
                      flag, orig, str(amount), str(fund), str(acct), str(amount - fund - acct)))


def day(*lines: str) -> list[str]:
    return [HEADER, *lines]


def test_bulk_entries_are_booked_like_settlements_and_cancellations(platform) -> None:
    loaded = load_settlements(platform.ledger, day(line("S1", "100.00"), line("S2", "50.00"),
                                                   line("C2", "-50.00", flag="1", orig="S2", time="11:00:00")))
    assert loaded == 3
    s1, s2, c2 = (platform.ledger.settlements[k] for k in ("S1", "S2", "C2"))
    assert s1.fixmedins_code == "H44010600001" and s1.infno == "2207" and s1.status == "active"
    assert s1.amounts["medfee_sumamt"] == Decimal("100.00") and str(s1.setl_time)[:19] == "2024-05-01 10:00:00"
    assert s2.status == "cancelled" and s2.cancel_setl_id == "C2"
    assert c2.infno == "2208" and c2.orig_setl_id == "S2" and c2.amounts["medfee_sumamt"] == Decimal("-50.00")


def test_3201_sums_bulk_entries(hosp: Hospital, platform) -> None:
    load_settlements(platform.ledger, day(line("S1", "100.00"), line("S2", "50.00"),
                                          line("S3", "7.00", optins="440300")))
    out = hosp.ok("3201", {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "440100",
                                    "stmt_begndate": DAY, "stmt_enddate": DAY, "refd_setl_flag": "",
                                    "medfee_sumamt": Decimal("150.00"), "fund_pay_sumamt": Decimal("75.00"),
                                    "acct_pay": Decimal("2.00"), "fixmedins_setl_cnt": 2}})["stmtinfo"]
    assert out["stmt_rslt"] == "0", out["stmt_rslt_dscr"]


def test_3202_compares_bulk_entries_row_by_row(hosp: Hospital, platform) -> None:
    load_settlements(platform.ledger, day(line("S1", "100.00"), line("S2", "50.00"), line("S3", "20.00"),
                                          line("C3", "-20.00", flag="1", orig="S3", time="20:00:00")))
    detail = [["S1", "M-S1", "P-S1", "100.00", "50.00", "1.00", "0"],
              ["S2", "M-S2", "P-S2", "51.00", "25.00", "1.00", "0"],
              ["S3", "M-S3", "P-S3", "20.00", "10.00", "1.00", "0"],
              ["S9", "M-S9", "P-S9", "9.00", "4.50", "0.00", "0"]]
    uploaded = platform.process(hosp.envelope("9101", {"fsUploadIn": {"filename": "d.zip",
                                                                      "fixmedins_code": hosp.code}}),
                                file_bytes=txt_zip("d.txt", detail), file_name="d.zip").response["output"]
    out = hosp.ok("3202", {"data": {"setl_optins": "440100", "file_qury_no": uploaded["file_qury_no"],
                                    "stmt_begndate": DAY, "stmt_enddate": DAY, "medfee_sumamt": Decimal("180.00"),
                                    "fund_pay_sumamt": Decimal("89.50"), "cash_payamt": Decimal("0"),
                                    "fixmedins_setl_cnt": 4, "clr_type": "11", "refd_setl_flag": ""}})
    stored = platform.ledger.files[out["fileinfo"]["file_qury_no"]]
    codes = {row[2]: row[4] for row in read_txt_zip(stored.content)}
    assert codes == {"S1": ROW_CONSISTENT, "S2": ROW_AMOUNT_DIFFERS, "S3": ROW_STATUS_DIFFERS,
                     "S9": ROW_HOSPITAL_ONLY}


@pytest.mark.parametrize(("body", "reason"), [
    ([HEADER.replace("\tmsgid", "")] + [line("S1", "1.00")], "line 2: 14 fields, the header has 13"),
    (["setl_id\tmdtrt_id"], "line 1: the header lacks psn_no"),
    ([HEADER + "\tcolour"], "line 1: unknown columns colour"),
    (day(line("S1", "1.00"), line("S2", "1.00").replace("1.00", "one", 1)), "line 3: medfee_sumamt is not a decimal"),
    (day(line("S1", "1.00").replace(f"{DAY} 10:00:00", "yesterday")), "line 2: setl_time is not a date-time"),
    (day(line("S1", "1.00", flag="2")), "line 2: refd_setl_flag must be 0 or 1"),
    (day(line("S1", "1.00").replace("P-S1", "null")), "line 2: psn_no is empty"),
    (day(line("S1", "1.00"), line("S1", "2.00")), "setl_id S1: already in the ledger"),
])
def test_a_malformed_body_loads_nothing_and_names_the_line(platform, body: list[str], reason: str) -> None:
    with pytest.raises(BulkLoadError, match=reason):
        load_settlements(platform.ledger, body)
    assert platform.ledger.settlements == {}


def test_a_setl_id_already_booked_is_refused(platform) -> None:
    load_settlements(platform.ledger, day(line("S1", "1.00")))
    with pytest.raises(BulkLoadError, match="S1"):
        load_settlements(platform.ledger, day(line("S2", "1.00"), line("S1", "1.00")))
    assert sorted(platform.ledger.settlements) == ["S1"]
