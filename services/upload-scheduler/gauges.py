"""The gauges ops watch, measured from the database on a timer: the backlog of each target and kind by status, the
margin to the earliest deadline among records not accepted yet (negative: missed by that long), the records past
their deadline, and the rows of each catalog in force."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection

from yibao.core import clock
from yibao.upload_scheduler import metrics
from yibao.upload_scheduler.catalog import store as catalog_store
from yibao.upload_scheduler.config import UploadConfig
from yibao.upload_scheduler.models import OPEN_STATUSES
from yibao.upload_scheduler.store import lane_counts, open_margins

__all__ = ["measure", "read_gauges"]

log = logging.getLogger(__name__)
_seen: set[tuple[str, str]] = set()


def read_gauges(conn: Connection) -> tuple[list[tuple[str, str, str, int]], list[Any], list[dict[str, Any]]]:
    return lane_counts(conn), open_margins(conn, OPEN_STATUSES), catalog_store.states(conn)


async def measure(db: Callable[[Callable[[Connection], Any]], Awaitable[Any]], config: UploadConfig) -> None:
    """Set the gauges; a database that does not answer leaves the last figures standing."""
    try:
        counts, margins, catalogs = await db(read_gauges)
    except Exception as exc:  # a metric must never stop the worker
        log.warning("upload gauges not measured", extra={"fields": {"error": type(exc).__name__}})
        return
    lanes = {(spec.target, spec.kind) for spec in config.lanes.values()}
    by: dict[tuple[str, str, str], int] = {(t, k, s): n for t, k, s, n in counts}
    for target, kind in lanes | {(t, k) for t, k, _, _ in counts}:
        for status in OPEN_STATUSES:
            metrics.BACKLOG.labels(target, kind, status).set(by.get((target, kind, status), 0))
    now = clock.now()
    open_now: set[tuple[str, str]] = set()
    for target, kind, deadline, overdue in margins:
        metrics.OVERDUE.labels(target, kind).set(overdue)
        if deadline is not None:
            metrics.DEADLINE_MARGIN.labels(target, kind).set((deadline - now).total_seconds())
            open_now.add((target, kind))
    for target, kind in _seen - open_now:
        try:
            metrics.DEADLINE_MARGIN.remove(target, kind)
        except KeyError:
            pass
        metrics.OVERDUE.labels(target, kind).set(0)
    _seen.clear()
    _seen.update(open_now)
    for state in catalogs:
        metrics.CATALOG_ROWS.labels(state["infno"]).set(state["rows"])
