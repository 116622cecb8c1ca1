"""Producing to and reading from the real broker in tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from yibao.core.kafka import KafkaAccess, Reach


async def produce(bootstrap: Reach, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**KafkaAccess.of(bootstrap).client_options(), acks="all", linger_ms=2)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(bootstrap: Reach, topics: list[str], *, count: int | None = None, timeout: float = 60,
                  idle: float | None = None,
                  until: Callable[[list[ConsumerRecord]], bool] | None = None) -> list[ConsumerRecord]:
    """Read from the beginning until ``count`` records arrived, ``until(records)`` holds, ``idle`` seconds pass
    without a record, or the timeout."""
    consumer = AIOKafkaConsumer(
        *topics, **KafkaAccess.of(bootstrap).client_options(), group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=6000,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = loop.time()
    try:
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            for recs in batch.values():
                records.extend(recs)
            if batch:
                last = loop.time()
            if count is not None and len(records) >= count:
                break
            if until is not None and until(records):
                break
            if idle is not None and records and loop.time() - last > idle:
                break
    finally:
        await consumer.stop()
    return records
