"""Loading a large day of ledger entries into the platform at once (admin API), for benchmarks and drills.

Settling a visit the normal way takes six calls (1101 … 2207); a benchmark of reconciliation needs the platform's
side of a million settlements in seconds, with differences planted in it. ``POST /admin/settlements/bulk`` takes
tab-separated text: a header line naming the columns, then one entry per line (``null`` or empty for no value).

Columns (any order): ``setl_id``, ``mdtrt_id``, ``psn_no``, ``setl_time`` (yyyy-MM-dd HH:mm:ss, Shanghai, or
ISO-8601), ``insutype``, ``clr_type``, ``clr_optins``, ``refd_setl_flag`` (0 settlement, 1 cancellation),
``medfee_sumamt``, ``fund_pay_sumamt``, ``acct_pay`` — required; ``psn_cash_pay``, ``msgid``, ``orig_setl_id``
(a cancellation's settlement), ``med_type``, ``fixmedins_code`` (default: the platform's first institution) —
optional.

The entries become ledger entries exactly like those 2207/2304 and 2208/2305 book (a cancellation marks its
settlement ``cancelled``), so 3201, 3202, 5203 and 2601 treat them as any other. Nothing else is created (no
visits, fee details or messages). A body with a malformed line loads nothing and is refused, naming the line
and the column; a setl_id the ledger holds already is refused the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from yibao.core import clock
from yibao.core.money import money

from .settlement import CLR_WAY
from .state import Ledger, Settlement

__all__ = ["BULK_REQUIRED", "BULK_OPTIONAL", "BulkLoadError", "load_settlements"]

BULK_REQUIRED = ("setl_id", "mdtrt_id", "psn_no", "setl_time", "insutype", "clr_type", "clr_optins",
                 "refd_setl_flag", "medfee_sumamt", "fund_pay_sumamt", "acct_pay")
BULK_OPTIONAL = ("psn_cash_pay", "msgid", "orig_setl_id", "med_type", "fixmedins_code")
_AMOUNTS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
#: the transaction that books each kind of entry (clr_type × refd_setl_flag)
_INFNO = {("11", "0"): "2207", ("11", "1"): "2208", ("21", "0"): "2304", ("21", "1"): "2305"}


class BulkLoadError(ValueError):
    """The body cannot be loaded; the message names the line and the column."""


def _parse(lines: Iterable[str], default_code: str, institutions: set[str]) -> list[Settlement]:
    iterator = iter(lines)
    header = next(iterator, "").rstrip("\r\n").split("\t")
    missing = [c for c in BULK_REQUIRED if c not in header]
    if missing:
        raise BulkLoadError(f"line 1: the header lacks {', '.join(missing)}")
    unknown = [c for c in header if c not in BULK_REQUIRED and c not in BULK_OPTIONAL]
    if unknown:
        raise BulkLoadError(f"line 1: unknown columns {', '.join(unknown)}")
    index = {name: i for i, name in enumerate(header)}
    width = len(header)
    times: dict[str, dt.datetime] = {}
    amounts: dict[str, Decimal] = {}
    out: list[Settlement] = []
    for number, line in enumerate(iterator, start=2):
        line = line.rstrip("\r\n")
        if not line:
            continue
        cells = [None if c in ("", "null") else c for c in line.split("\t")]
        if len(cells) != width:
            raise BulkLoadError(f"line {number}: {len(cells)} fields, the header has {width}")
        row = {name: cells[i] for name, i in index.items()}
        for name in BULK_REQUIRED:
            if row[name] is None:
                raise BulkLoadError(f"line {number}: {name} is empty")
        code = row.get("fixmedins_code") or default_code
        if code not in institutions:
            raise BulkLoadError(f"line {number}: fixmedins_code is not an institution of this platform")
        flag = row["refd_setl_flag"]
        if flag not in ("0", "1"):
            raise BulkLoadError(f"line {number}: refd_setl_flag must be 0 or 1")
        text = row["setl_time"]
        when = times.get(text)  # type: ignore[arg-type]
        if when is None:
            try:
                when = times[text] = clock.parse_datetime(text)  # type: ignore[arg-type,index]
            except ValueError:
                raise BulkLoadError(f"line {number}: setl_time is not a date-time") from None
        values: dict[str, Decimal] = {}
        for name in _AMOUNTS:
            raw = row.get(name)
            if raw is None:
                continue
            value = amounts.get(raw)
            if value is None:
                try:
                    value = amounts[raw] = money(Decimal(raw))
                except (InvalidOperation, ValueError):
                    raise BulkLoadError(f"line {number}: {name} is not a decimal number") from None
            values[name] = value
        clr_type = row["clr_type"]
        out.append(Settlement(
            setl_id=row["setl_id"], mdtrt_id=row["mdtrt_id"], psn_no=row["psn_no"],  # type: ignore[arg-type]
            fixmedins_code=code, infno=_INFNO.get((clr_type, flag), "2207"),  # type: ignore[arg-type]
            msgid=row.get("msgid") or "", setl_time=when, insutype=row["insutype"],  # type: ignore[arg-type]
            med_type=row.get("med_type") or ("21" if clr_type == "21" else "11"), clr_type=clr_type,  # type: ignore[arg-type]
            clr_way=CLR_WAY, clr_optins=row["clr_optins"], refd_setl_flag=flag, amounts=values,  # type: ignore[arg-type]
            orig_setl_id=row.get("orig_setl_id") or "",
        ))
    return out


def load_settlements(ledger: Ledger, lines: Iterable[str], *, default_fixmedins_code: str = "") -> int:
    """Book the entries of a bulk body (all or none); how many were booked. BulkLoadError when malformed."""
    with ledger.lock:
        code = default_fixmedins_code or min(ledger.institutions, default="")
        entries = _parse(lines, code, ledger.institutions)
        seen: set[str] = set()
        for e in entries:
            if e.setl_id in ledger.settlements or e.setl_id in seen:
                raise BulkLoadError(f"setl_id {e.setl_id}: already in the ledger")
            seen.add(e.setl_id)
        book = ledger.settlements
        for e in entries:
            book[e.setl_id] = e
            if e.refd_setl_flag == "1" and e.orig_setl_id:
                original = book.get(e.orig_setl_id)
                if original is not None and original.refd_setl_flag == "0":
                    original.status = "cancelled"
                    original.cancel_setl_id = e.setl_id
        return len(entries)
