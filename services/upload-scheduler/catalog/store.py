"""The catalogs in the database: ``catalog_state`` (the version in force of each catalog, and who syncs it),
``catalog_versions`` (every update applied or refused) and ``catalog_items`` (the rows in force, one per code).

An update is applied in the caller's one transaction: its version row, then its rows — streamed from the file in
batches of ``batch`` codes, so a file of any size is applied in bounded memory. PostgreSQL: a worker thread reads
and parses the file a batch or two ahead while, per batch, the rows in force of its codes are deleted (a primary-key
probe a code) and the batch is COPYed into catalog_items; elsewhere: batched upserts. Either way a code's last line
in the file wins. A :class:`~yibao.upload_scheduler.errors.CatalogFileError` raised while reading rolls all of it
back: the catalog in force stays as it was.
"""

from __future__ import annotations

import datetime as _dt
import json
import queue
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


#: COPY's text format with the unit separator between columns: the platform's row (tab-separated) goes in as it
#: is; only a backslash, a carriage return or a unit separator in a line needs escaping (rare: the slow path)
_COPY = ("COPY catalog_items (scope, infno, code, ver, vali_flag, rid, row, version_id) FROM STDIN "
         "WITH (FORMAT text, DELIMITER E'\\x1f')")
_SEP, _NULL = "\x1f", "\\N"
#: the rows in force of a batch's codes, each found through the primary key (one probe a code: the LIMIT keeps the
#: planner from turning the lookup into a scan of the whole catalog, whatever its statistics say)
_DELETE = ("DELETE FROM catalog_items WHERE ctid = ANY(ARRAY(SELECT x.ctid FROM unnest(%(codes)s::text[]) AS u(code) "
           "CROSS JOIN LATERAL (SELECT t.ctid FROM catalog_items t WHERE t.scope = %(scope)s AND t.infno = %(infno)s "
           "AND t.code = u.code LIMIT 1) AS x))")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace(_SEP, "\\x1f")


def _copy_text(scope: str, infno: str, version_id: int, lines: Iterable[Row],
               batch: int) -> Iterator[tuple[list[str], bytes, int]]:
    """The rows as batches for COPY: (the batch's codes, its COPY text, rows read). A code is in a batch once
    (its last line: later lines win, as in the file); at most ``batch`` codes a batch."""
    head, tail = f"{_escape(scope)}{_SEP}{_escape(infno)}{_SEP}", f"{_SEP}{version_id}\n"
    pending: dict[str, str] = {}
    read = 0
    for code, ver, flag, rid, row, _line in lines:
        if "\\" in row or "\r" in row or _SEP in row:  # code, ver, flag and rid are cells of the row
            code_, ver_, row_ = _escape(code), _escape(ver), _escape(row)
            flag_ = _NULL if flag is None else _escape(flag)
            rid_ = _NULL if rid is None else _escape(rid)
            pending[code] = f"{head}{code_}{_SEP}{ver_}{_SEP}{flag_}{_SEP}{rid_}{_SEP}{row_}{tail}"
        else:
            pending[code] = (f"{head}{code}{_SEP}{ver}{_SEP}{_NULL if flag is None else flag}{_SEP}"
                             f"{_NULL if rid is None else rid}{_SEP}{row}{tail}")
        read += 1
        if len(pending) >= batch:
            yield list(pending), "".join(pending.values()).encode(), read
            pending, read = {}, 0
    if pending or read:
        yield list(pending), "".join(pending.values()).encode(), read


def _copy_batches(conn: Connection, scope: str, infno: str, version_id: int, lines: Iterable[Row],
                  batch: int) -> tuple[int, int]:
    """PostgreSQL: a batch at a time, delete the rows in force of the batch's codes, then COPY the batch straight
    into catalog_items. A later batch carrying a code again replaces it again (the file's last line wins). The file
    is read and parsed by a worker thread a batch or two ahead (:func:`_ahead`): the reading and the database's
    writing overlap, and memory holds at most a few batches. Returns (rows read, change of the rows in force)."""
    raw = conn.connection.driver_connection
    read = change = 0
    params: dict[str, Any] = {"scope": scope, "infno": infno}
    batches = _ahead(_copy_text(scope, infno, version_id, lines, batch), depth=2)
    with raw.cursor() as cur, closing(batches):  # type: ignore[union-attr]  # closed: the reader stops at once
        for codes, text, n in batches:
            read += n
            if not codes:
                continue
            params["codes"] = codes
            cur.execute(_DELETE, params)
            change -= max(cur.rowcount, 0)
            with cur.copy(_COPY) as copy:
                copy.write(text)
            change += len(codes)
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
