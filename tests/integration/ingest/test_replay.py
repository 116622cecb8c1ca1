"""Parked input can be replayed by a command once the cause is fixed: a table the HIS mapping did not know is
parked; the mapping is fixed and the worker restarted; `yibao replay dlq` puts the original bytes back on their
topic and the change becomes a canonical event — once."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

import yibao.hisevents.mappings as shipped
from support.kafka import consume, produce
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core.kafka import create_topics
from yibao.core.messaging.depth import dead_letter_topic_depth
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.hisevents import load_mapping
from yibao.stack import Stack

PREFIX = "replaytest."
MAPPING = load_mapping("example-oracle-his")
CDC_TOPICS = [PREFIX + t for t in MAPPING.topics()]


async def _dlq_depth_metric(worker: WorkerProcess, *, until: float | None = None, timeout: float = 30) -> float:
    """The worker's ``yibao_dlq_depth{store="topic"}`` once it is measured (and equals ``until``, if given)."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = None
    while asyncio.get_running_loop().time() < deadline:
        text = httpx.get(f"{worker.url}/metrics", timeout=5).text
        found = [line.split()[-1] for line in text.splitlines() if line.startswith('yibao_dlq_depth{store="topic"}')]
        value = float(found[0]) if found else None
        if value is not None and (until is None or value == until):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"yibao_dlq_depth never showed {until if until is not None else 'a value'}: {value}")


def _without_diagnoses(tmp: Path) -> Path:
    data = yaml.safe_load((Path(shipped.__file__).parent / "example-oracle-his.yaml").read_text(encoding="utf-8"))
    del data["tables"]["HIS.OUTP_DIAGNOSIS"]
    path = tmp / "no-diagnoses.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def test_a_parked_change_is_replayed_after_the_mapping_is_fixed(
        stack: Stack, kafka_bootstrap: str, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    await create_topics(kafka_bootstrap, [(t, 1, {}) for t in CDC_TOPICS])
    env = {"KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": url, "YIBAO_TOPIC_PREFIX": PREFIX,
           "YIBAO_INGEST_CDC_TOPICS": json.dumps(CDC_TOPICS), "YIBAO_SESSION_TIMEOUT_S": "6"}
    messages = [m for m in generate_day(505, day=_dt.date(2026, 7, 1), outpatients=1, inpatients=0,
                                        shape=CdcShape(decimal_mode="string"))
                if m.topic.endswith("OUTP_DIAGNOSIS")]
    assert messages

    broken = WorkerProcess("ingest", {**env, "YIBAO_INGEST_MAPPING": str(_without_diagnoses(tmp_path))},
                           tmp_path / "broken.log").start()
    try:
        await produce(kafka_bootstrap, [(PREFIX + m.topic, m.key, m.value) for m in messages])
        letters = await consume(kafka_bootstrap, [topic("dlq", PREFIX)], count=len(messages), timeout=60)
        assert {json.loads(r.value)["reason_code"] for r in letters} == {"unmappable"}
    finally:
        broken.stop()

    assert await dead_letter_topic_depth(kafka_bootstrap, PREFIX) == len(messages)
    fixed = WorkerProcess("ingest", {**env, "YIBAO_DLQ_DEPTH_INTERVAL_S": "0.2"}, tmp_path / "fixed.log").start()
    try:
        assert await _dlq_depth_metric(fixed) == len(messages)  # what ops sees before the replay
        replay = subprocess.run([sys.executable, "-m", "yibao.cli.main", "replay", "dlq", "--service", "ingest",
                                 "--timeout", "3"], env={**os.environ, **env}, capture_output=True, text=True,
                                timeout=120)
        assert replay.returncode == 0, replay.stderr
        assert f"replayed {len(messages)} dead letter(s)" in replay.stdout

        events = await consume(kafka_bootstrap, [topic("his_events", PREFIX)], count=len(messages), timeout=60)
        assert {json.loads(r.value)["type"] for r in events} == {"visit_info"}

        again = subprocess.run([sys.executable, "-m", "yibao.cli.main", "replay", "dlq", "--timeout", "2"],
                               env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
        assert "replayed 0 dead letter(s)" in again.stdout, "a letter is replayed once"
        assert await dead_letter_topic_depth(kafka_bootstrap, PREFIX) == 0
        assert await _dlq_depth_metric(fixed, until=0) == 0
    finally:
        fixed.stop()
