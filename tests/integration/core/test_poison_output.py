"""One outbox row the broker refuses blocks nothing: a real ``yibao worker ingest`` on the real Kafka, whose outbox
holds a canonical event with a 1.5 MB free-text field between ordinary ones. The big row is parked with its
reason and payload (sealed at rest), marked so no relay tries it again and counted; the rows behind it flow, in
order; readiness stays green. The worker runs with a data key, so the rows are sealed in the database and
published in clear.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from support.ingest import IngestDeployment
from support.kafka import consume
from support.outages import poll, readiness
from support.stack import new_database
from yibao.core.atrest import DataCipher
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import outbox, parked_work
from yibao.core.deployment import Deployment, bind
from yibao.core.messaging.deadletter import parked_letters
from yibao.core.messaging.outbox import enqueue
from yibao.stack import Stack

pytestmark = [pytest.mark.integration]

KEYS = "k1:00112233445566778899aabbccddeeff"
BIG_TEXT = "诊断说明" * (1_500_000 // 12)  # ≈1.5 MB of UTF-8 free text


def event(n: int, visit: str, memo: str = "") -> str:
    return json.dumps({"event_id": f"poison-test-{n:04d}", "his_visit_id": visit, "type": "visit_info", "n": n,
                       "memo": memo}, ensure_ascii=False)


async def test_a_row_the_broker_refuses_is_parked_and_the_rows_behind_it_flow(
        stack: Stack, kafka_bootstrap: str, prefix: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    deployment = IngestDeployment(prefix, kafka_bootstrap, url)
    await deployment.create_cdc_topics()
    upgrade(url)
    engine = bind(make_engine(url), Deployment(prefix=prefix, cipher=DataCipher.from_secret(KEYS)))
    with engine.begin() as conn:  # the rows are there before the worker starts: its relay meets them first thing
        for n, visit, memo in [(1, "V1", ""), (2, "V1", BIG_TEXT), (3, "V1", ""), (4, "V2", "")]:
            enqueue(conn, producer="ingest", topic=deployment.events_topic, key=visit, value=event(n, visit, memo),
                    headers={"event_id": f"poison-test-{n:04d}"})
    worker = deployment.worker(tmp_path / "ingest.log", YIBAO_DATA_KEYS=KEYS).start()
    try:
        records = await consume(kafka_bootstrap, [deployment.events_topic], timeout=120,
                                until=lambda rs: {json.loads(r.value)["n"] for r in rs} >= {1, 3, 4})
        numbers = [json.loads(r.value)["n"] for r in records]
        assert sorted(set(numbers)) == [1, 3, 4], "the rows behind the refused one flow; it is not published"
        assert numbers.index(1) < numbers.index(3), "in order"

        def outbox_rows() -> dict:
            with engine.connect() as conn:
                return {json.loads(engine_open(conn, r.payload))["n"]: r
                        for r in conn.execute(select(outbox.c.payload, outbox.c.published_at, outbox.c.parked_at))}

        # the relay records what it sent and parked after sending the batch: the rows behind may be read first
        poll(lambda: outbox_rows()[2].parked_at is not None, 30, "the refused row to be marked parked")
        with engine.connect() as conn:
            rows = outbox_rows()
            assert rows[2].parked_at is not None and rows[2].published_at is not None, "never tried again"
            assert all(rows[n].parked_at is None for n in (1, 3, 4))
            assert all(r.payload.startswith("yb1.k1.") for r in rows.values()), "sealed at rest"
            [(_, letter)], unreadable = parked_letters(conn)
            stored = conn.execute(select(parked_work.c.payload, parked_work.c.reason_code)).one()
        assert unreadable == 0
        assert letter.reason_code == "message_too_large" == stored.reason_code
        assert "bytes" in letter.reason and "MessageSizeTooLarge" in letter.reason
        assert letter.source_topic == deployment.events_topic and letter.key == b"V1"
        assert json.loads(letter.value)["memo"] == BIG_TEXT, "the payload is kept for replay"
        assert stored.payload.startswith("yb1.k1.") and "诊断说明" not in stored.payload

        metrics = httpx.get(f"{worker.url}/metrics").text
        assert 'yibao_outbox_parked_total{reason_code="message_too_large",service="ingest"} 1.0' in metrics
        assert poll(lambda: readiness(worker.url)[0] == 200, 30, "readiness to stay green")
    finally:
        worker.stop()
        engine.dispose()


def engine_open(conn, payload: str) -> str:  # type: ignore[no-untyped-def]
    return Deployment.of(conn).cipher.open(payload)
