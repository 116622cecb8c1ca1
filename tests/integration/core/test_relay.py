"""The outbox relay on the real broker and database: what it does with each kind of failure, and what it tells
readiness (``OutboxRelay.blocked``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from support.kafka import consume
from yibao.core.atrest import DataCipher
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import outbox, parked_work
from yibao.core.deployment import Deployment, bind
from yibao.core.kafka import create_topics
from yibao.core.messaging.outbox import OutboxMessage, enqueue
from yibao.core.messaging.relay import OutboxRelay

pytestmark = [pytest.mark.integration]

K1 = "k1:00112233445566778899aabbccddeeff"


@contextlib.asynccontextmanager
async def kafka_sender(bootstrap: str, **config: object) -> AsyncIterator:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **config)
    await producer.start()

    async def send(batch: list[OutboxMessage]) -> None:
        await asyncio.gather(*[await producer.send(m.topic, m.value, key=m.key) for m in batch])

    try:
        yield send
    finally:
        await producer.stop()


async def _until(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_topic_the_broker_cannot_take_yet_blocks_the_relay_visibly_and_nothing_is_parked(
        kafka_bootstrap: str, fresh_db_url: str, prefix: str) -> None:
    """The topic is missing (auto-creation is off): the broker's answer is retriable, the rows wait, readiness
    says why; once the topic exists they go out and the relay is ready again."""
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    missing = f"{prefix}created-later"
    with engine.begin() as conn:
        for n in range(3):
            enqueue(conn, producer="p", topic=missing, key="k", value=str(n))
    async with kafka_sender(kafka_bootstrap, request_timeout_ms=1500) as send:
        relay = OutboxRelay(engine, "p", send, poll_interval=0.2)
        relay.outages.backoff_max_s = 0.5
        stopping = asyncio.Event()
        running = asyncio.create_task(relay.run(stopping))
        try:
            await _until(lambda: relay.blocked() is not None)
            assert relay.blocked().startswith("outbox relay: broker unreachable")
            await create_topics(kafka_bootstrap, [(missing, 1, {})])
            await _until(lambda: relay.blocked() is None, timeout=90)
            records = await consume(kafka_bootstrap, [missing], count=3, timeout=30)
            assert [r.value for r in records] == [b"0", b"1", b"2"]
        finally:
            stopping.set()
            relay.wake()
            await running
    with engine.connect() as conn:
        assert conn.execute(select(parked_work.c.id)).all() == []
    engine.dispose()


async def test_a_batch_refused_as_a_whole_is_sent_row_by_row_to_find_the_poison_row(
        kafka_bootstrap: str, fresh_db_url: str, prefix: str) -> None:
    """A sender that cannot tell which row failed (it raises for the batch): the relay isolates the row."""
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    topic = f"{prefix}out"
    await create_topics(kafka_bootstrap, [(topic, 1, {})])
    with engine.begin() as conn:
        for value in ("a", "x" * 2_000_000, "b", "c"):
            enqueue(conn, producer="p", topic=topic, key="k", value=value)
    async with kafka_sender(kafka_bootstrap, max_request_size=3_000_000) as send:  # the broker refuses, not us
        relay = OutboxRelay(engine, "p", send)
        assert await relay.drain_once() == 4
        assert await relay.drain_once() == 0
    values = [r.value for r in await consume(kafka_bootstrap, [topic], idle=2, timeout=30)]
    assert b"a" in values and values[-2:] == [b"b", b"c"] and all(len(v) < 10 for v in values)
    with engine.connect() as conn:
        [parked] = conn.execute(select(parked_work.c.reason_code)).all()
        assert parked.reason_code == "message_too_large"
    engine.dispose()


async def test_a_row_sealed_with_a_key_that_is_not_configured_stops_the_relay_saying_which_key(
        fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    plain = bind(base, Deployment())
    with plain.begin() as conn:
        enqueue(conn, producer="p", topic="t", key="k", value="before")
    with bind(base, Deployment(cipher=DataCipher.from_secret(K1))).begin() as conn:
        enqueue(conn, producer="p", topic="t", key="k", value="sealed")
    sent: list[bytes] = []

    async def send(batch: list[OutboxMessage]) -> None:
        sent.extend(m.value for m in batch)

    relay = OutboxRelay(plain, "p", send, poll_interval=0.1)
    stopping = asyncio.Event()
    running = asyncio.create_task(relay.run(stopping))
    try:
        await _until(lambda: relay.blocked() is not None)
        assert "'k1', which is not configured" in relay.blocked()
        assert sent == [b"before"], "the rows before it went out"
    finally:
        stopping.set()
        relay.wake()
        await running
    with base.connect() as conn:
        assert conn.execute(select(outbox.c.published_at).order_by(outbox.c.id)).scalars().all()[1] is None
    base.dispose()


async def test_sealed_rows_are_published_in_clear(kafka_bootstrap: str, fresh_db_url: str, prefix: str) -> None:
    upgrade(fresh_db_url)
    engine = bind(make_engine(fresh_db_url), Deployment(cipher=DataCipher.from_secret(K1)))
    topic = f"{prefix}sealed"
    await create_topics(kafka_bootstrap, [(topic, 1, {})])
    payload = json.dumps({"psn_name": "张三"}, ensure_ascii=False)
    with engine.begin() as conn:
        enqueue(conn, producer="p", topic=topic, key="k", value=payload)
        stored = conn.execute(select(outbox.c.payload)).scalar_one()
    assert stored.startswith("yb1.k1.") and "张三" not in stored
    async with kafka_sender(kafka_bootstrap) as send:
        assert await OutboxRelay(engine, "p", send).drain_once() == 1
    [record] = await consume(kafka_bootstrap, [topic], count=1, timeout=30)
    assert record.value.decode() == payload
    engine.dispose()
