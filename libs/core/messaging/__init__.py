"""Exactly-once effects from at-least-once Kafka: idempotent consumers (inbox), a transactional outbox and its
relay, and dead letters. See README "Delivery guarantees"."""

from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import OutboxMessage, enqueue

__all__ = ["DeadLetter", "first_time", "OutboxMessage", "enqueue"]
