"""HIS commit order across tables while ingest works through a backlog, on the real broker and database.

The backlog: a HIS day on every CDC topic, and ahead of it on the settlement-request topic a long run of earlier
settlement requests — so the consumer reads the visit, charge and cancellation topics to their end while the
settlement-request topic still lags far behind. A cancellation HIS committed *after* a settlement request of the
same visit sits on a topic the consumer finishes first; before the fix it was handed on before the settlement
request (the chaos soak's 405 `rejected [visit_cancelled]`). Now every event reaches the outbox, and
yibao.his.events.v1, in HIS commit order — also when the worker is killed with SIGKILL while events are held.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from support.ingest import IngestDeployment
from support.outages import poll
from support.stack import new_database
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import ingest_held, outbox
from yibao.core.deployment import Deployment
from yibao.fakedata.cdc import RawCdcMessage
from yibao.hisevents.order import commit_key
from yibao.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTLE_TOPIC = "hisdb.HIS.YB_SETTLE_REQUEST"
FILLER_COPIES = 40


def _backlog(deployment: IngestDeployment) -> tuple[list[RawCdcMessage], list[RawCdcMessage]]:
    """(the day, the earlier settlement requests put ahead of it on their topic)."""
    day = deployment.day(77, outpatients=60, inpatients=8, day=_dt.date(2026, 3, 3))
    # committed before the day: an outpatient day a week earlier (inpatient stays would settle days later)
    earlier = deployment.day(76, outpatients=80, inpatients=0, day=_dt.date(2026, 2, 24))
    settles = [m for m in earlier if m.topic == SETTLE_TOPIC and m.value is not None]
    assert settles
    # the same records again and again (a connector replaying after a restart): the inbox absorbs the copies,
    # but the consumer has to read through them
    return day, settles * FILLER_COPIES


def _outbox_keys(engine, prefix: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    """(commit key, event) of the outbox rows, in the order they were written."""
    with engine.connect() as conn:
        cipher = Deployment.of(conn).cipher
        payloads = conn.execute(select(outbox.c.payload).where(outbox.c.producer == f"{prefix}ingest")
                                .order_by(outbox.c.id)).scalars().all()
    out = []
    for p in payloads:
        event = json.loads(cipher.open(p))
        out.append((commit_key(event["source"]["ts_ms"], event["source"]["position"]), event))
    return out


def _held(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ingest_held)).scalar_one())


def _metric(url: str, series: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _assert_in_commit_order(rows: list[tuple], records: list, wanted: set[str]) -> None:
    keys = [k for k, _ in rows]
    misordered = [(i, a[1]["type"], a[0], b[1]["type"], b[0], a[1]["source"]["table"], b[1]["source"]["table"])
                  for i, (a, b) in enumerate(zip(rows, rows[1:])) if b[0] < a[0]]
    assert not misordered, f"{len(misordered)} events handed on before one committed earlier: {misordered[:5]}"
    assert keys == sorted(keys)
    # and on the canonical topic, per visit: a settlement request HIS committed before the visit's cancellation
    # comes before it
    per_visit: dict[str, list[tuple]] = defaultdict(list)
    for r in records:
        event = json.loads(r.value)
        if event["event_id"] in wanted:
            per_visit[event["his_visit_id"]].append(
                (commit_key(event["source"]["ts_ms"], event["source"]["position"]), event["type"]))
    both = [v for v in per_visit.values() if {"settlement_requested", "cancellation"} <= {t for _, t in v}]
    assert both, "the day has visits settled and then cancelled"
    for events in per_visit.values():
        first_copies = list(dict.fromkeys(events))
        assert first_copies == sorted(first_copies), [t for _, t in first_copies]


async def test_a_backlog_reaches_his_events_in_his_commit_order_across_tables(
        stack: Stack, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    upgrade(url)
    engine = make_engine(url)
    day, filler = _backlog(deployment)
    wanted = set(deployment.expected_ids(filler + day))
    # the backlog is there before the worker starts (a restart after an outage)
    await deployment.send(filler + day)
    worker = deployment.worker(tmp_path / "ingest.log").start()
    try:
        got = await deployment.events(wanted, timeout=240)
        held_total = _metric(worker.url, "yibao_ingest_held_total")
        poll(lambda: _held(engine) == 0, 30, "the held events to be released")
    finally:
        worker.stop()
    rows = _outbox_keys(engine, prefix)
    assert Counter(e["event_id"] for _, e in rows) == Counter(wanted), "every event once: nothing lost or doubled"
    _assert_in_commit_order(rows, got, wanted)
    assert held_total > 0, "the consumer read some tables ahead of others: events were held for their turn"
    assert await deployment.dead_letters() == []
    engine.dispose()


async def test_events_held_for_their_turn_survive_a_kill_9(
        stack: Stack, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    upgrade(url)
    engine = make_engine(url)
    day, filler = _backlog(deployment)
    wanted = set(deployment.expected_ids(filler + day))
    await deployment.send(filler + day)
    first = deployment.worker(tmp_path / "ingest-1.log").start()
    try:
        poll(lambda: _held(engine) > 0, 120, "events to be held for their turn")
        first.kill()
        second = deployment.worker(tmp_path / "ingest-2.log").start()
        try:
            got = await deployment.events(wanted, timeout=240)
            poll(lambda: _held(engine) == 0, 30, "the held events to be released")
        finally:
            second.stop()
    finally:
        first.kill()
    rows = _outbox_keys(engine, prefix)
    assert Counter(e["event_id"] for _, e in rows) == Counter(wanted), "every event once: nothing lost or doubled"
    _assert_in_commit_order(rows, got, wanted)
    assert await deployment.dead_letters() == []
    engine.dispose()
