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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from yibao.core.money import ZERO, money

from .errors import ReconciliationError
from .statement import EntryLike

__all__ = ["DETAIL_COLUMNS", "DetailFile", "DetailFormat", "detail_columns", "detail_format", "detail_line",
           "build_detail_zip", "detail_filename"]

#: the detail-file columns of 3202 (catalog files.detail; the same in the spec's field list)
DETAIL_COLUMNS: tuple[str, ...] = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt",
                                   "acct_pay", "refd_setl_flag")
NULL = "null"


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


def detail_filename(clr_type: str, setl_optins: str, date_from: str, date_to: str) -> str:
    return f"3202_{clr_type}_{setl_optins}_{date_from.replace('-', '')}_{date_to.replace('-', '')}.zip"


def build_detail_zip(entries: Iterable[EntryLike], *, filename: str,
                     columns: Sequence[str] = DETAIL_COLUMNS, chunk: int = 4096,
                     fmt: DetailFormat = DetailFormat()) -> DetailFile:
    """Stream the entries into a zipped TXT; the archive and the totals it holds."""
    member = filename[:-4] + ".txt" if filename.lower().endswith(".zip") else filename + ".txt"
    medfee = fund = acct = cash = ZERO
    count = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w", force_zip64=True) as out:
            lines: list[str] = []
            pending = False  # a line break owed before the next row (written with it: no break after the last)
            for entry in entries:
                lines.append(detail_line(entry, columns, fmt.empty))
                medfee += entry.medfee_sumamt
                fund += entry.fund_pay_sumamt
                acct += entry.acct_pay
                cash += entry.psn_cash_pay
                count += 1
                if len(lines) >= chunk:
                    out.write((("\n" if pending else "") + "\n".join(lines)).encode("utf-8"))
                    pending = True
                    lines.clear()
            if lines:
                out.write((("\n" if pending else "") + "\n".join(lines)).encode("utf-8"))
                pending = True
            if pending and fmt.final_newline:
                out.write(b"\n")
    return DetailFile(buffer.getvalue(), filename, member, count, money(medfee), money(fund), money(acct),
                      money(cash))
