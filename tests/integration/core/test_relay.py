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


# --- replicas: shards by message key ------------------------------------------------------------------------------

def _keys_in_two_shards(engine) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two message keys the database puts in different shards."""
    from sqlalchemy import text

    from yibao.core.messaging.relay import SHARDS

    with engine.connect() as conn:
        shard = {k: conn.execute(text("SELECT abs(mod(hashtext(:k), :n))"), {"k": k, "n": SHARDS}).scalar()
                 for k in (f"V{i}" for i in range(40))}
    first = "V0"
    return first, next(k for k, s in shard.items() if s != shard[first])


class _HeldSender:
    """A replica's sender that holds its first batch (and so its shards) until released."""

    def __init__(self, send) -> None:  # type: ignore[no-untyped-def]
        self.send, self.entered, self.release = send, asyncio.Event(), asyncio.Event()
        self.sent: list[bytes] = []

    async def __call__(self, batch: list[OutboxMessage]) -> None:
        self.entered.set()
        await self.release.wait()
        await self.send(batch)
        self.sent.extend(m.value for m in batch)


def _replica_engine(url: str, name: str):  # type: ignore[no-untyped-def]
    """Another replica's engine: its own connections (and so not the in-process turn-taking of one worker)."""
    return make_engine(f"{url}{'&' if '?' in url else '?'}application_name={name}")


@pytest.fixture
def replicas(fresh_db_url: str):  # type: ignore[no-untyped-def]
    """Two replicas' engines on one migrated database — PostgreSQL only: the shards are its advisory locks (SQLite
    is one process)."""
    upgrade(fresh_db_url)
    a_engine, b_engine = _replica_engine(fresh_db_url, "replica-a"), _replica_engine(fresh_db_url, "replica-b")
    try:
        if a_engine.dialect.name != "postgresql":
            pytest.skip("shards are PostgreSQL's (SQLite is one process)")
        yield a_engine, b_engine
    finally:
        a_engine.dispose()
        b_engine.dispose()


async def test_a_second_replicas_relay_publishes_other_keys_while_the_first_is_sending(
        kafka_bootstrap: str, replicas, prefix: str) -> None:  # type: ignore[no-untyped-def]
    a_engine, b_engine = replicas
    topic = f"{prefix}out"
    await create_topics(kafka_bootstrap, [(topic, 1, {})])
    first, other = _keys_in_two_shards(a_engine)
    with a_engine.begin() as conn:
        enqueue(conn, producer="p", topic=topic, key=first, value="a1")
    async with kafka_sender(kafka_bootstrap) as send:
        held = _HeldSender(send)
        sending = asyncio.create_task(OutboxRelay(a_engine, "p", held).drain_once())
        await asyncio.wait_for(held.entered.wait(), 30)  # replica A is sending: it holds the first key's shard
        with b_engine.begin() as conn:
            enqueue(conn, producer="p", topic=topic, key=other, value="b1")
        relay_b = OutboxRelay(b_engine, "p", send)
        assert await asyncio.wait_for(relay_b.drain_once(), 30) == 1  # not waiting for A
        held.release.set()
        assert await sending == 1
    values = sorted(r.value for r in await consume(kafka_bootstrap, [topic], count=2, timeout=30))
    assert values == [b"a1", b"b1"]


async def test_rows_of_a_key_another_replica_is_sending_wait_for_it_and_go_out_in_order(
        kafka_bootstrap: str, replicas, prefix: str) -> None:  # type: ignore[no-untyped-def]
    a_engine, b_engine = replicas
    topic = f"{prefix}out"
    await create_topics(kafka_bootstrap, [(topic, 1, {})])
    with a_engine.begin() as conn:
        enqueue(conn, producer="p", topic=topic, key="V1", value="1")
    async with kafka_sender(kafka_bootstrap) as send:
        held = _HeldSender(send)
        sending = asyncio.create_task(OutboxRelay(a_engine, "p", held).drain_once())
        await asyncio.wait_for(held.entered.wait(), 30)
        with b_engine.begin() as conn:  # the same key's next row, committed by replica B while A sends the first
            enqueue(conn, producer="p", topic=topic, key="V1", value="2")
        relay_b = OutboxRelay(b_engine, "p", send)
        assert await relay_b.drain_once() == 0 and relay_b.contended  # its shard is A's: B looks again soon
        held.release.set()
        assert await sending == 1
        assert await relay_b.drain_once() == 1
    records = await consume(kafka_bootstrap, [topic], count=2, timeout=30)
    assert [r.value for r in records] == [b"1", b"2"]
    a_engine.dispose()
    b_engine.dispose()


async def test_a_relay_of_the_unsharded_version_keeps_sharded_relays_out(fresh_db_url: str) -> None:
    """A rolling upgrade: the previous version's relay holds the producer's lock for its whole batch; the new
    relays publish nothing meanwhile (they hold that lock shared)."""
    from sqlalchemy import text

    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    with engine.begin() as conn:
        enqueue(conn, producer="p", topic="t", key="V1", value="1")
    sent: list[bytes] = []

    async def send(batch: list[OutboxMessage]) -> None:
        sent.extend(m.value for m in batch)

    relay = OutboxRelay(engine, "p", send)
    with engine.connect() as old:  # the old relay, mid-batch
        old.begin()
        old.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": relay._lock_id})
        assert await relay.drain_once() == 0
        old.rollback()
    assert await relay.drain_once() == 1 and sent == [b"1"]
    engine.dispose()
