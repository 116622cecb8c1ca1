"""The catalogs in the database: ``catalog_state`` (the version in force of each catalog, and who syncs it),
``catalog_versions`` (every update applied or refused) and ``catalog_items`` (the rows in force, one per code).

An update is applied in the caller's one transaction: its version row, then its rows — streamed from the file in
batches of ``batch`` (PostgreSQL: COPY into a temporary table, then one merge; elsewhere: batched upserts), so a
file of any size is applied in bounded memory. A :class:`~yibao.upload_scheduler.errors.CatalogFileError` raised
while reading rolls all of it back: the catalog in force stays as it was.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from yibao.core import clock
from yibao.core.db.schema import catalog_items, catalog_state, catalog_versions
from yibao.upload_scheduler.catalog.files import CatalogLine, read_rows, version_key
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


def _close_version(conn: Connection, scope: str, infno: str, version_id: int, ver: str | None, rows: int) -> None:
    now = clock.now()
    _ensure(conn, scope, infno)
    conn.execute(update(catalog_versions).where(_V.id == version_id).values(ver=ver, rows=rows, status="applied"))
    conn.execute(update(catalog_state).where(_S.scope == scope, _S.infno == infno).values(
        ver=ver, rows=_count(conn, scope, infno), updated_at=now))


# --- applying ---------------------------------------------------------------------------------------------------

def _newer(lines: Iterable[CatalogLine], prev_ver: str | None, skipped: list[int], newest: list[str]) -> Iterator[CatalogLine]:
    floor = version_key(prev_ver) if prev_ver and prev_ver != "0" else None
    for line in lines:
        key = version_key(line.ver)
        if floor is not None and key <= floor:
            skipped[0] += 1
            continue
        if not newest or key > version_key(newest[0]):
            newest[:] = [line.ver]
        yield line


def apply_file(conn: Connection, layout: CatalogLayout, path: Path, *, file_name: str, prev_ver: str | None,
               expected_rows: int | None = None, batch: int = 5000) -> Applied:
    """Apply a 13xx file (rows of the versions after ``prev_ver``) in the caller's transaction."""
    scope, infno = scope_of(conn), layout.infno
    version_id = _open_version(conn, scope, infno, prev_ver, file_name)
    skipped, newest = [0], []  # type: ignore[var-annotated]
    lines = _newer(read_rows(path, layout, name=file_name), prev_ver, skipped, newest)
    if conn.dialect.name == "postgresql":
        rows = _copy_merge(conn, scope, infno, version_id, lines, batch)
    else:
        rows = _upsert_batches(conn, scope, infno, version_id, ((l.code, l.ver, l.vali_flag, l.rid, l.row)
                                                                  for l in lines), batch)
    total = rows + skipped[0]
    if expected_rows is not None and expected_rows != total:
        raise CatalogFileError(infno, file_name, 0, f"the platform announced {expected_rows} rows, the file holds "
                                                    f"{total}")
    ver = newest[0] if newest else prev_ver
    _close_version(conn, scope, infno, version_id, ver, rows)
    return Applied(version_id, ver, rows, skipped[0])


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


def _copy_merge(conn: Connection, scope: str, infno: str, version_id: int, lines: Iterable[CatalogLine],
                batch: int) -> int:
    """PostgreSQL: COPY the rows into a temporary table as they are read, then merge them in one statement."""
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur:  # type: ignore[union-attr]
        cur.execute("CREATE TEMPORARY TABLE yibao_catalog_stage (code text, ver text, vali_flag text, rid text, "
                    "row text, line integer) ON COMMIT DROP")
        with cur.copy("COPY yibao_catalog_stage (code, ver, vali_flag, rid, row, line) FROM STDIN") as copy:
            for line in lines:
                copy.write_row((line.code, line.ver, line.vali_flag, line.rid, line.row, line.line))
                n += 1
        if n:
            cur.execute(
                "INSERT INTO catalog_items AS t (scope, infno, code, ver, rid, vali_flag, row, version_id) "
                "SELECT DISTINCT ON (code) %(scope)s, %(infno)s, code, ver, rid, vali_flag, row, %(vid)s "
                "FROM yibao_catalog_stage ORDER BY code, line DESC "
                "ON CONFLICT (scope, infno, code) DO UPDATE SET ver = EXCLUDED.ver, rid = EXCLUDED.rid, "
                "vali_flag = EXCLUDED.vali_flag, row = EXCLUDED.row, version_id = EXCLUDED.version_id",
                {"scope": scope, "infno": infno, "vid": version_id})
        cur.execute("DROP TABLE yibao_catalog_stage")
    return n


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
