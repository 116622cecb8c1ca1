"""The 3202 detail file: the hospital's entries of one clr_type × setl_optins, as the platform reads them.

Format (national-platform.md, libs/envelope's catalog ``files.detail`` of 3202): TXT, UTF-8, one entry per
line, fields separated by tabs in the order setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt,
acct_pay, refd_setl_flag, an empty value written ``null``, no header line, each row ending with a line break;
zipped (deflate) for 9101. Some platforms read an empty cell instead of ``null``, or no break after the last
row: the catalog's ``file_format`` of 3202 (a province file may change it) says which, :func:`detail_format`
reads it. The entries are streamed into the archive, so a day of a large hospital never sits in memory as rows.

The file's totals (sums and count) are what 3202's own input carries (medfee_sumamt, fund_pay_sumamt,
cash_payamt, fixmedins_setl_cnt), so they are counted while writing.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any

from yibao.core.money import ZERO, money

from .errors import ReconciliationError
from .statement import EntryLike

__all__ = ["DETAIL_COLUMNS", "COMPRESS_LEVEL", "DetailFile", "DetailFormat", "detail_columns", "detail_format",
           "detail_line", "build_detail_zip", "build_detail_zip_from_rows", "detail_filename"]

#: the detail-file columns of 3202 (catalog files.detail; the same in the spec's field list)
DETAIL_COLUMNS: tuple[str, ...] = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt",
                                   "acct_pay", "refd_setl_flag")
NULL = "null"
#: deflate level of the zip: 1 writes a million-line file about three times faster than the default 6, for a
#: zip about 12 % larger (bench/results/reconciliation.json); any level is a valid deflate stream
COMPRESS_LEVEL = 1


def detail_columns(catalog: object | None = None) -> tuple[str, ...]:
    """The columns from the transaction catalog (a province may change them), else :data:`DETAIL_COLUMNS`."""
    try:
        spec = catalog.transaction("3202") if catalog is not None else None  # type: ignore[attr-defined]
        columns = tuple(f.name for f in spec.files["detail"]) if spec is not None else ()
    except Exception:  # noqa: BLE001 - no catalog, no file description: the national columns
        columns = ()
    return columns or DETAIL_COLUMNS


@dataclass(frozen=True)
class DetailFormat:
    """What stands for an empty value, and whether the last row ends with a line break."""

    empty: str = NULL
    final_newline: bool = True


def detail_format(catalog: object | None = None) -> DetailFormat:
    """The 3202 file format from the transaction catalog (a province may change it), else the spec's."""
    try:
        fmt = catalog.transaction("3202").file_format if catalog is not None else None  # type: ignore[attr-defined]
        return DetailFormat(fmt.empty_value, fmt.final_newline) if fmt is not None else DetailFormat()
    except Exception:  # noqa: BLE001 - no catalog: the spec's format
        return DetailFormat()


@dataclass(frozen=True)
class DetailFile:
    content: bytes  #: the zip, ready for 9101
    filename: str  #: the zip's name
    member: str  #: the TXT inside
    count: int
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal


_CENT = Decimal("0.01")
_BAD = ("\t", "\n", "\r")


def _cell(value: object, empty: str = NULL) -> str:
    # the common types first: this runs seven times per entry, a million entries a day in a large hospital
    kind = type(value)
    if kind is str:
        text = value  # type: ignore[assignment]
        if not text:
            return empty
    elif kind is Decimal:
        return format(value.quantize(_CENT, ROUND_HALF_UP), "f")  # type: ignore[union-attr]
    elif value is None:
        return empty
    elif isinstance(value, float):
        raise ReconciliationError("a float amount cannot be written to the 3202 detail file")
    elif isinstance(value, Decimal):
        return format(money(value), "f")
    else:
        text = str(value)
    if _BAD[0] in text or _BAD[1] in text or _BAD[2] in text:  # type: ignore[operator]
        raise ReconciliationError("a ledger value holds a tab or a line break and cannot go into the detail file")
    return text  # type: ignore[return-value]


def detail_line(entry: EntryLike, columns: Sequence[str] = DETAIL_COLUMNS, empty: str = NULL) -> str:
    return "\t".join([_cell(getattr(entry, column, None), empty) for column in columns])


def _line_writer(columns: Sequence[str], empty: str = NULL) -> Callable[[EntryLike], str]:
    """:func:`detail_line` for a fixed set of columns, with the attributes read in one step; an entry lacking
    one of them is written by detail_line itself (``empty`` for what it lacks)."""
    if len(columns) < 2:
        return lambda entry: detail_line(entry, columns, empty)
    values = attrgetter(*columns)
    cell, join = _cell, "\t".join

    def line(entry: EntryLike) -> str:
        try:
            found = values(entry)
        except AttributeError:
            return detail_line(entry, columns, empty)
        return join([cell(v, empty) for v in found])

    return line


def detail_filename(clr_type: str, setl_optins: str, date_from: str, date_to: str) -> str:
    return f"3202_{clr_type}_{setl_optins}_{date_from.replace('-', '')}_{date_to.replace('-', '')}.zip"


class _Archive:
    """The zip being written: lines are buffered and written ``chunk`` at a time into one deflated TXT member;
    rows are separated by line breaks, the last one followed by one when the format says so."""

    def __init__(self, filename: str, chunk: int, final_newline: bool = True) -> None:
        self.filename = filename
        self.member = filename[:-4] + ".txt" if filename.lower().endswith(".zip") else filename + ".txt"
        self.chunk = chunk
        self.final_newline = final_newline
        self.pending = False  # a line break owed before the next row (written with it: none after the last)
        self.lines: list[str] = []
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_DEFLATED,
                                    compresslevel=COMPRESS_LEVEL)
        self._out = self._zip.open(self.member, "w", force_zip64=True)

    def flush(self) -> None:
        if self.lines:
            self._out.write((("\n" if self.pending else "") + "\n".join(self.lines)).encode("utf-8"))
            self.pending = True
            self.lines.clear()

    def close(self) -> bytes:
        self.flush()
        if self.pending and self.final_newline:
            self._out.write(b"\n")
        self._out.close()
        self._zip.close()
        return self._buffer.getvalue()

    def abandon(self) -> None:
        self.lines.clear()
        self._out.close()
        self._zip.close()


def build_detail_zip(entries: Iterable[EntryLike], *, filename: str,
                     columns: Sequence[str] = DETAIL_COLUMNS, chunk: int = 4096,
                     fmt: DetailFormat = DetailFormat()) -> DetailFile:
    """Stream the entries into a zipped TXT; the archive and the totals it holds."""
    medfee = fund = acct = cash = ZERO
    count = 0
    archive = _Archive(filename, chunk, fmt.final_newline)
    try:
        lines, line = archive.lines, _line_writer(columns, fmt.empty)
        for entry in entries:
            lines.append(line(entry))
            medfee += entry.medfee_sumamt
            fund += entry.fund_pay_sumamt
            acct += entry.acct_pay
            cash += entry.psn_cash_pay
            count += 1
            if len(lines) >= chunk:
                archive.flush()
    except BaseException:
        archive.abandon()
        raise
    return DetailFile(archive.close(), filename, archive.member, count, money(medfee), money(fund), money(acct),
                      money(cash))


def _fen_text(fen: int) -> str:
    """Integer fen as the file writes money: 1234 → 12.34, -5 → -0.05 (what :func:`_cell` writes for the Decimal)."""
    if fen < 0:
        return "-%d.%02d" % divmod(-fen, 100)
    return "%d.%02d" % divmod(fen, 100)


def _raw_cell_writer(empty: str) -> Callable[[object], str]:
    """A raw ledger value as the file writes it, with ``empty`` for an empty one."""

    def cell(value: object) -> str:
        kind = type(value)
        if kind is str:
            return value or empty  # type: ignore[return-value]
        if kind is int:  # money in fen: _fen_text, inline (three times a line, a million lines a day)
            if value >= 0:  # type: ignore[operator]
                return "%d.%02d" % divmod(value, 100)  # type: ignore[call-overload]
            return "-%d.%02d" % divmod(-value, 100)  # type: ignore[call-overload,operator]
        if value is None:
            return empty
        raise ReconciliationError(f"a ledger value of type {kind.__name__} cannot go into the detail file as it is")

    return cell


def build_detail_zip_from_rows(batches: Iterable[Iterable[Sequence[Any]]], *, filename: str,
                               columns: Sequence[str] = DETAIL_COLUMNS, chunk: int = 4096,
                               fmt: DetailFormat = DetailFormat()) -> DetailFile:
    """The same file as :func:`build_detail_zip`, written from raw ledger rows as the database hands them over
    (a million rows a day in a large hospital: no entry objects, no Decimal until the totals).

    Each row holds the values of ``columns`` — text, None, or money as the integer fen the ledger stores —
    followed by medfee_sumamt, fund_pay_sumamt, acct_pay and psn_cash_pay in fen (the totals of 3202's input).
    A value holding a tab or a line break is refused as build_detail_zip refuses it."""
    width = len(columns)
    tabs = width - 1
    medfee = fund = acct = cash = 0
    count = 0
    archive = _Archive(filename, chunk, fmt.final_newline)
    try:
        lines, join, cell = archive.lines, "\t".join, _raw_cell_writer(fmt.empty)
        for rows in batches:
            for row in rows:
                line = join(map(cell, row[:width]))
                if line.count("\t") != tabs or "\n" in line or "\r" in line:
                    raise ReconciliationError("a ledger value holds a tab or a line break and cannot go into the "
                                              "detail file")
                lines.append(line)
                medfee += row[width]
                fund += row[width + 1]
                acct += row[width + 2]
                cash += row[width + 3]
                count += 1
            if len(lines) >= chunk:
                archive.flush()
    except BaseException:
        archive.abandon()
        raise
    return DetailFile(archive.close(), filename, archive.member, count, *(Decimal(v).scaleb(-2) for v in
                                                                          (medfee, fund, acct, cash)))
