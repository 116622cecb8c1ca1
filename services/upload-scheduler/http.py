"""What HIS and ops read from the upload scheduler, on its own web port (next to /metrics, /healthz, /readyz):

    GET /uploads/records?target=&kind=&status=&key=&his_visit_id=&limit=&after=<lane>|<key>
        → 200 {"records": [...], "next": "<lane>|<key>" | null}      each record's state, never its content
                                                   (a 7101's: the platform's review and purchases, ``feedback``)
    GET /uploads/records/<kind>/<key>     → 200 the record of that kind and key | 404
    GET /uploads/lanes                    → 200 {"lanes": [{target, kind, status, records}]}
    GET /uploads/summary?date=YYYY-MM-DD  → 200 the day's summary (due, sent, accepted, rejected, parked …) as JSON
    GET /uploads/summary.xlsx?date=…      → 200 the same as an Excel workbook (summary and problems sheets)
    GET /catalog/state                    → 200 every catalog: version in force, rows, last success, last error
    GET /catalog/<infno>/versions         → 200 its updates, applied and refused (file name and line)
    GET /catalog/<infno>/items/<code>     → 200 the row in force | 404

POST /national/inbound, where the platform posts its feedback (7102/7103), is :mod:`.inbound`'s.

A malformed query (unknown status, a date that is no date, a limit out of range) is answered 400 with a JSON
reason, never a 500. The handlers are plain functions of the query (``*_response``), tested without a server.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, and_, or_, select

from yibao.core import clock
from yibao.core.db.schema import upload_records
from yibao.hisevents.models import validation_reason
from yibao.upload_scheduler import summary
from yibao.upload_scheduler.catalog import store as catalog_store
from yibao.upload_scheduler.models import OPEN_STATUSES
from yibao.upload_scheduler.store import day_summary, lane_counts, record_rows, record_view, scope_of

__all__ = ["RecordsQuery", "records_response", "record_response", "lanes_response", "summary_response",
           "catalog_state_response", "catalog_versions_response", "catalog_item_response", "summary_xlsx", "answer",
           "routes", "install"]

log = logging.getLogger(__name__)
Db = Callable[[Callable[[Connection], Any]], Any]
_STATUSES = ("pending", "sent", "accepted", "rejected", "parked", "withdrawn")


class RecordsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    target: str | None = Field(None, max_length=24)
    kind: str | None = Field(None, max_length=40)
    status: str | None = None
    key: str | None = Field(None, max_length=160)
    his_visit_id: str | None = Field(None, max_length=80)
    limit: int = Field(100, ge=1, le=1000)
    after: str | None = Field(None, max_length=260)

    @field_validator("status")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in _STATUSES:
            raise ValueError(f"one of {', '.join(_STATUSES)}")
        return value


def _query(model: type[BaseModel], params: Mapping[str, str]) -> BaseModel | tuple[int, dict[str, Any]]:
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        return 400, {"error": validation_reason(exc)}


def records_response(conn: Connection, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    q = _query(RecordsQuery, params)
    if isinstance(q, tuple):
        return q
    assert isinstance(q, RecordsQuery)
    after = None
    if q.after:
        lane, sep, key = q.after.partition("|")
        if not sep:
            return 400, {"error": "after: <lane>|<key> (the next value of the previous page)"}
        after = (lane, key)
    rows = record_rows(conn, target=q.target, kind=q.kind, status=q.status, key=q.key, his_visit_id=q.his_visit_id,
                       limit=q.limit + 1, after=after)
    nxt = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        nxt = f"{rows[-1]['lane']}|{rows[-1]['key']}"
    return 200, {"records": rows, "next": nxt}


def record_response(conn: Connection, kind: str, key: str) -> tuple[int, dict[str, Any]]:
    if not kind or len(kind) > 40 or not key or len(key) > 160:
        return 400, {"error": "kind (≤40) and key (≤160) are required"}
    rows = record_rows(conn, kind=kind, key=key, limit=1)
    if not rows:
        return 404, {"error": f"no {kind} record with key {key}"}
    return 200, rows[0]


def lanes_response(conn: Connection) -> tuple[int, dict[str, Any]]:
    return 200, {"lanes": [{"target": t, "kind": k, "status": s, "records": n} for t, k, s, n in lane_counts(conn)]}


def _day(params: Mapping[str, str]) -> _dt.date | tuple[int, dict[str, Any]]:
    text = params.get("date")
    if not text:
        return clock.today()
    try:
        return _dt.date.fromisoformat(text.strip())
    except ValueError:
        return 400, {"error": "date: YYYY-MM-DD"}


def _problems(conn: Connection, day: _dt.date) -> list[dict[str, Any]]:
    r = upload_records.c
    start = _dt.datetime.combine(day, _dt.time(0), tzinfo=clock.SHANGHAI)
    end = start + _dt.timedelta(days=1)
    now = clock.now()
    rows = conn.execute(select(upload_records).where(
        r.scope == scope_of(conn), r.due_at >= start, r.due_at < end,
        or_(r.status.in_(("rejected", "parked")), and_(r.deadline_at < now, r.status.in_(OPEN_STATUSES)))
    ).order_by(r.kind, r.record_key).limit(5000))
    return [record_view(x) for x in rows]


def summary_response(conn: Connection, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    day = _day(params)
    if isinstance(day, tuple):
        return day
    return 200, summary.summary_json(day, day_summary(conn, day), _problems(conn, day))


def summary_xlsx(conn: Connection, params: Mapping[str, str]) -> tuple[int, bytes | dict[str, Any]]:
    day = _day(params)
    if isinstance(day, tuple):
        return day
    return 200, summary.build_xlsx(day, day_summary(conn, day), _problems(conn, day))


def catalog_state_response(conn: Connection) -> tuple[int, dict[str, Any]]:
    return 200, {"catalogs": catalog_store.states(conn)}


def catalog_versions_response(conn: Connection, infno: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    if not infno.isalnum() or len(infno) > 8:
        return 400, {"error": "infno: a catalog number (1301 …)"}
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        return 400, {"error": "limit: a number"}
    if not 1 <= limit <= 1000:
        return 400, {"error": "limit: 1..1000"}
    return 200, {"infno": infno, "versions": catalog_store.versions(conn, infno, limit=limit)}


def catalog_item_response(conn: Connection, infno: str, code: str) -> tuple[int, dict[str, Any]]:
    if not infno.isalnum() or len(infno) > 8 or not code or len(code) > 120:
        return 400, {"error": "infno and code (≤120) are required"}
    item = catalog_store.item(conn, infno, code)
    if item is None:
        return 404, {"error": f"{infno}: no row with code {code} in force"}
    return 200, item


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def answer(db: Db, fn: Callable[[Connection], tuple[int, Any]]) -> tuple[int, Any]:
    """``fn``'s answer, or 503 when the database cannot be reached (never a 500: the caller asks again)."""
    try:
        return await db(fn)  # type: ignore[no-any-return]
    except Exception as exc:  # noqa: BLE001 - whatever the database raised, HIS gets a reason, not a 500
        log.warning("upload query failed", extra={"fields": {"error": type(exc).__name__}})
        return 503, {"error": "the database is not reachable; ask again shortly"}


def routes() -> list[tuple[str, Callable[..., Callable[[Connection], tuple[int, Any]]]]]:
    """(path, query → unit of work) of each endpoint; a path's {names} are passed by name."""
    return [
        ("/uploads/records", lambda params: lambda c: records_response(c, params)),
        ("/uploads/records/{kind}/{key}", lambda params, kind, key: lambda c: record_response(c, kind, key)),
        ("/uploads/lanes", lambda params: lanes_response),
        ("/uploads/summary", lambda params: lambda c: summary_response(c, params)),
        ("/uploads/summary.xlsx", lambda params: lambda c: summary_xlsx(c, params)),
        ("/catalog/state", lambda params: catalog_state_response),
        ("/catalog/{infno}/versions",
         lambda params, infno: lambda c: catalog_versions_response(c, infno, params)),
        ("/catalog/{infno}/items/{code}", lambda params, infno, code: lambda c: catalog_item_response(c, infno, code)),
    ]


def install(app: Any, db: Db) -> None:
    """Add the endpoints to a faust app's web server (``db``: the runtime's unit-of-work runner)."""
    from faust.web import View

    for path, build in routes():
        def view(build: Callable[..., Any] = build) -> type:
            class Endpoint(View):  # type: ignore[misc]
                async def get(self, request: Any, **names: str) -> Any:
                    params = {k: v for k, v in request.query.items()}
                    status, body = await answer(db, build(params, **names))
                    if isinstance(body, bytes):
                        return self.bytes(body, content_type=XLSX)
                    return self.json(body, status=status)

            return Endpoint

        app.page(path)(view())
