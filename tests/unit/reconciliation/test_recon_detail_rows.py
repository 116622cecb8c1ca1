"""The detail file written from raw ledger rows (text, and money as integer fen) is the one written from entries."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from decimal import Decimal

import pytest

from unit.reconciliation.recon_fakes import entry
from yibao.reconciliation.detail_file import DETAIL_COLUMNS, build_detail_zip, build_detail_zip_from_rows
from yibao.reconciliation.errors import ReconciliationError


def _txt(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = archive.namelist()
        return archive.read(name).decode("utf-8")


def _fen(value: Decimal) -> int:
    return int(value * 100)


def _row(e, columns=DETAIL_COLUMNS) -> tuple:
    money = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
    values = tuple(_fen(getattr(e, c)) if c in money else getattr(e, c) for c in columns)
    return values + tuple(_fen(getattr(e, c)) for c in money)


def stored(e):
    """The entry as the ledger gives it back: money through its integer fen (a -0.00 comes back 0.00)."""
    return replace(e, **{c: Decimal(_fen(getattr(e, c))).scaleb(-2)
                         for c in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")})


ENTRIES = [stored(e) for e in (
    entry("S1", "100.00", acct="10.00"),
    entry("C1", "100.00", acct="10.00", flag="1"),
    entry("S2", "0.10", fund="0.05", acct="0.00"),
    entry("C2", "0.10", fund="0.05", acct="0.00", flag="1"),
    replace(entry("S3", "123456789.99", acct="0.01"), psn_no=None, mdtrt_id=""),
    entry("S4", "0.00", fund="0.00", acct="0.00"),
)]


def test_raw_rows_make_the_same_file_and_totals_as_entries() -> None:
    rows = build_detail_zip_from_rows([[_row(e) for e in ENTRIES[:4]], [_row(e) for e in ENTRIES[4:]]],
                                      filename="3202_11_440100.zip", chunk=2)
    whole = build_detail_zip(ENTRIES, filename="3202_11_440100.zip", chunk=2)
    assert _txt(rows.content) == _txt(whole.content)
    assert (rows.member, rows.filename, rows.count) == (whole.member, whole.filename, whole.count) == (
        "3202_11_440100.txt", "3202_11_440100.zip", 6)
    for name in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "cash_payamt"):
        assert str(getattr(rows, name)) == str(getattr(whole, name))


def test_money_is_written_from_fen_with_two_decimals_and_its_sign() -> None:
    lines = _txt(build_detail_zip_from_rows([[_row(e) for e in ENTRIES]], filename="d.zip").content).splitlines()
    assert lines[2].split("\t")[3:6] == ["0.10", "0.05", "0.00"]
    assert lines[3].split("\t")[3:6] == ["-0.10", "-0.05", "0.00"]
    assert lines[4].split("\t")[:4] == ["S3", "null", "null", "123456789.99"]


@pytest.mark.parametrize("bad", ["P\t1", "P\n1", "P\r1"])
def test_a_raw_value_with_a_tab_or_line_break_is_refused(bad: str) -> None:
    row = _row(replace(ENTRIES[0], psn_no=bad))
    with pytest.raises(ReconciliationError, match="tab or a line break"):
        build_detail_zip_from_rows([[row]], filename="d.zip")


@pytest.mark.parametrize("bad", [1.5, Decimal("1.50")])
def test_a_raw_amount_that_is_not_integer_fen_is_refused(bad: object) -> None:
    row = list(_row(ENTRIES[0]))
    row[3] = bad
    with pytest.raises(ReconciliationError, match="cannot go into the detail file"):
        build_detail_zip_from_rows([[tuple(row)]], filename="d.zip")
