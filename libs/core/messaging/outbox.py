"""The transactional outbox: messages are written in the same transaction as the state change that caused
them, and published to Kafka afterwards by :class:`~yibao.core.messaging.relay.OutboxRelay` — never a dual
write. A crash between commit and publish only delays the message; a crash between publish and marking it
published repeats it, which the consumers' inboxes absorb (every message carries a stable id).

Rows belong to a deployment: the producer name is scoped (``<topic prefix><producer>``) and the payload is
sealed with the deployment's data cipher (plain when no data key is configured) — both taken from the
connection (:mod:`yibao.core.deployment`); the relay opens it before publishing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam

from yibao.core import clock
from yibao.core.db.schema import outbox
from yibao.core.deployment import Deployment

__all__ = ["OutboxMessage", "enqueue", "enqueue_many", "Outgoing", "WROTE_OUTBOX"]

#: set in ``conn.info`` by :func:`enqueue_many`: the transaction wrote outbox rows (the relay has work once it commits)
WROTE_OUTBOX = "yibao_wrote_outbox"


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


#: one message for :func:`enqueue_many`: (topic, key, value, headers)
Outgoing = tuple[str, "str | None", "bytes | str", "dict[str, str] | None"]

_INSERT = outbox.insert().values(producer=bindparam("p"), topic=bindparam("t"), msg_key=bindparam("k"),
                                 payload=bindparam("v"), headers=bindparam("h"), created_at=bindparam("at"))


def enqueue_many(conn: Connection, producer: str, messages: list[Outgoing]) -> None:
    """Add messages to the outbox inside the caller's transaction, in this order, in one statement."""
    if not messages:
        return
    conn.info[WROTE_OUTBOX] = True
    deployment = Deployment.of(conn)
    scoped, seal, now = deployment.scoped(producer), deployment.cipher.seal, clock.now()
    conn.execute(_INSERT, [
        {"p": scoped, "t": topic, "k": key, "v": seal(value.decode() if isinstance(value, bytes) else value),
         "h": json.dumps(headers) if headers else None, "at": now}
        for topic, key, value, headers in messages])


def enqueue(
    conn: Connection,
    *,
    producer: str,
    topic: str,
    key: str | None,
    value: bytes | str,
    headers: dict[str, str] | None = None,
) -> None:
    """Add a message to the outbox inside the caller's transaction."""
    enqueue_many(conn, producer, [(topic, key, value, headers)])
