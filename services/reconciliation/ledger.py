"""The hospital-side ledger: what HIS was told was settled or cancelled, kept in ``recon_ledger``.

The worker consumes ``yibao.his.results.v1``; the ``settled`` and ``refunded`` results are the hospital's
ledger entries (whatever service produced them), so reconciliation never reads another service's tables. One
unit of work per result: the inbox row (dedup by message_id) and the ledger row commit together, and a second
result for a setl_id already booked is absorbed as a duplicate (the first one stays).

Fields a producer left out are derived where the platform's rules fix them: clr_type from the visit kind
(11 outpatient, 21 inpatient), setl_optins from insuplc_admdvs (the person's 参保地 is the 清算经办机构), the
entry time from occurred_at. A settlement without setl_id, insutype, split or 参保地 cannot be reconciled and is
parked (an InputError) for ops to look at.

Channel: results of the mobile-pay service (or any result whose ``detail.channel`` names one) are kept apart so
reports can show mobile-pay and 1.0/2.0 orders separately; everything else is ``national``. A mobile-pay settlement
is a national settlement too (3201 counts it); a cash-only mobile settlement or refund (``detail.cash_only``: a
WeChat CASH_ONLY order, a cash part refunded) moves no fund money and is kept with status ``cash``: the mobile-pay
reconciliation reads it, 3201/3202 do not. So is any refund of a cash-only settlement, whoever booked it (HIS's
window refunding a WeChat CASH_ONLY order by hand names that order, not ``cash_only``): no national settlement
stands behind it, and 3202 would otherwise call it "only in HIS".
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Connection, Select, String, Text, and_, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import recon_ledger
from yibao.core.errors import InputError
from yibao.core.messaging.inbox import first_time
from yibao.core.money import ZERO, money
from yibao.core.results import HisResult

from .detail_file import DetailFile, DetailFormat, build_detail_zip, build_detail_zip_from_rows
from .statement import StatementKey, Totals, period_bounds

__all__ = [
    "CONSUMER",
    "LEDGER_KINDS",
    "CLR_TYPE_OF_KIND",
    "KIND_OF_CLR_TYPE",
    "LedgerEntry",
    "BadLedgerResult",
    "entry_from_result",
    "record_result",
    "refunds_cash_only",
    "insert_entry",
    "entries_between",
    "RAW_DETAIL_COLUMNS",
    "detail_rows",
    "detail_zip",
    "entry_by_setl_id",
    "entries_by_setl_ids",
    "LocalSide",
    "local_sides",
    "ledger_totals",
    "ledger_keys",
    "optins_seen",
    "void_entry",
    "correct_entry",
]

#: inbox consumer name of the ledger (the service name)
CONSUMER = "reconciliation"
LEDGER_KINDS = frozenset({"settled", "refunded"})
CLR_TYPE_OF_KIND = {"outpatient": "11", "inpatient": "21"}
KIND_OF_CLR_TYPE = {"11": "outpatient", "21": "inpatient"}


class BadLedgerResult(InputError):
    """A settled/refunded result that lacks what reconciliation needs (named field)."""

    code = "recon_bad_ledger_result"


@dataclass(frozen=True)
class LedgerEntry:
    setl_id: str
    his_visit_id: str
    visit_kind: str
    channel: str
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str
    setl_time: _dt.datetime
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    mdtrt_id: str | None = None
    psn_no: str | None = None
    orig_setl_id: str | None = None
    msgid: str | None = None
    split: dict[str, Any] | None = None
    status: str = "booked"
    producer: str = "unknown"
    message_id: str = ""
    source: str = "his_result"


def _channel(result: HisResult) -> str:
    detail = result.detail or {}
    named = detail.get("channel")
    if isinstance(named, str) and named.strip():
        return named.strip()[:20]
    return "mobilepay" if result.service == "mobilepay" else "national"


def _negative(value: Decimal) -> Decimal:
    return -abs(money(value))


def entry_from_result(result: HisResult, *, of_cash_only: bool = False) -> LedgerEntry | None:
    """The ledger entry a result books, or None for results that book nothing (registered, rejected …).
    ``of_cash_only``: the result refunds a cash-only settlement (kept as ``cash`` too)."""
    if result.kind not in LEDGER_KINDS:
        return None
    what = f"{result.kind} result {result.message_id}"
    # a mobile-pay cash part (or a refund of a cash-only settlement): no 医保 settlement behind it
    cash_only = bool((result.detail or {}).get("cash_only")) or (of_cash_only and result.kind == "refunded")
    if not result.setl_id:
        raise BadLedgerResult(f"{what}: setl_id is missing")
    if result.split is None:
        raise BadLedgerResult(f"{what}: split is missing")
    if not result.insutype and not cash_only:
        raise BadLedgerResult(f"{what}: insutype is missing")
    optins = result.clr_optins or result.insuplc_admdvs or ("" if cash_only else None)
    if optins is None:
        raise BadLedgerResult(f"{what}: clr_optins (and insuplc_admdvs) missing")
    clr_type = result.clr_type or CLR_TYPE_OF_KIND[result.visit_kind]
    split = result.split
    refunded = result.kind == "refunded"
    amount = _negative if refunded else money
    return LedgerEntry(
        setl_id=result.setl_id, his_visit_id=result.his_visit_id, visit_kind=result.visit_kind,
        channel=_channel(result), insutype=result.insutype or "", clr_type=clr_type, setl_optins=optins,
        refd_setl_flag="1" if refunded else "0", setl_time=result.setl_time or result.occurred_at,
        medfee_sumamt=amount(split.medfee_sumamt), fund_pay_sumamt=amount(split.fund_pay_sumamt),
        acct_pay=amount(split.acct_pay), psn_cash_pay=amount(split.psn_cash_pay), mdtrt_id=result.mdtrt_id,
        psn_no=result.psn_no, orig_setl_id=result.orig_setl_id, msgid=result.msgid,
        split=json.loads(split.model_dump_json()), producer=result.service, message_id=result.message_id,
        status="cash" if cash_only else "booked",
    )


def _row(entry: LedgerEntry) -> dict[str, Any]:
    now = clock.now()
    return {
        "setl_id": entry.setl_id, "his_visit_id": entry.his_visit_id, "visit_kind": entry.visit_kind,
        "channel": entry.channel, "producer": entry.producer, "mdtrt_id": entry.mdtrt_id, "psn_no": entry.psn_no,
        "insutype": entry.insutype, "clr_type": entry.clr_type, "setl_optins": entry.setl_optins,
        "refd_setl_flag": entry.refd_setl_flag, "orig_setl_id": entry.orig_setl_id, "msgid": entry.msgid,
        "setl_time": entry.setl_time, "medfee_sumamt": entry.medfee_sumamt,
        "fund_pay_sumamt": entry.fund_pay_sumamt, "acct_pay": entry.acct_pay, "psn_cash_pay": entry.psn_cash_pay,
        "split": json.dumps(entry.split, ensure_ascii=False) if entry.split is not None else None,
        "status": entry.status, "source": entry.source, "message_id": entry.message_id or entry.setl_id,
        "received_at": now, "updated_at": now,
    }


def insert_entry(conn: Connection, entry: LedgerEntry) -> bool:
    """Book an entry unless its setl_id is booked already; True when it was new."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(recon_ledger).values(**_row(entry)).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(recon_ledger).values(**_row(entry)).on_conflict_do_nothing()
    return conn.execute(stmt.returning(recon_ledger.c.setl_id)).first() is not None


def refunds_cash_only(conn: Connection, result: HisResult) -> bool:
    """Whether ``result`` is a refund of a settlement the ledger keeps as cash-only (a WeChat CASH_ONLY order)."""
    if result.kind != "refunded" or not result.orig_setl_id or (result.detail or {}).get("cash_only"):
        return False
    c = recon_ledger.c
    status = conn.execute(select(c.status).where(c.setl_id == result.orig_setl_id, c.refd_setl_flag == "0")
                          ).scalar()
    return status == "cash"


def record_result(conn: Connection, result: HisResult) -> str:
    """One HIS_RESULTS message: processed (booked), duplicate (seen, or setl_id booked) or skipped."""
    entry = entry_from_result(result, of_cash_only=refunds_cash_only(conn, result))
    if entry is None:
        return "skipped"
    if not first_time(conn, CONSUMER, result.message_id):
        return "duplicate"
    return "processed" if insert_entry(conn, entry) else "duplicate"


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(
        setl_id=row.setl_id, his_visit_id=row.his_visit_id, visit_kind=row.visit_kind, channel=row.channel,
        insutype=row.insutype, clr_type=row.clr_type, setl_optins=row.setl_optins,
        refd_setl_flag=row.refd_setl_flag, setl_time=row.setl_time, medfee_sumamt=row.medfee_sumamt,
        fund_pay_sumamt=row.fund_pay_sumamt, acct_pay=row.acct_pay, psn_cash_pay=row.psn_cash_pay,
        mdtrt_id=row.mdtrt_id, psn_no=row.psn_no, orig_setl_id=row.orig_setl_id, msgid=row.msgid,
        split=json.loads(row.split) if row.split else None, status=row.status, producer=row.producer,
        message_id=row.message_id, source=row.source,
    )


def _in_period(date_from: _dt.date, date_to: _dt.date) -> Any:
    start, end = period_bounds(date_from, date_to)
    return and_(recon_ledger.c.setl_time >= start, recon_ledger.c.setl_time < end,
                recon_ledger.c.status == "booked")


def _stream(conn: Connection, query: Select[Any], batch: int) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in batches of at most ``batch``, never the whole result at once: ``yield_per`` makes
    SQLAlchemy fetch through a server-side cursor (PostgreSQL: a psycopg named cursor, ``FETCH FORWARD batch``
    per batch) and keep one batch in its buffer; SQLite's cursor steps through the result the same way. The
    cursor lives in the connection's transaction, so the rows are one consistent snapshot."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    result = conn.execution_options(yield_per=batch).execute(query)
    try:
        yield from result.partitions()
    finally:
        result.close()


def _of_period(query: Select[Any], date_from: _dt.date, date_to: _dt.date, clr_type: str | None,
               setl_optins: str | None) -> Select[Any]:
    query = query.where(_in_period(date_from, date_to))
    if clr_type is not None:
        query = query.where(recon_ledger.c.clr_type == clr_type)
    if setl_optins is not None:
        query = query.where(recon_ledger.c.setl_optins == setl_optins)
    # booking order: the (clr_type, setl_optins, setl_time) and setl_time indexes deliver the period's rows in
    # it, whatever else the ledger holds (setl_id order would walk the primary key through every day)
    return query.order_by(recon_ledger.c.setl_time, recon_ledger.c.setl_id)


def entries_between(conn: Connection, date_from: _dt.date, date_to: _dt.date, *, clr_type: str | None = None,
                    setl_optins: str | None = None, batch: int = 5000) -> Iterator[LedgerEntry]:
    """Booked entries of the period (optionally one clr_type × setl_optins), streamed in booking order
    (setl_time, then setl_id)."""
    query = _of_period(select(recon_ledger), date_from, date_to, clr_type, setl_optins)
    for rows in _stream(conn, query, batch):
        for row in rows:
            yield _entry(row)


#: ledger columns a detail file can be written from as raw values: short text (not the split's JSON), and money
#: as its integer fen
_MONEY_COLUMNS = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
RAW_DETAIL_COLUMNS: frozenset[str] = frozenset(
    name for name, column in recon_ledger.c.items()
    if name in _MONEY_COLUMNS or (isinstance(column.type, String) and not isinstance(column.type, Text)))


def _raw(name: str) -> Any:
    column = recon_ledger.c[name]
    # money as the integer fen the Money column stores: no Python type processor per value and row
    return type_coerce(column, BigInteger).label(name) if name in _MONEY_COLUMNS else column


def detail_rows(conn: Connection, date_from: _dt.date, date_to: _dt.date, *, clr_type: str, setl_optins: str,
                columns: Sequence[str], batch: int = 5000) -> Iterator[Sequence[Any]]:
    """The booked entries of one clr_type × setl_optins of the period as raw rows for the 3202 detail file, in
    booking order, in batches of at most ``batch`` rows from a server-side cursor. Each row: the values of
    ``columns`` (text or None; money as integer fen), then medfee_sumamt, fund_pay_sumamt, acct_pay and
    psn_cash_pay in fen. Every column must be one of :data:`RAW_DETAIL_COLUMNS`."""
    unknown = [name for name in columns if name not in RAW_DETAIL_COLUMNS]
    if unknown:
        raise ValueError(f"not raw ledger columns: {', '.join(unknown)}")
    query = _of_period(select(*[_raw(name) for name in columns], *[_raw(name) for name in _MONEY_COLUMNS]),
                       date_from, date_to, clr_type, setl_optins)
    return _stream(conn, query, batch)


def detail_zip(conn: Connection, date_from: _dt.date, date_to: _dt.date, *, clr_type: str, setl_optins: str,
                filename: str, columns: Sequence[str], fmt: DetailFormat = DetailFormat(),
                batch: int = 5000) -> DetailFile:
    """The 3202 detail file of one clr_type × setl_optins of the period, streamed from the ledger into the zip:
    from raw rows (:func:`detail_rows`) when every column of the file is a text or money column of the ledger
    (the national columns are), else from whole entries (a province's file asking for more)."""
    if set(columns) <= RAW_DETAIL_COLUMNS:
        return build_detail_zip_from_rows(detail_rows(conn, date_from, date_to, clr_type=clr_type,
                                                      setl_optins=setl_optins, columns=columns, batch=batch),
                                          filename=filename, columns=columns, fmt=fmt)
    return build_detail_zip(entries_between(conn, date_from, date_to, clr_type=clr_type, setl_optins=setl_optins,
                                            batch=batch), filename=filename, columns=columns, fmt=fmt)


def entries_by_setl_ids(conn: Connection, setl_ids: Sequence[str]) -> dict[str, LedgerEntry]:
    """Entries (any status) by setl_id, for a batch of setl_ids."""
    if not setl_ids:
        return {}
    rows = conn.execute(select(recon_ledger).where(recon_ledger.c.setl_id.in_(list(setl_ids))))
    return {row.setl_id: _entry(row) for row in rows}


class LocalSide(NamedTuple):
    """The hospital's side of a difference as classification attaches it: a ledger entry without its split,
    times and bookkeeping (read for every difference of a day, tens of thousands in a large hospital)."""

    setl_id: str
    his_visit_id: str
    channel: str
    mdtrt_id: str | None
    psn_no: str | None
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal


_SIDE_COLUMNS = [recon_ledger.c[name] for name in LocalSide._fields]


def local_sides(conn: Connection, setl_ids: Sequence[str]) -> dict[str, LocalSide]:
    """Entries (any status) by setl_id, for a batch of setl_ids, as :class:`LocalSide`."""
    if not setl_ids:
        return {}
    rows = conn.execute(select(*_SIDE_COLUMNS).where(recon_ledger.c.setl_id.in_(list(setl_ids))))
    return {row[0]: LocalSide._make(row) for row in rows}


def entry_by_setl_id(conn: Connection, setl_id: str) -> LedgerEntry | None:
    row = conn.execute(select(recon_ledger).where(recon_ledger.c.setl_id == setl_id)).first()
    return None if row is None else _entry(row)


def ledger_totals(conn: Connection, date_from: _dt.date, date_to: _dt.date,
                  refd_setl_flag: str = "") -> dict[StatementKey, Totals]:
    """Totals per key, summed by the database (integer fen, exact) — the same as statement.totals_of."""
    c = recon_ledger.c
    query = (select(c.insutype, c.clr_type, c.setl_optins, func.sum(c.medfee_sumamt), func.sum(c.fund_pay_sumamt),
                    func.sum(c.acct_pay), func.sum(c.psn_cash_pay), func.count())
             .where(_in_period(date_from, date_to)).group_by(c.insutype, c.clr_type, c.setl_optins))
    if refd_setl_flag:
        query = query.where(c.refd_setl_flag == refd_setl_flag)
    out: dict[StatementKey, Totals] = {}
    for insutype, clr_type, optins, medfee, fund, acct, cash, count in conn.execute(query):
        out[StatementKey(insutype, clr_type, optins)] = Totals(
            money(medfee or ZERO), money(fund or ZERO), money(acct or ZERO), money(cash or ZERO), int(count))
    return out


def ledger_keys(conn: Connection, date_from: _dt.date, date_to: _dt.date) -> set[StatementKey]:
    c = recon_ledger.c
    query = select(c.insutype, c.clr_type, c.setl_optins).where(_in_period(date_from, date_to)).distinct()
    return {StatementKey(*row) for row in conn.execute(query)}


def optins_seen(conn: Connection, since: _dt.date, until: _dt.date) -> set[str]:
    """清算经办机构 of any national entry (booked or voided) between the two days — not of a cash-only one (a WeChat
    CASH_ONLY order or its refund, which may name none: no 医保 settlement, nothing for 3201 to ask)."""
    start, end = period_bounds(since, until)
    c = recon_ledger.c
    return set(conn.execute(select(c.setl_optins).where(c.setl_time >= start, c.setl_time < end,
                                                        c.status != "cash", c.setl_optins != "")
                            .distinct()).scalars())


def void_entry(conn: Connection, setl_id: str) -> bool:
    """Take a booked entry out of the ledger (the platform never had it); True when it was booked."""
    result = conn.execute(recon_ledger.update()
                          .where(recon_ledger.c.setl_id == setl_id, recon_ledger.c.status == "booked")
                          .values(status="voided", updated_at=clock.now()))
    return result.rowcount == 1


def correct_entry(conn: Connection, entry: LedgerEntry, amounts: dict[str, Decimal],
                  split: dict[str, Any] | None) -> LedgerEntry:
    """Set an entry's amounts to the platform's; the corrected entry."""
    fixed = replace(entry, medfee_sumamt=money(amounts["medfee_sumamt"]),
                    fund_pay_sumamt=money(amounts["fund_pay_sumamt"]), acct_pay=money(amounts["acct_pay"]),
                    psn_cash_pay=money(amounts["psn_cash_pay"]), split=split if split is not None else entry.split)
    conn.execute(recon_ledger.update().where(recon_ledger.c.setl_id == entry.setl_id).values(
        medfee_sumamt=fixed.medfee_sumamt, fund_pay_sumamt=fixed.fund_pay_sumamt, acct_pay=fixed.acct_pay,
        psn_cash_pay=fixed.psn_cash_pay,
        split=json.dumps(fixed.split, ensure_ascii=False) if fixed.split is not None else None,
        source="repair", updated_at=clock.now()))
    return fixed
