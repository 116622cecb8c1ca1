"""The ingest worker on the real broker and database: Debezium in every shape → canonical events; bad input
parked with its reason and origin; duplicates absorbed; metrics and health answer.

One real worker process (`yibao worker ingest`) serves the whole module; each test writes to the CDC topics
under the module's own topic prefix and checks what comes out.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.kafka import consume, produce
from support.stack import new_database
from support.workers import WorkerProcess
from yibao.core.kafka import create_topics
from yibao.core.topics import topic
from yibao.fakedata.cdc import CdcShape, RawCdcMessage
from yibao.fakedata.his import generate_day, generated_topics
from yibao.hisevents import Ingestor, load_mapping
from yibao.stack import Stack

PREFIX = "ingesttest."
MAPPING = load_mapping("example-oracle-his")
CDC_TOPICS = [PREFIX + t for t in MAPPING.topics()]
EVENTS = topic("his_events", PREFIX)
DLQ = topic("dlq", PREFIX)

SHAPES = {
    "oracle, envelope with schema, decimal precise": CdcShape(schemas=True, decimal_mode="precise"),
    "oracle, envelope without schema, decimal string": CdcShape(schemas=False, decimal_mode="string"),
    "oracle, unwrapped (ExtractNewRecordState) with schema": CdcShape(schemas=True, unwrap=True),
    "oracle, unwrapped without schema, decimal string": CdcShape(unwrap=True, decimal_mode="string"),
    "mysql, lower-case names, envelope without schema": CdcShape(connector="mysql", upper_case=False,
                                                                  decimal_mode="string"),
    "postgresql, envelope with schema, decimal double": CdcShape(connector="postgresql", upper_case=False,
                                                                  schemas=True, decimal_mode="double"),
}


@pytest.fixture(scope="module")
def worker(stack: Stack, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("ingest")
    url = new_database(stack, tmp)
    # one partition per CDC topic, as Debezium creates them: the rows of a table stay in commit order
    asyncio.run(create_topics(kafka_bootstrap, [(t, 1, {}) for t in CDC_TOPICS]))
    proc = WorkerProcess("ingest", {
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": url, "YIBAO_TOPIC_PREFIX": PREFIX,
        "YIBAO_INGEST_CDC_TOPICS": json.dumps(CDC_TOPICS), "YIBAO_SESSION_TIMEOUT_S": "6",
    }, tmp / "ingest.log").start()
    yield proc
    proc.stop()


_TOPIC_CASE = {t.lower(): t for t in MAPPING.topics()}


def _test_topic(name: str) -> str:
    """The module's copy of a CDC topic (a lower-case connector's records go to the same tables' topics)."""
    return PREFIX + _TOPIC_CASE.get(name.lower(), name)


def _to_test_topics(messages: list[RawCdcMessage]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(_test_topic(m.topic), m.key, m.value) for m in messages]


def _expected_ids(messages: list[RawCdcMessage]) -> list[str]:
    """What the pure library makes of the messages: the oracle for the worker."""
    ingestor = Ingestor(MAPPING)
    ids: list[str] = []
    for m in messages:
        if m.expect_error:
            continue
        ids += [e.event_id for e in ingestor.ingest(_test_topic(m.topic), 0, 0, m.key, m.value).events]
    return ids


async def _events_with_ids(bootstrap: str, wanted: set[str], timeout: float = 60, settle: float = 0) -> list:
    """Records of the canonical topic whose event id is wanted, once all of them arrived (plus ``settle``
    seconds, to catch a copy that should not be there)."""

    def complete(records: list) -> bool:
        return wanted <= {json.loads(r.value)["event_id"] for r in records}

    records = await consume(bootstrap, [EVENTS], timeout=timeout, until=complete)
    if settle:
        await asyncio.sleep(settle)
        records = await consume(bootstrap, [EVENTS], timeout=timeout, until=complete)
    return [r for r in records if json.loads(r.value)["event_id"] in wanted]


@pytest.mark.parametrize("shape_name", list(SHAPES))
async def test_every_debezium_shape_becomes_canonical_events(worker: WorkerProcess, kafka_bootstrap: str,
                                                             shape_name: str) -> None:
    day = _dt.date(2026, 3, 1) + _dt.timedelta(days=list(SHAPES).index(shape_name))
    messages = generate_day(101, day=day, outpatients=4, inpatients=1, shape=SHAPES[shape_name])
    expected = _expected_ids(messages)
    assert expected, "the generator made no mappable change"
    await produce(kafka_bootstrap, _to_test_topics(messages))
    got = await _events_with_ids(kafka_bootstrap, set(expected))
    ids = [json.loads(r.value)["event_id"] for r in got]
    assert Counter(ids) == Counter(set(expected)), "each canonical event arrives exactly once"
    for r in got:
        event = json.loads(r.value)
        assert r.key.decode() == event["his_visit_id"], "keyed by the HIS visit id"
        assert event["source"]["topic"].startswith(PREFIX)


async def test_charge_lines_of_a_visit_keep_their_order(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    messages = generate_day(202, day=_dt.date(2026, 4, 1), outpatients=3, inpatients=2,
                            shape=CdcShape(decimal_mode="string"))
    expected = _expected_ids(messages)
    await produce(kafka_bootstrap, _to_test_topics(messages))
    got = await _events_with_ids(kafka_bootstrap, set(expected))
    sent_order = {eid: i for i, eid in enumerate(dict.fromkeys(expected))}
    per_visit: dict[str, list[int]] = defaultdict(list)
    for r in got:
        event = json.loads(r.value)
        if event["type"] in ("charge_line_added", "charge_line_reversed"):
            per_visit[event["his_visit_id"]].append(sent_order[event["event_id"]])
    assert per_visit
    for positions in per_visit.values():
        assert positions == sorted(positions)


async def test_a_replayed_change_is_absorbed_as_a_duplicate(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    messages = generate_day(303, day=_dt.date(2026, 5, 1), outpatients=2, inpatients=0,
                            shape=CdcShape(decimal_mode="string"))
    expected = set(_expected_ids(messages))
    await produce(kafka_bootstrap, _to_test_topics(messages))
    await _events_with_ids(kafka_bootstrap, expected)
    before = _metric(worker, 'yibao_events_handled_total{outcome="duplicate",service="ingest"}')
    await produce(kafka_bootstrap, _to_test_topics(messages))  # the connector restarted and replayed
    for _ in range(100):  # wait until the worker has been through the replay
        if _metric(worker, 'yibao_events_handled_total{outcome="duplicate",service="ingest"}') > before:
            break
        await asyncio.sleep(0.2)
    got = await _events_with_ids(kafka_bootstrap, expected, settle=2)
    assert Counter(json.loads(r.value)["event_id"] for r in got) == Counter(expected)
    assert _metric(worker, 'yibao_events_handled_total{outcome="duplicate",service="ingest"}') >= before + len(
        [m for m in messages if m.value is not None and not m.expect_error]) - 1


async def test_malformed_and_unmappable_changes_are_parked_with_reason_origin_and_bytes(
        worker: WorkerProcess, kafka_bootstrap: str) -> None:
    messages = generate_day(404, day=_dt.date(2026, 6, 1), outpatients=3, inpatients=0,
                            shape=CdcShape(decimal_mode="string"),
                            inject={"bad_json": 1, "unknown_table": 1, "missing_column": 1, "bad_date": 1})
    bad = [m for m in messages if m.expect_error]
    assert {m.injected for m in bad} == {"bad_json", "unknown_table", "missing_column", "bad_date"}
    await produce(kafka_bootstrap, _to_test_topics(messages))
    wanted = {m.value for m in bad}

    def all_parked(records: list) -> bool:
        return wanted <= {base64.b64decode(json.loads(r.value).get("value_b64") or "") for r in records}

    letters = [json.loads(r.value) for r in await consume(kafka_bootstrap, [DLQ], timeout=60, until=all_parked)]
    by_value = {base64.b64decode(d["value_b64"]): d for d in letters if d.get("value_b64")}
    for m in bad:
        letter = by_value[m.value]
        expected_code = "undecodable" if m.expect_error == "DecodeError" else "unmappable"
        assert letter["reason_code"] == expected_code
        assert letter["reason"], "a reason is given"
        assert letter["service"] == "ingest"
        assert letter["source_topic"] == _test_topic(m.topic)
        assert letter["source_partition"] is not None and letter["source_offset"] is not None
    # and the good changes of the same day still went through
    expected = set(_expected_ids(messages))
    got = await _events_with_ids(kafka_bootstrap, expected)
    assert {json.loads(r.value)["event_id"] for r in got} == expected


async def test_a_tombstone_is_skipped_not_parked(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    before = _metric(worker, 'yibao_events_handled_total{outcome="skipped",service="ingest"}')
    await produce(kafka_bootstrap, [(CDC_TOPICS[0], b'{"REG_ID": 1}', None)])
    for _ in range(50):
        if _metric(worker, 'yibao_events_handled_total{outcome="skipped",service="ingest"}') > before:
            break
        await asyncio.sleep(0.2)
    assert _metric(worker, 'yibao_events_handled_total{outcome="skipped",service="ingest"}') == before + 1


def test_health_readiness_and_metrics_endpoints_answer(worker: WorkerProcess) -> None:
    assert httpx.get(f"{worker.url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{worker.url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    text = httpx.get(f"{worker.url}/metrics").text
    for name in ("yibao_events_consumed_total", "yibao_events_handled_total", "yibao_dead_letters_total",
                 "yibao_event_processing_seconds", "yibao_outbox_published_total", "yibao_worker_ready"):
        assert name in text


def test_metric_labels_carry_no_personal_data(worker: WorkerProcess) -> None:
    text = httpx.get(f"{worker.url}/metrics").text
    import re

    assert not re.search(r"\d{17}[\dXx]", text), "no resident id in metrics"
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text.replace("e+09", "")), "no phone number in metrics"


def test_the_worker_log_masks_personal_data(worker: WorkerProcess) -> None:
    log = worker.log_path.read_text(errors="replace")
    import re

    assert not re.search(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])", log)


def _metric(worker: WorkerProcess, series: str) -> float:
    for line in httpx.get(f"{worker.url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
