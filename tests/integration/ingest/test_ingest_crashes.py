"""kill -9 of an ingest worker mid-batch and of its outbox relay mid-batch: nothing lost, nothing doubled.

Real ``yibao worker ingest`` processes on the real broker and database, killed with SIGKILL (no shutdown hook, no
last commit) in the middle of their work, then replaced by a fresh process. "Nothing doubled" is checked where the
bridge's effects are: one outbox row per canonical event (the inbox absorbed every redelivered change), and every
repeat on the topic — the relay is at least once: a batch sent but not yet marked is sent again — is the same
message byte for byte, which the consumers' inboxes absorb.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from support.ingest import IngestDeployment
from support.kafka import consume
from support.outages import poll
from support.stack import new_database
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import inbox, outbox
from yibao.core.deployment import Deployment
from yibao.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _count(engine, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(*where)).scalar_one())


def _stored(engine) -> int:  # type: ignore[no-untyped-def]
    """Canonical events the worker has stored (inbox rows: handed on, or held for HIS commit order)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def _same_bytes_per_id(records: list) -> bool:
    copies: dict[str, set[bytes]] = {}
    for r in records:
        copies.setdefault(json.loads(r.value)["event_id"], set()).add(r.value)
    return all(len(v) == 1 for v in copies.values())


async def test_kill_9_of_an_ingest_worker_mid_batch_loses_and_doubles_nothing(
        stack: Stack, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    upgrade(url)
    engine = make_engine(url)
    day = deployment.day(41, outpatients=250, inpatients=10)
    wanted = set(deployment.expected_ids(day))
    first = deployment.worker(tmp_path / "ingest-1.log").start()
    try:
        await deployment.send(day)
        # mid-batch: some of the day's changes are applied, most are not — counted in the inbox, which grows with
        # every change stored: the outbox grows in jumps while held events wait for HIS commit order and are
        # released a thousand at a time
        done = poll(lambda: (n := _stored(engine)) >= len(wanted) // 10 and n, 120, "the worker to be under way")
        first.kill()
        assert done < len(wanted) * 0.9, f"the worker finished ({done} of {len(wanted)}) before it was killed"
        second = deployment.worker(tmp_path / "ingest-2.log").start()
        try:
            got = await deployment.events(wanted, timeout=240)
        finally:
            second.stop()
    finally:
        first.kill()
    counts = deployment.id_counts(got)
    assert set(counts) == wanted, "nothing lost"
    with engine.connect() as conn:
        rows = Counter(json.loads(Deployment.of(conn).cipher.open(p))["event_id"]
                       for p in conn.execute(select(outbox.c.payload)).scalars())
    assert rows == Counter(wanted), "one outbox row per event: the redelivered changes were absorbed"
    assert _same_bytes_per_id(got)
    assert await deployment.dead_letters() == []
    engine.dispose()


async def test_kill_9_of_the_relay_mid_batch_loses_nothing_and_keeps_the_order(
        stack: Stack, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    upgrade(url)
    engine = make_engine(url)
    total, keys = 30_000, 12
    now = clock.now()
    with engine.begin() as conn:  # a backlog the relay works through in batches of 500
        conn.execute(insert(outbox), [
            {"producer": f"{prefix}ingest", "topic": deployment.events_topic, "msg_key": f"V{n % keys}",
             "payload": json.dumps({"event_id": f"relay-{n:06d}", "n": n, "his_visit_id": f"V{n % keys}"}),
             "headers": None, "created_at": now} for n in range(total)])
    published = outbox.c.published_at.is_not(None)
    first = deployment.worker(tmp_path / "ingest-1.log").start(wait=False)
    try:
        done = poll(lambda: (n := _count(engine, published)) >= total // 10 and n, 180, "the relay to be under way")
        first.kill()
        assert done < total * 0.9, f"the relay finished ({done} of {total}) before it was killed"
        left = total - _count(engine, published)
        assert left > 0
        second = deployment.worker(tmp_path / "ingest-2.log").start()
        try:
            poll(lambda: _count(engine, published) == total, 180, "the second relay to publish the rest")
        finally:
            second.stop()
    finally:
        first.kill()
    engine.dispose()

    records = await consume(kafka_bootstrap, [deployment.events_topic], timeout=180,
                            until=lambda rs: len({json.loads(r.value)["n"] for r in rs}) >= total)
    numbers = [json.loads(r.value)["n"] for r in records]
    assert set(numbers) == set(range(total)), "nothing lost"
    repeats = len(numbers) - total
    assert repeats <= 500, f"{repeats} repeats: more than the one batch in flight at the kill"
    assert _same_bytes_per_id(records)
    for key in range(keys):  # per visit, the first copies come in the order the rows were written
        firsts = list(dict.fromkeys(n for n in numbers if n % keys == key))
        assert firsts == sorted(firsts)
