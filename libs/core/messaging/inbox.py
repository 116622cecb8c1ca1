"""Idempotent consumers: remember every event id a consumer has handled, in the same transaction as its effect.

``first_time(conn, consumer, event_id)`` inserts the (consumer, event id) row and says whether it was new. Call
it first inside the unit of work: if it returns False the event was already applied (a CDC replay, a Kafka
redelivery after a crash) and the transaction should do nothing else. Because the row commits or rolls back
with the effect, an event is applied exactly once however often it arrives.

The consumer name is scoped by the deployment the connection belongs to (``<topic prefix><consumer>``, see
:mod:`yibao.core.deployment`): two deployments sharing a database never absorb each other's events.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import inbox
from yibao.core.deployment import Deployment

__all__ = ["first_time"]


def first_time(conn: Connection, consumer: str, event_id: str) -> bool:
    values = {"consumer": Deployment.of(conn).scoped(consumer), "event_id": event_id, "received_at": clock.now()}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(inbox).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(inbox).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported databases
        raise NotImplementedError(dialect)
    # RETURNING, not rowcount: drivers disagree on rowcount for INSERT … ON CONFLICT DO NOTHING
    return conn.execute(stmt.returning(inbox.c.event_id)).first() is not None
