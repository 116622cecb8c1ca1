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

from sqlalchemy import Connection

from yibao.core import clock
from yibao.core.db.schema import outbox
from yibao.core.deployment import Deployment

__all__ = ["OutboxMessage", "enqueue"]


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


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
    payload = value.decode() if isinstance(value, bytes) else value
    deployment = Deployment.of(conn)
    conn.execute(
        outbox.insert().values(
            producer=deployment.scoped(producer), topic=topic, msg_key=key, payload=deployment.cipher.seal(payload),
            headers=json.dumps(headers) if headers else None, created_at=clock.now(),
        )
    )
