"""Outages are not failures of a message: a real ``yibao worker ingest`` while its PostgreSQL is restarted by the
administrator (``pg_ctl stop -m fast`` … ``start``) for longer than the whole retry budget, and while its Kafka
broker is restarted. Every event is processed exactly once, nothing is parked, readiness says why meanwhile, and
the work resumes by itself.

The cluster and the broker are the tests' own (tests/support/outages.py), never the session's.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from support.ingest import IngestDeployment
from support.outages import RestartableKafka, RestartablePostgres, poll, readiness, require
from support.stack import new_database
from yibao.core.db import make_engine
from yibao.core.db.schema import parked_work
from yibao.stack import Stack, kafka_kraft, postgres
from yibao.stack.chaos import order_violations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: the worker's retry budget for transient failures: 3 attempts, 0.5 s then 1 s — an outage lasts far longer
RETRIES = {"YIBAO_RETRY_ATTEMPTS": "3", "YIBAO_RETRY_BACKOFF_S": "0.5"}
OUTAGE_S = 12.0


def _handed_on(engine) -> int:  # type: ignore[no-untyped-def]
    """Outbox rows the ingest worker wrote so far (0 while it has not created its tables yet)."""
    from sqlalchemy.exc import DBAPIError

    from yibao.core.db.schema import outbox

    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
    except DBAPIError:
        return 0


def metric(url: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def hold_outage(url: str, seconds: float, resource: str) -> list[str]:
    """Keep the outage on for ``seconds``, checking all along that readiness says why (503 naming it)."""
    until = time.monotonic() + seconds
    problems: list[str] = []
    while time.monotonic() < until:
        status, body = readiness(url)
        assert status in (0, 503), f"ready during a {resource} outage: {body}"
        problems = body.get("problems", []) or problems
        time.sleep(0.5)
    return problems


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[RestartablePostgres]:
    ok, why = postgres.available()
    require("a private PostgreSQL cluster", ok, why)
    server = RestartablePostgres().start()
    yield server
    server.stop()


async def test_an_ingest_worker_waits_out_a_postgresql_restart_and_parks_nothing(
        private_postgres: RestartablePostgres, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = private_postgres.create_database("outage")
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    worker = deployment.worker(tmp_path / "ingest.log", **RETRIES).start()
    try:
        before = deployment.day(11, outpatients=5)
        await deployment.send(before)
        await deployment.events(set(deployment.expected_ids(before)))

        private_postgres.stop_fast()
        during = deployment.day(12, outpatients=12, day=_dt.date(2026, 3, 3))
        await deployment.send(during)
        status, body = poll(lambda: (r := readiness(worker.url))[0] == 503
                            and any("consumer" in p and p.startswith("database unreachable") for p in r[1]["problems"])
                            and r, 60, "the consumer to wait for the database and readiness to say so")
        assert metric(worker.url, "yibao_outage", service="ingest", resource="database") == 1
        hold_outage(worker.url, OUTAGE_S, "database")
        private_postgres.start_again()

        wanted = set(deployment.expected_ids(during))
        got = await deployment.events(wanted)
        assert deployment.id_counts(got) == {i: 1 for i in wanted}, "every event exactly once"
        poll(lambda: readiness(worker.url)[0] == 200, 60, "readiness to come back")
        assert metric(worker.url, "yibao_dead_letters_total", service="ingest") == 0
        assert metric(worker.url, "yibao_outages_total", service="ingest", resource="database") >= 1
        assert metric(worker.url, "yibao_outage", service="ingest", resource="database") == 0
        assert metric(worker.url, "yibao_retries_total", service="ingest") == 0, "an outage spends no attempt"
        assert await deployment.dead_letters() == []
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(parked_work)).scalar_one() == 0
        finally:
            engine.dispose()
        log = worker.log_path.read_text(errors="replace")
        assert "resource unreachable; waiting for it" in log and "resource back; work resumed" in log
    finally:
        worker.stop()


async def test_an_ingest_worker_rides_out_a_broker_restart(stack: Stack, prefix: str, tmp_path: Path) -> None:
    ok, why = kafka_kraft.available()
    require("a restartable Kafka broker", ok, why)
    broker = RestartableKafka().start()
    worker = None
    try:
        deployment = IngestDeployment(prefix, broker.bootstrap, new_database(stack, tmp_path))
        await deployment.create_cdc_topics()
        # the first day is on the CDC topics before the worker reads any of it (a backlog: its order is ingest's to
        # keep, whatever the speed of each topic)
        first = deployment.day(21, outpatients=15)
        await deployment.send(first)
        # sends the broker does not acknowledge within 5 s would fail in a producer left to itself; the relay's
        # keeps them (yibao.core.kafka.deliver_in_order)
        worker = deployment.worker(tmp_path / "ingest.log", YIBAO_BROKER_REQUEST_TIMEOUT_S="5", **RETRIES
                                   ).start(wait=False)
        engine = make_engine(deployment.database_url)
        try:
            poll(lambda: _handed_on(engine) > 0, 90, "ingest to hand the first changes on", every=0.02)
        finally:
            engine.dispose()
        broker.stop_now()  # at once: some changes published, some in the outbox, some not read yet

        status, body = poll(lambda: (r := readiness(worker.url))[0] == 503
                            and any("broker" in p for p in r[1]["problems"]) and r, 60,
                            "readiness to report the broker")
        hold_outage(worker.url, OUTAGE_S, "broker")
        broker.start_again()

        second = deployment.day(22, outpatients=5, day=_dt.date(2026, 3, 4))
        await deployment.send(second)
        wanted = set(deployment.expected_ids(first + second))
        got = await deployment.events(wanted, timeout=180)
        counts = deployment.id_counts(got)
        assert set(counts) == wanted, "nothing lost"
        # the relay is at least once on the topic (a send the broker took but never acknowledged is sent again);
        # a repeat is the very same message, which every consumer's inbox absorbs: the effects happen once
        copies: dict[str, set[bytes]] = {}
        for record in got:
            copies.setdefault(json.loads(record.value)["event_id"], set()).add(record.value)
        assert all(len(values) == 1 for values in copies.values()), "a repeated event is byte for byte the same"
        # the first day's sends waited out the outage and went out in order (no batch expired while a later one of
        # its partition was delivered): each of its visits' events still comes in HIS commit order. (The second
        # day is written to several topics while the worker reads them, some of them retried after the restart:
        # at that live edge a table's change still on its way cannot be waited for — the chain services' order
        # window covers that, not ingest.)
        first_visits = {json.loads(r.value)["his_visit_id"] for r in got
                        if json.loads(r.value)["event_id"] in set(deployment.expected_ids(first))}
        violations = order_violations(r.value for r in got if json.loads(r.value)["his_visit_id"] in first_visits)
        assert violations == [], violations
        poll(lambda: readiness(worker.url)[0] == 200, 90, "readiness to come back")
        assert metric(worker.url, "yibao_dead_letters_total", service="ingest") == 0
        assert await deployment.dead_letters() == []
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()
