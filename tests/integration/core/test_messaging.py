"""Inbox and outbox on the real database and broker: applied once, published in order, never lost."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer

from support.kafka import consume
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import outbox
from yibao.core.kafka import create_topics
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import OutboxMessage, enqueue
from yibao.core.messaging.relay import OutboxRelay
from sqlalchemy import func, select


def test_an_event_id_is_applied_only_the_first_time(any_db_url: str) -> None:
    upgrade(any_db_url)
    engine = make_engine(any_db_url)
    with engine.begin() as conn:
        assert first_time(conn, "svc", "e1") is True
        assert first_time(conn, "svc", "e1") is False
        assert first_time(conn, "other-svc", "e1") is True
    engine.dispose()


def test_a_rolled_back_unit_of_work_forgets_the_event_id(any_db_url: str) -> None:
    upgrade(any_db_url)
    engine = make_engine(any_db_url)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            assert first_time(conn, "svc", "e2")
            raise RuntimeError("the effect failed")
    with engine.begin() as conn:
        assert first_time(conn, "svc", "e2") is True
    engine.dispose()


async def _sender(bootstrap: str) -> tuple[AIOKafkaProducer, object]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()

    async def send(batch: list[OutboxMessage]) -> None:
        futures = [await producer.send(m.topic, m.value, key=m.key) for m in batch]
        await asyncio.gather(*futures)

    return producer, send


async def test_the_relay_publishes_every_message_once_in_order_per_key(kafka_bootstrap: str, fresh_db_url: str,
                                                                      prefix: str) -> None:
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    topic = f"{prefix}out"
    await create_topics(kafka_bootstrap, [(topic, 3, {})])
    with engine.begin() as conn:
        for i in range(60):
            enqueue(conn, producer="p", topic=topic, key=f"visit-{i % 4}", value=json.dumps({"n": i}))
    producer, send = await _sender(kafka_bootstrap)
    try:
        relay = OutboxRelay(engine, "p", send, batch_size=25)
        published = 0
        while (n := await relay.drain_once()) > 0:
            published += n
    finally:
        await producer.stop()
    assert published == 60
    records = await consume(kafka_bootstrap, [topic], count=60, timeout=30)
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for r in records:
        per_key[r.key].append(json.loads(r.value)["n"])
    assert sum(len(v) for v in per_key.values()) == 60
    for numbers in per_key.values():
        assert numbers == sorted(numbers)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(outbox.c.published_at.is_(None))).scalar() == 0
    engine.dispose()


async def test_messages_stay_in_the_outbox_while_kafka_cannot_take_them(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    with engine.begin() as conn:
        enqueue(conn, producer="p", topic="t", key="k", value="{}")
    sent: list[OutboxMessage] = []

    async def broken(batch: list[OutboxMessage]) -> None:
        raise ConnectionError("broker away")

    async def working(batch: list[OutboxMessage]) -> None:
        sent.extend(batch)

    with pytest.raises(ConnectionError):
        await OutboxRelay(engine, "p", broken).drain_once()
    assert await OutboxRelay(engine, "p", working).drain_once() == 1
    assert [m.key for m in sent] == [b"k"]
    engine.dispose()


async def test_two_relays_of_one_producer_never_publish_the_same_message(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    with engine.begin() as conn:
        for i in range(200):
            enqueue(conn, producer="p", topic="t", key=str(i % 7), value=str(i))
    seen: list[bytes] = []

    async def send(batch: list[OutboxMessage]) -> None:
        await asyncio.sleep(0.01)
        seen.extend(m.value for m in batch)

    async def drain(relay: OutboxRelay) -> None:
        idle = 0
        while idle < 5:
            idle = idle + 1 if await relay.drain_once() == 0 else 0

    await asyncio.gather(drain(OutboxRelay(engine, "p", send, batch_size=20)),
                         drain(OutboxRelay(engine, "p", send, batch_size=20)))
    assert len(seen) == 200 and len(set(seen)) == 200
    engine.dispose()
