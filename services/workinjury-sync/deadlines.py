"""The deadline and lag gauges, read from ``workinjury_watch`` on a timer by every replica (so any pod tells the
whole truth; aggregate with ``max``):

* per upload transaction: the age of the oldest HIS event still waiting (``yibao_workinjury_upload_oldest_age_seconds``)
  against its deadline (``yibao_workinjury_upload_deadline_seconds``, the catalog's deadline_s), and the cases past
  ``deadline_warning_ratio`` of it (``yibao_workinjury_uploads_at_risk``);
* per download stream: the seconds since its last complete poll (``yibao_workinjury_download_lag_seconds``) against
  the poll interval (``yibao_workinjury_download_interval_seconds``).

A transaction with nothing waiting reads 0, so its series exist from the start and the alerts see them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from yibao.core import clock
from yibao.core.db.schema import workinjury_watch
from yibao.workinjury_sync import metrics
from yibao.workinjury_sync.store import watch_scope

__all__ = ["Watch", "read_watch", "publish", "upload_deadlines"]


@dataclass
class Watch:
    oldest: dict[str, float] = field(default_factory=dict)  #: upload infno → age of its oldest waiting event
    at_risk: dict[str, int] = field(default_factory=dict)
    lag: dict[str, float] = field(default_factory=dict)  #: stream → seconds since its last complete poll


def read_watch(conn: Connection, now: _dt.datetime, deadlines: dict[str, int], ratio: float) -> Watch:
    rows = conn.execute(select(workinjury_watch.c.kind, workinjury_watch.c.item, workinjury_watch.c.since)
                        .where(workinjury_watch.c.scope == watch_scope(conn))).all()
    watch = Watch()
    for kind, item, since in rows:
        age = max(0.0, (now - clock.as_shanghai(since)).total_seconds())
        if kind == "upload":
            watch.oldest[item] = max(watch.oldest.get(item, 0.0), age)
            deadline = deadlines.get(item)
            if deadline and age >= ratio * deadline:
                watch.at_risk[item] = watch.at_risk.get(item, 0) + 1
        else:
            watch.lag[item] = max(watch.lag.get(item, 0.0), age)
    return watch


def publish(watch: Watch, deadlines: dict[str, int], streams: tuple[str, ...], interval_s: float) -> None:
    for infno, deadline in deadlines.items():
        metrics.DEADLINE.labels(infno).set(deadline)
        metrics.OLDEST_WAITING.labels(infno).set(watch.oldest.get(infno, 0.0))
        metrics.AT_RISK.labels(infno).set(watch.at_risk.get(infno, 0))
    for infno in streams:
        metrics.POLL_INTERVAL.labels(infno).set(interval_s)
        if infno in watch.lag:
            metrics.DOWNLOAD_LAG.labels(infno).set(watch.lag[infno])


def upload_deadlines(catalog: Any) -> dict[str, int]:
    """Every upload of the catalog and its deadline."""
    return {spec.infno: spec.deadline_s for spec in catalog if spec.deadline_s}
