"""Retention: personal data the bridge no longer needs is deleted after ``retention_days``.

What goes (each older than the cutoff, ``now - retention_days``):

* ``outbox`` rows published (or parked) before the cutoff — their payloads are HIS events and results;
* ``inbox`` rows received before the cutoff — event ids only, but they are the deduplication window: a CDC replay
  of changes older than ``retention_days`` would be applied again, so keep it longer than any replay you may
  need (the default 30 days is far beyond Kafka's default 7-day topic retention);
* ``parked_work`` rows replayed before the cutoff (work still waiting for a person is never purged);
* whatever other parts register with :func:`register` (the chain engine: finished visits' state).

``platform_calls`` is kept: its payloads are stored masked and reconciliation (3201/3202, disputes) reads it.

Every worker applies the policy on a timer (``retention_interval_s``); ``yibao data purge`` applies it once (with
``--dry-run`` it only counts). With a topic prefix only the deployment's own rows are touched; without one the
policy applies to the whole database.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, delete, func, select

from yibao.core import clock, metrics
from yibao.core.db.schema import inbox, outbox, parked_work
from yibao.core.deployment import Deployment

__all__ = ["RetentionPolicy", "purge", "register", "Purger"]

log = logging.getLogger(__name__)

#: a purge of one more table: (connection, cutoff, dry_run) -> (table name, rows deleted or that would be)
Purger = Callable[[Connection, _dt.datetime, bool], tuple[str, int]]
_EXTRA: list[Purger] = []

_BATCH = 5000


@dataclass(frozen=True)
class RetentionPolicy:
    days: int = 30

    @classmethod
    def from_settings(cls, settings: object) -> "RetentionPolicy":
        return cls(days=int(getattr(settings, "retention_days", 30)))

    def cutoff(self, now: _dt.datetime | None = None) -> _dt.datetime:
        return (now or clock.now()) - _dt.timedelta(days=self.days)


def register(purger: Purger) -> None:
    """Add a table of another part (the chain engine's) to every purge."""
    if purger not in _EXTRA:
        _EXTRA.append(purger)


def _mine(column, deployment: Deployment):  # type: ignore[no-untyped-def]
    return column.startswith(deployment.prefix, autoescape=True) if deployment.prefix else True


def _count_or_delete(conn: Connection, table, condition, dry_run: bool, *, by_id: bool) -> int:  # type: ignore[no-untyped-def]
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(table).where(condition)).scalar_one())
    if not by_id:
        return int(conn.execute(delete(table).where(condition)).rowcount or 0)
    total = 0
    while True:  # in batches: a first purge of a large table does not hold one huge transaction's locks
        ids = conn.execute(select(table.c.id).where(condition).limit(_BATCH)).scalars().all()
        if not ids:
            return total
        total += int(conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount or 0)


def purge(engine: Engine, policy: RetentionPolicy, *, dry_run: bool = False,
          now: _dt.datetime | None = None) -> dict[str, int]:
    """Apply the policy once; returns the rows deleted (or that would be, with ``dry_run``) per table."""
    if policy.days <= 0:
        return {}
    cutoff = policy.cutoff(now)
    deployment = Deployment.of(engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        counts["outbox"] = _count_or_delete(conn, outbox, and_(
            outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff,
            _mine(outbox.c.producer, deployment)), dry_run, by_id=True)
        counts["inbox"] = _count_or_delete(conn, inbox, and_(
            inbox.c.received_at < cutoff, _mine(inbox.c.consumer, deployment)), dry_run, by_id=False)
        counts["parked_work"] = _count_or_delete(conn, parked_work, and_(
            parked_work.c.replayed_at.is_not(None), parked_work.c.replayed_at < cutoff,
            _mine(parked_work.c.service, deployment)), dry_run, by_id=True)
        for extra in _EXTRA:
            name, n = extra(conn, cutoff, dry_run)
            counts[name] = counts.get(name, 0) + n
    if not dry_run:
        for table, n in counts.items():
            if n:
                metrics.PURGED.labels(table).inc(n)
        if any(counts.values()):
            log.info("retention purge", extra={"fields": {"cutoff": cutoff.isoformat(timespec="seconds"),
                                                         **{f"deleted_{t}": n for t, n in counts.items()}}})
    return counts
