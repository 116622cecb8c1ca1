"""Two deployments (topic prefixes) sharing one PostgreSQL database never swallow each other's events nor
publish each other's rows: the inbox, the outbox, the relay and parked work are scoped by the prefix in one
place (yibao.core.deployment)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from support.ingest import IngestDeployment
from support.kafka import consume
from support.stack import new_database
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import inbox, outbox
from yibao.core.deployment import Deployment, bind
from yibao.core.kafka import create_topics
from yibao.core.messaging.deadletter import DeadLetter, park_in_table, parked_letters
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import OutboxMessage, enqueue
from yibao.core.messaging.relay import OutboxRelay
from yibao.stack import Stack

pytestmark = [pytest.mark.integration]


def _prefixes() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"a{tag}.", f"b{tag}."


async def test_two_ingest_workers_of_two_prefixes_on_one_database_each_publish_every_event(
        stack: Stack, kafka_bootstrap: str, tmp_path: Path) -> None:
    """The same HIS day through two deployments: the event ids are the same (they come from the HIS rows), and
    each deployment publishes all of them — none is taken for the other's duplicate."""
    url = new_database(stack, tmp_path)
    first, second = (IngestDeployment(p, kafka_bootstrap, url) for p in _prefixes())
    day = first.day(31, outpatients=8)
    wanted = set(first.expected_ids(day))
    assert wanted == set(second.expected_ids(day)), "the same changes give the same event ids"
    workers = []
    try:
        for n, deployment in enumerate((first, second)):
            await deployment.create_cdc_topics()
            workers.append(deployment.worker(tmp_path / f"ingest-{n}.log").start())
        await asyncio.gather(first.send(day), second.send(day))
        for deployment in (first, second):
            got = await deployment.events(wanted)
            assert deployment.id_counts(got) == {i: 1 for i in wanted}
            assert all(json.loads(r.value)["source"]["topic"].startswith(deployment.prefix) for r in got), \
                "each deployment publishes only its own rows"
    finally:
        for worker in workers:
            worker.stop()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            consumers = set(conn.execute(select(inbox.c.consumer).distinct()).scalars())
            producers = set(conn.execute(select(outbox.c.producer).distinct()).scalars())
        assert consumers == producers == {f"{first.prefix}ingest", f"{second.prefix}ingest"}
    finally:
        engine.dispose()


async def test_a_relay_publishes_only_its_own_deployments_rows(kafka_bootstrap: str, fresh_db_url: str,
                                                                prefix: str) -> None:
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    a, b = (bind(base, Deployment(prefix=p)) for p in _prefixes())
    out = f"{prefix}out"
    await create_topics(kafka_bootstrap, [(out, 1, {})])
    for engine, tag in ((a, "a"), (b, "b")):
        with engine.begin() as conn:
            assert first_time(conn, "svc", "same-event") is True, "the other deployment's inbox is not ours"
            for i in range(5):
                enqueue(conn, producer="svc", topic=out, key="k", value=f"{tag}{i}")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def send(batch: list[OutboxMessage]) -> None:
        await asyncio.gather(*[await producer.send(m.topic, m.value, key=m.key) for m in batch])

    try:
        assert await OutboxRelay(a, "svc", send).drain_once() == 5
        assert await OutboxRelay(a, "svc", send).drain_once() == 0, "b's rows are not a's to publish"
        records = await consume(kafka_bootstrap, [out], count=5, timeout=30)
        assert sorted(r.value.decode() for r in records) == [f"a{i}" for i in range(5)]
        assert await OutboxRelay(b, "svc", send).drain_once() == 5
    finally:
        await producer.stop()
        base.dispose()


def test_parked_work_is_replayed_by_its_own_deployment_only(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    plain, a = bind(base, Deployment()), bind(base, Deployment(prefix="a."))
    for engine, service in ((plain, "ingest"), (a, "ingest"), (a, "settlement")):
        with engine.begin() as conn:
            park_in_table(conn, DeadLetter.of(service=service, reason_code="x", reason="r", topic="t", partition=0,
                                              offset=1, key=b"k", value=b"v"))
    try:
        with plain.connect() as conn:
            assert [letter.service for _, letter in parked_letters(conn)[0]] == ["ingest"]
        with a.connect() as conn:
            assert sorted(letter.service for _, letter in parked_letters(conn)[0]) == ["ingest", "settlement"]
    finally:
        base.dispose()
