"""3202's files: the detail file we upload, the result file we download (valid, malformed, JSON errors)."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal

import pytest

from unit.reconciliation.recon_fakes import entry, txt_zip
from yibao.envelope.catalog import Catalog
from yibao.reconciliation.detail_file import DETAIL_COLUMNS, build_detail_zip, detail_columns, detail_line
from yibao.reconciliation.errors import ReconciliationError, ResultFileError
from yibao.reconciliation.result_file import RESULT_COLUMNS, read_result_file, result_columns
from yibao.reconciliation.settings import DEFAULT_ROW_CODES


def _unzip(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {n: archive.read(n).decode("utf-8") for n in archive.namelist()}


def test_the_detail_file_is_a_zipped_tab_separated_utf8_txt() -> None:
    built = build_detail_zip([entry("S1", "100.00", acct="10.00"), entry("C1", "100.00", acct="10.00", flag="1")],
                             filename="3202_11_440100.zip")
    members = _unzip(built.content)
    assert list(members) == ["3202_11_440100.txt"]
    lines = members["3202_11_440100.txt"].splitlines()
    assert lines[0].split("\t") == ["S1", "M-S1", "P-S1", "100.00", "50.00", "10.00", "0"]
    assert lines[1].split("\t") == ["C1", "M-C1", "P-C1", "-100.00", "-50.00", "-10.00", "1"]


def test_the_detail_columns_are_the_catalogs() -> None:
    assert detail_columns(Catalog.load()) == DETAIL_COLUMNS
    assert result_columns(Catalog.load())[:7] == RESULT_COLUMNS[:7]
    assert detail_columns(None) == DETAIL_COLUMNS


def test_an_empty_value_is_written_null() -> None:
    from dataclasses import replace

    assert detail_line(replace(entry("S1"), mdtrt_id=None)).split("\t")[1] == "null"


def test_the_detail_file_counts_what_3202_declares() -> None:
    built = build_detail_zip([entry("S1", "100.00", acct="10.00"), entry("S2", "20.00", acct="0.00")],
                             filename="d.zip")
    assert (built.count, built.medfee_sumamt, built.fund_pay_sumamt, built.cash_payamt) == (
        2, Decimal("120.00"), Decimal("60.00"), Decimal("50.00"))


def test_a_value_with_a_tab_cannot_go_into_the_detail_file() -> None:
    from dataclasses import replace

    with pytest.raises(ReconciliationError):
        build_detail_zip([replace(entry("S1"), psn_no="P\t1")], filename="d.zip")


def _result(rows: list[list[str]]) -> bytes:
    return txt_zip("result.txt", rows)


ROW = ["P1", "M1", "S1", "MSG1", "1", "0", "平台有医院无"]


def read(data: bytes):
    return read_result_file(data, row_codes=DEFAULT_ROW_CODES)


def test_consistent_rows_are_counted_and_differences_kept() -> None:
    summary = read(_result([["P0", "M0", "S0", "m0", "0", "0", "一致"], ROW,
                            ["P2", "M2", "S2", "null", "2", "0", "医院有平台无"]]))
    assert (summary.rows, summary.consistent) == (3, 1)
    assert [(r.setl_id, r.diff_class) for r in summary.differences] == [("S1", "platform_only"), ("S2", "his_only")]
    assert summary.differences[1].msgid is None


def test_each_code_maps_to_its_class() -> None:
    rows = [[f"P{c}", f"M{c}", f"S{c}", "m", c, "0", "x"] for c in "1234"]
    assert [r.diff_class for r in read(_result(rows)).differences] == [
        "platform_only", "his_only", "amount_mismatch", "status_mismatch"]


def test_a_province_code_table_is_honoured() -> None:
    codes = {"00": "consistent", "A": "platform_only"}
    summary = read_result_file(_result([["P", "M", "S9", "m", "A", "0", "x"]]), row_codes=codes)
    assert summary.differences[0].diff_class == "platform_only"


def test_extra_amount_columns_are_read_when_present() -> None:
    summary = read(_result([[*ROW, "12.30", "6.00", "1.00"]]))
    assert summary.differences[0].medfee_sumamt == Decimal("12.30")


def test_a_header_line_and_a_bare_txt_body_are_tolerated() -> None:
    body = ("\t".join(RESULT_COLUMNS[:7]) + "\n" + "\t".join(ROW) + "\n").encode()
    assert [r.setl_id for r in read(body).differences] == ["S1"]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (json.dumps({"infcode": -1, "err_msg": "文件不存在"}, ensure_ascii=False).encode(), "文件不存在"),
    (b"PK\x03\x04 garbage that is no zip", "not a readable zip"),
    (b"\xff\xfe\x00binary", "neither a zip"),
])
def test_a_body_that_is_not_a_result_file_is_refused_with_its_reason(data, message) -> None:
    with pytest.raises(ResultFileError, match=message):
        read(data)


def test_a_zip_with_a_json_error_inside_is_refused_with_the_platforms_reason() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("result.txt", json.dumps({"infcode": "-1", "err_msg": "对账结果生成失败"},
                                                  ensure_ascii=False))
    with pytest.raises(ResultFileError, match="对账结果生成失败"):
        read(buffer.getvalue())


def test_a_zip_without_a_txt_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.pdf", b"%PDF")
    with pytest.raises(ResultFileError, match="no TXT"):
        read(buffer.getvalue())


@pytest.mark.parametrize("row, message", [
    ([*ROW, "1", "2", "3", "4"], "at most 10 columns"),
    (["P", "M", "null", "m", "1", "0", "x"], "setl_id is empty"),
    (["P", "M", "S1", "m", "", "0", "x"], "stmt_rslt is empty"),
    (["P", "M", "S1", "m", "7", "0", "x"], "not in the configured code table"),
    ([*ROW, "abc"], "medfee_sumamt is not a number"),
])
def test_a_malformed_row_names_its_line_and_rule(row, message) -> None:
    with pytest.raises(ResultFileError, match=message) as caught:
        read(_result([["P0", "M0", "S0", "m0", "0", "0", "一致"], row]))
    assert "line 2" in str(caught.value)


def test_a_malformed_row_message_carries_no_personal_data() -> None:
    with pytest.raises(ResultFileError) as caught:
        read(_result([["44010119900101123X", "M", "S1", "m", "9", "0", "张三"]]))
    assert "44010119900101123X" not in str(caught.value) and "张三" not in str(caught.value)


def test_the_same_setl_id_twice_among_differences_is_refused() -> None:
    with pytest.raises(ResultFileError, match="twice"):
        read(_result([ROW, ROW]))


def test_a_non_utf8_txt_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("r.txt", "\t".join(ROW).encode("gbk"))
    with pytest.raises(ResultFileError, match="UTF-8"):
        read(buffer.getvalue())
