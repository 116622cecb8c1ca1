"""How much parked work waits for a person: the dead letters ``yibao replay dlq`` has not gone through yet.

The DLQ topic's depth is its end offsets minus the replay consumer group's committed offsets (or the earliest
retained offset when the group never ran): what ``yibao replay dlq`` would read next. Letters it skipped with a
filter (``--service``, ``--reason-code``) count as gone through. Letters the topic could not take sit in the
``parked_work`` table until replayed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from sqlalchemy import Connection, func, select

from yibao.core.db.schema import parked_work
from yibao.core.kafka import KafkaAccess, Reach
from yibao.core.topics import topic

__all__ = ["replay_group", "dead_letter_topic_depth", "parked_work_waiting"]


def replay_group(prefix: str = "") -> str:
    """The consumer group of ``yibao replay dlq``: its committed offsets mark what was replayed."""
    return f"{prefix}yibao-replay"


async def dead_letter_topic_depth(reach: Reach, prefix: str = "", *, timeout_s: float = 10) -> int:
    """Dead letters on the DLQ topic that ``yibao replay dlq`` has not read yet (0 when the topic is missing)."""
    dlq = topic("dlq", prefix)
    options = KafkaAccess.of(reach).client_options()
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=int(timeout_s * 1000))
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    try:
        await admin.start()
        try:
            if dlq not in await consumer.topics():
                return 0
            [described] = await admin.describe_topics([dlq])
            partitions = [TopicPartition(dlq, p["partition"]) for p in described.get("partitions", ())]
            if not partitions:
                return 0
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            committed = await _committed(admin, replay_group(prefix), partitions)
        finally:
            await admin.close()
    finally:
        await consumer.stop()
    depth = 0
    for tp in partitions:
        done = committed.get(tp)
        read_up_to = done.offset if done is not None and done.offset >= 0 else starts[tp]
        depth += max(0, ends[tp] - max(read_up_to, starts[tp]))
    return depth


async def _committed(admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]) -> dict[Any, Any]:
    """The group's committed offsets. A broker's first group lookup creates its offsets topic, and until then
    answers 'coordinator not available': asked again a few times."""
    for attempt in range(5):
        try:
            return await admin.list_consumer_group_offsets(group, partitions=partitions)
        except GroupCoordinatorNotAvailableError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    return {}  # pragma: no cover - the loop returns or raises


def parked_work_waiting(conn: Connection) -> int:
    """Dead letters parked in the table (the DLQ topic could not take them) and not replayed yet."""
    return int(conn.execute(select(func.count()).select_from(parked_work)
                            .where(parked_work.c.replayed_at.is_(None))).scalar_one())
