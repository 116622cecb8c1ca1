"""The catalogs in the database: ``catalog_state`` (the version in force of each catalog, and who syncs it),
``catalog_versions`` (every update applied or refused) and ``catalog_items`` (the rows in force, one per code).

An update is applied in the caller's one transaction: its version row, then its rows — streamed from the file in
batches of ``batch`` codes, so a file of any size is applied in bounded memory. PostgreSQL: a worker thread reads,
parses and encodes the file (binary COPY) a batch or two ahead while, per batch, the rows go in — straight into
catalog_items onto an empty catalog (a full download), else COPYed into a temporary staging table and the rows in
force of their codes updated in place from it (catalog_items' pages are half filled, so the update is HOT: no index
entry), the codes not in force yet inserted; elsewhere: batched upserts. Either way a code's last line in the file
wins. A :class:`~yibao.upload_scheduler.errors.CatalogFileError` raised while reading rolls all of it back: the
catalog in force stays as it was.
"""

from __future__ import annotations

import datetime as _dt
import json
import queue
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from yibao.core import clock
from yibao.core.db.schema import catalog_items, catalog_state, catalog_versions
from yibao.upload_scheduler.catalog.files import Row, iter_rows, version_key
from yibao.upload_scheduler.catalog.layouts import CatalogLayout
from yibao.upload_scheduler.errors import CatalogFileError
from yibao.upload_scheduler.store import scope_of

__all__ = ["Applied", "claim", "release", "current", "apply_file", "apply_rows", "refused", "states", "versions",
           "item", "unpublished", "rows_of_version", "mark_published"]

_S, _V, _I = catalog_state.c, catalog_versions.c, catalog_items.c


@dataclass(frozen=True)
class Applied:
    version_id: int | None
    ver: str | None  #: the version in force after the update
    rows: int  #: rows the update carried
    skipped: int  #: rows older than the version in force (left out)


# --- the state and its lease ------------------------------------------------------------------------------------

def _ensure(conn: Connection, scope: str, infno: str) -> None:
    exists = conn.execute(select(_S.infno).where(_S.scope == scope, _S.infno == infno)).first()
    if exists is None:
        stmt: Any
        if conn.dialect.name == "postgresql":
            stmt = pg_insert(catalog_state).on_conflict_do_nothing()
        else:
            stmt = sqlite_insert(catalog_state).on_conflict_do_nothing()
        conn.execute(stmt.values(scope=scope, infno=infno, ver=None, rows=0, updated_at=clock.now()))


def claim(conn: Connection, infno: str, owner: str, lease_s: float) -> str | None | bool:
    """Take the catalog's lease: its version in force (None: never synced), or False when another holds it."""
    scope, now = scope_of(conn), clock.now()
    _ensure(conn, scope, infno)
    taken = conn.execute(update(catalog_state).where(
        _S.scope == scope, _S.infno == infno,
        (_S.lease_until.is_(None)) | (_S.lease_until < now) | (_S.lease_owner == owner)
    ).values(lease_owner=owner, lease_until=now + _dt.timedelta(seconds=lease_s), last_attempt_at=now,
             updated_at=now)).rowcount
    if not taken:
        return False
    return conn.execute(select(_S.ver).where(_S.scope == scope, _S.infno == infno)).scalar_one()


def release(conn: Connection, infno: str, owner: str, *, error: str | None = None, success: bool = False) -> None:
    now = clock.now()
    values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "updated_at": now}
    if success:
        values.update(last_success_at=now, last_error=None)
    elif error is not None:
        values["last_error"] = error[:2000]
    conn.execute(update(catalog_state).where(_S.scope == scope_of(conn), _S.infno == infno,
                                             _S.lease_owner == owner).values(**values))


def current(conn: Connection, infno: str) -> str | None:
    return conn.execute(select(_S.ver).where(_S.scope == scope_of(conn), _S.infno == infno)).scalar()


def _count(conn: Connection, scope: str, infno: str) -> int:
    return int(conn.execute(select(func.count()).select_from(catalog_items).where(
        _I.scope == scope, _I.infno == infno)).scalar_one())


def _open_version(conn: Connection, scope: str, infno: str, prev_ver: str | None, file_name: str | None) -> int:
    return int(conn.execute(insert(catalog_versions).values(
        scope=scope, infno=infno, ver=None, prev_ver=prev_ver, rows=0, file_name=file_name, status="applying",
        created_at=clock.now()).returning(_V.id)).scalar_one())


def _close_version(conn: Connection, scope: str, infno: str, version_id: int, ver: str | None, rows: int,
                   in_force: int | None = None) -> None:
    """The version applied; ``in_force``: the catalog's rows now, when the caller kept count (else counted)."""
    now = clock.now()
    _ensure(conn, scope, infno)
    conn.execute(update(catalog_versions).where(_V.id == version_id).values(ver=ver, rows=rows, status="applied"))
    conn.execute(update(catalog_state).where(_S.scope == scope, _S.infno == infno).values(
        ver=ver, rows=_count(conn, scope, infno) if in_force is None else in_force, updated_at=now))


# --- applying ---------------------------------------------------------------------------------------------------

class _Versions:
    """Which rows an update keeps (versions after the one in force) and the newest version among them."""

    def __init__(self, prev_ver: str | None) -> None:
        self.floor = version_key(prev_ver) if prev_ver and prev_ver != "0" else None
        self.skipped = 0
        self.newest: str | None = None
        self._newest_key: tuple[int, str] | None = None

    def newer(self, rows: Iterable[Row]) -> Iterator[Row]:
        floor, last, keep = self.floor, None, True
        for row in rows:
            ver = row[1]
            if ver != last:  # rows come in runs of one version: compare each run once
                last, key = ver, version_key(ver)
                keep = floor is None or key > floor
                if keep and (self._newest_key is None or key > self._newest_key):
                    self._newest_key, self.newest = key, ver
            if keep:
                yield row
            else:
                self.skipped += 1


def apply_file(conn: Connection, layout: CatalogLayout, path: Path, *, file_name: str, prev_ver: str | None,
               expected_rows: int | None = None, batch: int = 5000) -> Applied:
    """Apply a 13xx file (rows of the versions after ``prev_ver``) in the caller's transaction."""
    scope, infno = scope_of(conn), layout.infno
    version_id = _open_version(conn, scope, infno, prev_ver, file_name)
    versions = _Versions(prev_ver)
    lines = versions.newer(iter_rows(path, layout, name=file_name))
    in_force: int | None = None
    if conn.dialect.name == "postgresql":
        # the state's count is the catalog's (every apply writes it, under the catalog's lease): kept up to date
        # by what the batches delete and insert instead of counting half a million rows again
        before = conn.execute(select(_S.rows).where(_S.scope == scope, _S.infno == infno)).scalar()
        rows, change = _copy_batches(conn, scope, infno, version_id, lines, batch)
        in_force = None if before is None else int(before) + change
    else:
        rows = _upsert_batches(conn, scope, infno, version_id, (r[:5] for r in lines), batch)
    total = rows + versions.skipped
    if expected_rows is not None and expected_rows != total:
        raise CatalogFileError(infno, file_name, 0, f"the platform announced {expected_rows} rows, the file holds "
                                                    f"{total}")
    ver = versions.newest or prev_ver
    _close_version(conn, scope, infno, version_id, ver, rows, in_force)
    return Applied(version_id, ver, rows, versions.skipped)


def apply_rows(conn: Connection, infno: str, rows: Iterable[tuple[str, str, str | None, str | None, str]], *,
               prev_ver: str | None, source: str, batch: int = 5000) -> Applied:
    """Apply rows a query answered ((code, ver, vali_flag, rid, row-as-JSON)) in the caller's transaction."""
    scope = scope_of(conn)
    version_id = _open_version(conn, scope, infno, prev_ver, source)
    newest: list[str] = []

    def track() -> Iterator[tuple[str, str, str | None, str | None, str]]:
        for row in rows:
            if not newest or version_key(row[1]) > version_key(newest[0]):
                newest[:] = [row[1]]
            yield row

    n = _upsert_batches(conn, scope, infno, version_id, track(), batch)
    ver = newest[0] if newest and (prev_ver is None or version_key(newest[0]) > version_key(prev_ver)) else prev_ver
    _close_version(conn, scope, infno, version_id, ver, n)
    return Applied(version_id, ver, n, 0)


def _upsert_batches(conn: Connection, scope: str, infno: str, version_id: int,
                    rows: Iterable[tuple[str, str, str | None, str | None, str]], batch: int) -> int:
    ins: Any = pg_insert(catalog_items) if conn.dialect.name == "postgresql" else sqlite_insert(catalog_items)
    stmt = ins.values(scope=bindparam("s"), infno=bindparam("i"), code=bindparam("c"), ver=bindparam("v"),
                      rid=bindparam("r"), vali_flag=bindparam("f"), row=bindparam("w"), version_id=bindparam("vid"))
    stmt = stmt.on_conflict_do_update(index_elements=["scope", "infno", "code"], set_={
        "ver": stmt.excluded.ver, "rid": stmt.excluded.rid, "vali_flag": stmt.excluded.vali_flag,
        "row": stmt.excluded.row, "version_id": stmt.excluded.version_id})
    n, buf = 0, []
    for code, ver, flag, rid, row in rows:
        buf.append({"s": scope, "i": infno, "c": code, "v": ver, "r": rid, "f": flag, "w": row, "vid": version_id})
        if len(buf) >= batch:
            conn.execute(stmt, buf)
            n, buf = n + len(buf), []
    if buf:
        conn.execute(stmt, buf)
        n += len(buf)
    return n


#: PostgreSQL's binary COPY: a row is its fields, each a length and its bytes — nothing to escape on our side and
#: nothing for the server to parse (the platform's row, a few hundred bytes, goes in as it is)
_COLUMNS = "(scope, infno, code, ver, vali_flag, rid, row, version_id)"
_COPY = f"COPY catalog_items {_COLUMNS} FROM STDIN WITH (FORMAT binary)"
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = b"\xff\xff"
_NULL_FIELD = struct.pack(">i", -1)
_LENGTH = struct.Struct(">i").pack
#: a batch for codes that may be in force already: COPYed into this session's staging table (temporary, never in
#: the WAL), then each row in force updated in place from it — catalog_items' fillfactor (migration 0018) leaves
#: room in the row's own page, so the update is HOT: no new index entry, the old version pruned by a later visit
_STAGE = "catalog_apply_stage"
_CREATE_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE catalog_items) ON COMMIT DROP"
_COPY_STAGE = f"COPY {_STAGE} {_COLUMNS} FROM STDIN WITH (FORMAT binary)"
_UPDATE = (f"UPDATE catalog_items AS t SET ver = s.ver, vali_flag = s.vali_flag, rid = s.rid, row = s.row, "
           f"version_id = s.version_id FROM {_STAGE} AS s "
           f"WHERE t.scope = s.scope AND t.infno = s.infno AND t.code = s.code")
#: the staged codes not in force yet (after the update: each code of the batch is either updated or inserted) —
#: when the update found none of them, the whole stage (a code in force after all would fail the primary key)
_INSERT_ALL = (f"INSERT INTO catalog_items {_COLUMNS} SELECT scope, infno, code, ver, vali_flag, rid, row, "
               f"version_id FROM {_STAGE}")
_INSERT_NEW = f"{_INSERT_ALL} ON CONFLICT (scope, infno, code) DO NOTHING"
_ANY_IN_FORCE = "SELECT EXISTS (SELECT 1 FROM catalog_items WHERE scope = %s AND infno = %s)"


class _Written:
    """The codes an apply onto an empty catalog wrote already — approximately, in a fixed bitmap of their hashes
    (8 MiB whatever the file's size): "not written" is certain (the row is COPYed straight in), "maybe" sends the
    row the careful way (staged and updated in place, or inserted). A code's later line still wins."""

    def __init__(self, bits: int = 1 << 26) -> None:
        self.mask = bits - 1
        self.map = bytearray(bits >> 3)

    def add(self, code: str) -> bool:
        """Record ``code``; True when it may have been written before."""
        h = hash(code) & self.mask
        at, bit = h >> 3, 1 << (h & 7)
        before = self.map[at] & bit
        self.map[at] |= bit
        return bool(before)


@dataclass(frozen=True, slots=True)
class _Batch:
    new: bytes | None  #: binary COPY of rows whose codes are certainly not in force (straight into catalog_items)
    new_rows: int
    staged: bytes | None  #: binary COPY of rows whose codes may be in force (through the staging table)
    staged_rows: int
    read: int  #: lines read for this batch (a code's earlier lines in the batch included)


def _copy_data(rows: list[bytes]) -> bytes | None:
    return b"".join((_HEADER, *rows, _TRAILER)) if rows else None


def _copy_batches_of(scope: str, infno: str, version_id: int, lines: Iterable[Row], batch: int,
                     written: _Written | None) -> Iterator[_Batch]:
    """The rows as binary COPY batches. A code is in a batch once (its last line: later lines win, as in the
    file); at most ``batch`` codes a batch. ``written`` (an empty catalog): rows of codes not written before go
    straight in; without it every row is staged."""
    s, i = scope.encode(), infno.encode()
    head = struct.pack(">hi", 8, len(s)) + s + _LENGTH(len(i)) + i
    tail = struct.pack(">iq", 8, version_id)
    length, null = _LENGTH, _NULL_FIELD
    pending: dict[str, bytes] = {}
    read = 0

    def flush() -> _Batch:
        if written is None:
            return _Batch(None, 0, _copy_data(list(pending.values())), len(pending), read)
        new, staged = [], []
        for code, data in pending.items():
            (staged if written.add(code) else new).append(data)
        return _Batch(_copy_data(new), len(new), _copy_data(staged), len(staged), read)

    for code, ver, flag, rid, row, _line in lines:
        c, v, w = code.encode(), ver.encode(), row.encode()
        f = null if flag is None else length(len(fb := flag.encode())) + fb
        r = null if rid is None else length(len(rb := rid.encode())) + rb
        pending[code] = b"".join((head, length(len(c)), c, length(len(v)), v, f, r, length(len(w)), w, tail))
        read += 1
        if len(pending) >= batch:
            yield flush()
            pending, read = {}, 0
    if pending or read:
        yield flush()


def _copy_batches(conn: Connection, scope: str, infno: str, version_id: int, lines: Iterable[Row],
                  batch: int) -> tuple[int, int]:
    """PostgreSQL: a batch at a time. Onto an empty catalog the rows are COPYed straight into catalog_items (a
    code the file carried before goes the careful way); else each batch is COPYed into the staging table, the
    rows in force of its codes updated in place from it (HOT, one statement) and the codes not in force yet
    inserted (a batch whose every code was in force skips that). A later batch carrying a code again replaces it
    again (the file's last line wins). The file is read, parsed and encoded by a worker thread a batch or two
    ahead (:func:`_ahead`): the reading and the database's writing overlap, and memory holds at most a few
    batches. Returns (rows read, change of the rows in force)."""
    raw = conn.connection.driver_connection
    read = change = 0
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(_ANY_IN_FORCE, (scope, infno))
        row = cur.fetchone()
        written = None if row is not None and row[0] else _Written()
        staging = False
        batches = _ahead(_copy_batches_of(scope, infno, version_id, lines, batch, written), depth=2)
        with closing(batches):  # closed: the reader stops at once
            for b in batches:
                read += b.read
                if b.new is not None:
                    with cur.copy(_COPY) as copy:
                        copy.write(b.new)
                    change += b.new_rows
                if b.staged is not None:
                    if not staging:
                        cur.execute(_CREATE_STAGE)
                        staging = True
                    cur.execute(f"TRUNCATE {_STAGE}")  # the last batch's (or an earlier apply's in the transaction)
                    with cur.copy(_COPY_STAGE) as copy:
                        copy.write(b.staged)
                    cur.execute(_UPDATE)
                    updated = max(cur.rowcount, 0)
                    if updated < b.staged_rows:
                        cur.execute(_INSERT_NEW if updated else _INSERT_ALL)
                        change += max(cur.rowcount, 0)
        if staging:
            cur.execute(f"DROP TABLE {_STAGE}")
    return read, change


T = TypeVar("T")


def _ahead(items: Iterator[T], *, depth: int) -> Iterator[T]:
    """``items`` produced by a worker thread at most ``depth`` ahead of the consumer (memory stays bounded). An
    exception the worker meets is raised here, after the items before it; a consumer that stops early (an error
    of its own) stops the worker, which closes ``items``."""
    channel: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                channel.put((0, item))
            if not stop.is_set():
                channel.put((1, None))
        except BaseException as exc:  # noqa: BLE001 — handed to the consumer, raised there
            if not stop.is_set():
                channel.put((2, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="yibao-catalog-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = channel.get()
            if kind == 0:
                yield value
            elif kind == 1:
                return
            else:
                raise value
    finally:
        stop.set()
        while worker.is_alive():  # free the worker if it waits to put: it sees ``stop`` before its next item
            try:
                channel.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def refused(conn: Connection, infno: str, *, prev_ver: str | None, file_name: str | None, error: str) -> None:
    """Record a refused update (its own transaction: the update's was rolled back)."""
    conn.execute(insert(catalog_versions).values(
        scope=scope_of(conn), infno=infno, ver=None, prev_ver=prev_ver, rows=0, file_name=file_name,
        status="refused", error=error[:2000], created_at=clock.now()))


# --- reading ----------------------------------------------------------------------------------------------------

def _fmt(value: _dt.datetime | None) -> str | None:
    return clock.format_datetime(value) if value is not None else None


def states(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(catalog_state).where(_S.scope == scope_of(conn)).order_by(_S.infno))
    return [{"infno": r.infno, "ver": r.ver, "rows": int(r.rows), "last_success_at": _fmt(r.last_success_at),
             "last_attempt_at": _fmt(r.last_attempt_at), "last_error": r.last_error,
             "syncing": r.lease_until is not None and r.lease_until > clock.now()} for r in rows]


def versions(conn: Connection, infno: str, *, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(select(catalog_versions).where(_V.scope == scope_of(conn), _V.infno == infno)
                        .order_by(_V.id.desc()).limit(limit))
    return [{"id": int(r.id), "ver": r.ver, "prev_ver": r.prev_ver, "rows": int(r.rows), "file_name": r.file_name,
             "status": r.status, "error": r.error, "created_at": _fmt(r.created_at),
             "published_at": _fmt(r.published_at)} for r in rows]


def _row_value(text: str) -> list[str | None] | dict[str, Any]:
    if text.startswith("{"):
        try:
            value = json.loads(text)
            if isinstance(value, dict):
                return value
        except ValueError:
            pass
    return [None if c == "null" else c for c in text.split("\t")]


def item(conn: Connection, infno: str, code: str) -> dict[str, Any] | None:
    r = conn.execute(select(catalog_items).where(_I.scope == scope_of(conn), _I.infno == infno, _I.code == code)).first()
    if r is None:
        return None
    return {"infno": r.infno, "code": r.code, "ver": r.ver, "rid": r.rid, "vali_flag": r.vali_flag,
            "row": _row_value(r.row)}


def unpublished(conn: Connection) -> list[tuple[int, str, str | None, str | None, int]]:
    """(id, infno, ver, prev_ver, rows) of applied updates not published yet, oldest first."""
    rows = conn.execute(select(_V.id, _V.infno, _V.ver, _V.prev_ver, _V.rows).where(
        _V.scope == scope_of(conn), _V.status == "applied", _V.published_at.is_(None)).order_by(_V.id))
    return [(int(i), f, v, p, int(n)) for i, f, v, p, n in rows]


def rows_of_version(conn: Connection, infno: str, version_id: int, *, after: str | None,
                    limit: int) -> list[tuple[str, str, str | None, list[str | None] | dict[str, Any]]]:
    cond = [_I.scope == scope_of(conn), _I.infno == infno, _I.version_id == version_id]
    if after is not None:
        cond.append(_I.code > after)
    rows = conn.execute(select(_I.code, _I.ver, _I.vali_flag, _I.row).where(*cond).order_by(_I.code).limit(limit))
    return [(c, v, f, _row_value(w)) for c, v, f, w in rows]


def mark_published(conn: Connection, version_id: int) -> None:
    conn.execute(update(catalog_versions).where(_V.id == version_id).values(published_at=clock.now()))
