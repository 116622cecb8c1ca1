"""The relay on the no-load latency path, on the real PostgreSQL: it is woken by a unit of work that committed outbox
rows — and only by one (a relay looking for nothing takes a database trip beside the next unit of work) — and the
transaction that marks its rows published does not wait for the disk flush (a mark lost to a server crash only
publishes the rows again, which the consumers' inboxes absorb)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import outbox
from yibao.core.messaging.outbox import OutboxMessage, enqueue
from yibao.core.messaging.relay import OutboxRelay
from yibao.core.runtime import ServiceRuntime
from yibao.core.settings import CommonSettings

pytestmark = [pytest.mark.integration]


@pytest.fixture
def runtime(fresh_db_url: str, kafka_bootstrap: str, prefix: str) -> Iterator[ServiceRuntime]:
    upgrade(fresh_db_url)
    runtime = ServiceRuntime(CommonSettings(database_url=fresh_db_url, kafka_bootstrap=kafka_bootstrap,
                                            topic_prefix=prefix), name="wakeups", migrate=False)
    yield runtime
    runtime.engine.dispose()


async def test_a_unit_of_work_that_writes_no_outbox_row_does_not_wake_the_relay(runtime: ServiceRuntime) -> None:
    await runtime.db(lambda conn: conn.execute(text("SELECT 1")))
    assert not runtime.relay._wake.is_set()


async def test_a_unit_of_work_that_commits_outbox_rows_wakes_the_relay(runtime: ServiceRuntime) -> None:
    await runtime.db(lambda conn: enqueue(conn, producer="wakeups", topic="t", key="k", value="{}"))
    assert runtime.relay._wake.is_set()
    runtime.relay._wake.clear()
    await runtime.db(lambda conn: conn.execute(text("SELECT 1")))  # the same pooled connection, nothing written
    assert not runtime.relay._wake.is_set()


async def test_rows_rolled_back_do_not_wake_the_relay(runtime: ServiceRuntime) -> None:
    def fails(conn) -> None:  # type: ignore[no-untyped-def]
        enqueue(conn, producer="wakeups", topic="t", key="k", value="{}")
        raise RuntimeError("the unit failed")

    with pytest.raises(RuntimeError):
        await runtime.db(fails)
    assert not runtime.relay._wake.is_set()
    await runtime.db(lambda conn: conn.execute(text("SELECT 1")))
    assert not runtime.relay._wake.is_set()


async def test_the_relays_mark_does_not_wait_for_the_disk_flush(fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    durable = fresh_db_url.startswith("postgresql")
    # sessions that wait for the flush, as production's server does (the test server itself runs relaxed)
    engine = make_engine(fresh_db_url, **({"connect_args": {"options": "-c synchronous_commit=on"}} if durable else {}))
    sent: list[OutboxMessage] = []
    commit_modes: list[str] = []

    async def send(batch: list[OutboxMessage]) -> None:
        sent.extend(batch)

    relay = OutboxRelay(engine, "p", send)
    original = relay._mark

    def mark(conn, ids, parked):  # type: ignore[no-untyped-def]
        if durable:
            commit_modes.append(conn.execute(text("SHOW synchronous_commit")).scalar())
        original(conn, ids, parked)

    relay._mark = mark  # type: ignore[method-assign]
    try:
        with engine.begin() as conn:
            enqueue(conn, producer="p", topic="t", key="k", value="{}")
        assert await relay.drain_once() == 1
        assert len(sent) == 1
        with engine.connect() as conn:
            assert conn.execute(select(outbox.c.published_at)).scalar_one() is not None
            if durable:
                assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"  # only the relay's transaction
        if durable:
            assert commit_modes == ["off"]
    finally:
        engine.dispose()
