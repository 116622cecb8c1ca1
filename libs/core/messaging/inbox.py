"""Idempotent consumers: remember every event id a consumer has handled, in the same transaction as its effect.

``first_time(conn, consumer, event_id)`` inserts the (consumer, event id) row and says whether it was new. Call
it first inside the unit of work: if it returns False the event was already applied (a CDC replay, a Kafka
redelivery after a crash) and the transaction should do nothing else. Because the row commits or rolls back
with the effect, an event is applied exactly once however often it arrives.

The consumer name is scoped by the deployment the connection belongs to (``<topic prefix><consumer>``, see
:mod:`yibao.core.deployment`): two deployments sharing a database never absorb each other's events.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import inbox
from yibao.core.deployment import Deployment

__all__ = ["first_time", "first_times"]


_INSERT: dict[str, Any] = {}


def _insert(dialect: str) -> Any:
    """The statement, built once per dialect (its compiled form is cached by SQLAlchemy)."""
    stmt = _INSERT.get(dialect)
    if stmt is None:
        module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
        if module is None:  # pragma: no cover - only the two supported databases
            raise NotImplementedError(dialect)
        # RETURNING, not rowcount: drivers disagree on rowcount for INSERT … ON CONFLICT DO NOTHING
        stmt = _INSERT[dialect] = (module.insert(inbox).values(
            consumer=bindparam("c"), event_id=bindparam("e"), received_at=bindparam("t"))
            .on_conflict_do_nothing().returning(inbox.c.event_id))
    return stmt


def first_time(conn: Connection, consumer: str, event_id: str) -> bool:
    params = {"c": Deployment.of(conn).scoped(consumer), "e": event_id, "t": clock.now()}
    return conn.execute(_insert(conn.dialect.name), params).first() is not None


def first_times(conn: Connection, consumer: str, event_ids: list[str]) -> list[bool]:
    """:func:`first_time` for many events in one statement (SQLAlchemy's insertmanyvalues: one INSERT … VALUES
    (…), (…) … RETURNING): a flag per id, in order; an id repeated in the list is new only at its first place."""
    if len(event_ids) <= 1:
        return [first_time(conn, consumer, e) for e in event_ids]
    scoped, now = Deployment.of(conn).scoped(consumer), clock.now()
    unique = list(dict.fromkeys(event_ids))
    new = set(conn.execute(_insert(conn.dialect.name), [{"c": scoped, "e": e, "t": now} for e in unique]).scalars())
    flags = []
    for e in event_ids:
        flags.append(e in new)
        new.discard(e)
    return flags
