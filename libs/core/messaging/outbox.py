"""The transactional outbox: messages are written in the same transaction as the state change that caused
them, and published to Kafka afterwards by :class:`~yibao.core.messaging.relay.OutboxRelay` — never a dual
write. A crash between commit and publish only delays the message; a crash between publish and marking it
published repeats it, which the consumers' inboxes absorb (every message carries a stable id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection

from yibao.core import clock
from yibao.core.db.schema import outbox

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
    conn.execute(
        outbox.insert().values(
            producer=producer, topic=topic, msg_key=key, payload=payload,
            headers=json.dumps(headers) if headers else None, created_at=clock.now(),
        )
    )
