"""The ingest worker consumes the CDC topics the connector really wrote, whatever their case, and says which it is
still waiting for — on the real broker, with the mapping's default subscription (no YIBAO_INGEST_CDC_TOPICS)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.kafka import consume, produce
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core.kafka import create_topics
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.hisevents import Ingestor
from yibao.hisevents.mapping import MAPPINGS_DIR, load_mapping
from yibao.stack import Stack

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def setup(stack: Stack, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp: Path = tmp_path_factory.mktemp("cdc-subscription")
    tag = uuid.uuid4().hex[:8]
    # the upper-case Oracle example mapping, under a topic prefix of this test's own
    data = yaml.safe_load((MAPPINGS_DIR / "example-oracle-his.yaml").read_text(encoding="utf-8"))
    data["topic_prefix"] = f"pg{tag}"
    mapping_file = tmp / "his.yaml"
    mapping_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    mapping = load_mapping(mapping_file)
    # what a PostgreSQL connector makes of those tables: lower-case topics — and only for the tables with rows
    written = ["HIS.OUTP_REGISTER", "HIS.OUTP_DIAGNOSIS", "HIS.OUTP_FEE_DETAIL"]
    lower = [f"pg{tag}.{name.lower()}" for name in written]
    asyncio.run(create_topics(kafka_bootstrap, [(t, 1, {}) for t in lower]))
    prefix = f"sub{tag}."
    worker = WorkerProcess("ingest", {
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": new_database(stack, tmp), "YIBAO_TOPIC_PREFIX": prefix,
        "YIBAO_INGEST_MAPPING": str(mapping_file), "YIBAO_SESSION_TIMEOUT_S": "6",
        "YIBAO_INGEST_CDC_TOPIC_CHECK_S": "1",
    }, tmp / "ingest.log").start()
    try:
        yield {"worker": worker, "mapping": mapping, "lower": lower, "prefix": prefix, "tag": tag,
               "missing": len(mapping.topics()) - len(lower)}
    finally:
        worker.stop()


async def test_lower_case_topics_of_an_upper_case_mapping_are_consumed(setup: dict, kafka_bootstrap: str) -> None:
    shape = CdcShape(connector="postgresql", upper_case=False, decimal_mode="string", topic_prefix=f"pg{setup['tag']}",
                     db_schema="his")
    messages = [m for m in generate_day(303, day=_dt.date(2026, 5, 1), outpatients=2, inpatients=0, shape=shape)
                if m.topic in setup["lower"]]
    assert messages
    ingestor = Ingestor(setup["mapping"])
    expected = {e.event_id for m in messages for e in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events}
    assert expected
    await produce(kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages])
    records = await consume(kafka_bootstrap, [topic("his_events", setup["prefix"])], timeout=60,
                            until=lambda rs: expected <= {json.loads(r.value)["event_id"] for r in rs})
    assert expected <= {json.loads(r.value)["event_id"] for r in records}, setup["worker"].log_tail()


def test_the_worker_names_the_cdc_topics_it_is_still_waiting_for(setup: dict) -> None:
    worker: WorkerProcess = setup["worker"]
    import httpx

    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    assert f"yibao_ingest_cdc_topics_missing {float(setup['missing'])}" in metrics
    log = worker.log_path.read_text()
    assert "CDC topic does not exist (yet)" in log and f"pg{setup['tag']}.HIS.YB_SETTLE_REQUEST" in log
    assert "CDC topic found under the connector's spelling" in log
    # it created none of them: an upper-case twin of a lower-case topic would be consumed by nobody
    topics = asyncio.run(_topics(worker.env["KAFKA_BOOTSTRAP"]))
    assert f"pg{setup['tag']}.HIS.OUTP_REGISTER" not in topics


async def _topics(bootstrap: str) -> set[str]:
    from yibao.ingest.subscription import list_topics

    return await list_topics(bootstrap)
