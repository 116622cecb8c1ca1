"""The fake HIS generator: deterministic Debezium records the example mapping can ingest (yibao.fakedata.his)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from yibao.core.errors import InputError
from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import FAULT_KINDS, generate_day, generated_topics
from yibao.fakedata.people import population
from yibao.hisevents import Ingestor

SHAPES = {
    "oracle-envelope-noschema-precise": CdcShape(),
    "oracle-envelope-schema-string": CdcShape(schemas=True, decimal_mode="string"),
    "oracle-unwrap-noschema-double": CdcShape(unwrap=True, decimal_mode="double"),
    "oracle-unwrap-schema-precise": CdcShape(unwrap=True, schemas=True),
    "postgres-lowercase-envelope": CdcShape(connector="postgresql", upper_case=False, decimal_mode="string"),
    "mysql-lowercase-unwrap": CdcShape(connector="mysql", upper_case=False, unwrap=True),
    "sqlserver-envelope-schema": CdcShape(connector="sqlserver", schemas=True),
}


@pytest.fixture(scope="module")
def ingestor() -> Ingestor:
    return Ingestor("example-oracle-his")


def _ingest_all(ingestor: Ingestor, messages):
    events, skipped, errors = [], [], []
    for offset, m in enumerate(messages):
        try:
            result = ingestor.ingest(m.topic, 0, offset, m.key, m.value)
        except InputError as exc:
            errors.append((m, exc))
            continue
        events.extend(result.events)
        if result.skipped:
            skipped.append(result.skipped)
    return events, skipped, errors


def test_the_generator_is_deterministic():
    kwargs = dict(outpatients=12, inpatients=3, inject={"bad_json": 1}, duplicates=2)
    assert generate_day(21, **kwargs) == generate_day(21, **kwargs)
    assert generate_day(21, **kwargs) != generate_day(22, **kwargs)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_every_generated_record_is_ingestible_with_the_example_mapping(ingestor, shape):
    events, skipped, errors = _ingest_all(ingestor, generate_day(4, outpatients=25, inpatients=5, shape=shape))
    assert errors == []
    types = Counter(e.type for e in events)
    assert types["patient_registered"] == 25 and types["admission"] == 5
    assert types["charge_line_added"] > 50 and types["settlement_requested"] > 20 and types["visit_info"] >= 20
    assert all(s.startswith("tombstone") for s in skipped)


def test_the_same_day_gives_the_same_facts_in_every_shape(ingestor):
    def facts(shape):
        events, _, _ = _ingest_all(ingestor, generate_day(6, outpatients=10, inpatients=3, shape=shape))
        return [e.model_dump(exclude={"event_id", "source"}) for e in events]

    reference = facts(CdcShape())
    for shape in SHAPES.values():
        assert facts(shape) == reference


def test_a_day_with_enough_visits_walks_every_rare_path(ingestor):
    events, _, _ = _ingest_all(ingestor, generate_day(0, outpatients=10, inpatients=10))
    seen = Counter(e.type for e in events)
    seen.update(f"cancel:{e.target}" for e in events if e.type == "cancellation")
    seen.update("mid_settlement" for e in events if e.type == "settlement_requested" and e.mid_setl_flag == "1")
    seen.update("self_pay" for e in events if e.type == "patient_registered" and e.settle_choice == "self_pay")
    for kind in ("charge_line_reversed", "refund_requested", "admission_changed", "discharge", "mid_settlement",
                 "self_pay", "cancel:registration", "cancel:admission", "cancel:discharge"):
        assert seen[kind] > 0, kind


def test_a_plain_day_walks_no_rare_path_and_gives_every_visit_one_diagnosis_and_a_settlement(ingestor):
    events, _, errors = _ingest_all(ingestor, generate_day(0, outpatients=30, inpatients=0, plain=True))
    assert not errors
    seen = Counter(e.type for e in events)
    for kind in ("charge_line_reversed", "refund_requested", "cancellation"):
        assert seen[kind] == 0, kind
    registered = [e for e in events if e.type == "patient_registered"]
    assert len(registered) == 30 and all(e.settle_choice != "self_pay" for e in registered)
    assert seen["settlement_requested"] == 30
    diagnoses: dict[str, set] = {}
    for e in events:
        if e.type == "visit_info":
            diagnoses.setdefault(e.his_visit_id, set()).update((d.diag_type, d.diag_srt_no) for d in e.diagnoses)
    assert len(diagnoses) == 30 and all(len(d) == 1 for d in diagnoses.values())
    infos = [e for e in events if e.type == "visit_info"]
    assert all(e.med_type != "MT" and not (e.dise_codg or "").startswith(("I10", "E11")) for e in infos)


@pytest.mark.parametrize("schemas", [False, True], ids=["noschema", "schema"])
def test_injected_faults_fail_with_the_expected_errors(ingestor, schemas):
    inject = {kind: 2 for kind in FAULT_KINDS}
    messages = generate_day(7, outpatients=8, inpatients=2, inject=inject, shape=CdcShape(schemas=schemas))
    _, _, errors = _ingest_all(ingestor, messages)
    assert Counter(m.injected for m, _ in errors) == Counter({kind: 2 for kind in FAULT_KINDS})
    for message, exc in errors:
        assert type(exc).__name__ == message.expect_error, (message.injected, str(exc))
        assert exc.reason
    reasons = {m.injected: str(exc) for m, exc in errors}
    assert "is not in mapping" in reasons["unknown_table"]
    assert "column YB_CODE" in reasons["missing_column"]
    assert "FEE_TIME" in reasons["bad_date"]
    assert "not valid JSON" in reasons["bad_json"]


def test_duplicated_records_get_the_same_event_id(ingestor):
    messages = generate_day(8, outpatients=10, inpatients=2, duplicates=6)
    assert sum(m.duplicate for m in messages) == 6
    ids: dict[bytes, set[str]] = defaultdict(set)
    for offset, m in enumerate(messages):
        for event in ingestor.ingest(m.topic, 0, offset, m.key, m.value).events:
            ids[m.value].add(event.event_id)
    assert all(len(v) == 1 for v in ids.values())
    events, _, _ = _ingest_all(ingestor, messages)
    assert len(events) - len({e.event_id for e in events}) == 6


def test_events_of_each_visit_come_in_causal_order(ingestor):
    events, _, _ = _ingest_all(ingestor, generate_day(9, outpatients=40, inpatients=8))
    per_visit = defaultdict(list)
    for event in events:
        per_visit[event.his_visit_id].append(event)
    for visit, visit_events in per_visit.items():
        assert visit_events[0].type in ("patient_registered", "admission"), visit
        times = [e.occurred_at for e in visit_events]
        assert times == sorted(times), visit
        kinds = [e.type for e in visit_events]
        if "settlement_requested" in kinds and "discharge" in kinds:
            last_settle = len(kinds) - 1 - kinds[::-1].index("settlement_requested")
            assert kinds.index("discharge") < last_settle


def test_settlement_totals_equal_the_sum_of_the_visit_charge_lines(ingestor):
    events, _, _ = _ingest_all(ingestor, generate_day(10, outpatients=30, inpatients=0))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for e in events:
        if e.type in ("charge_line_added", "charge_line_reversed"):
            totals[e.his_visit_id] += e.det_item_fee_sumamt
    for e in events:
        if e.type == "settlement_requested":
            assert e.medfee_sumamt == totals[e.his_visit_id]


def test_generated_patients_are_people_of_the_population(ingestor):
    people = {p.certno for p in population(12, 500)}
    events, _, _ = _ingest_all(ingestor, generate_day(12, outpatients=20, inpatients=4))
    certnos = {e.certno for e in events if e.type in ("patient_registered", "admission")}
    assert certnos and certnos <= people


def test_decimal_modes_encode_amounts_as_configured():
    def first_fee(shape):
        m = next(m for m in generate_day(13, outpatients=3, inpatients=0, shape=shape) if "FEE_DETAIL" in m.topic)
        return json.loads(m.value, parse_float=Decimal)["after"]["AMOUNT"]

    assert isinstance(first_fee(CdcShape(decimal_mode="string")), str) and "." in first_fee(
        CdcShape(decimal_mode="string"))
    assert isinstance(first_fee(CdcShape(decimal_mode="double")), Decimal)
    assert first_fee(CdcShape(decimal_mode="precise")).endswith("=") or first_fee(
        CdcShape(decimal_mode="precise")).isalnum()


def test_heartbeats_can_be_interleaved_and_are_skipped(ingestor):
    messages = generate_day(14, outpatients=10, inpatients=1, heartbeat_every=20)
    assert any(m.topic.startswith("__debezium-heartbeat") for m in messages)
    _, skipped, errors = _ingest_all(ingestor, messages)
    assert errors == [] and any("heartbeat" in s for s in skipped)


def test_unknown_fault_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        generate_day(1, outpatients=1, inpatients=0, inject={"gremlins": 1})


def test_a_raw_message_repr_shows_no_row_data():
    message = generate_day(15, outpatients=1, inpatients=0)[0]
    assert "MZ" not in repr(message) and "value_bytes" in repr(message)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_generated_topics_cover_every_record(shape):
    messages = generate_day(16, outpatients=10, inpatients=2, shape=shape, heartbeat_every=10,
                            inject={kind: 1 for kind in FAULT_KINDS})
    assert {m.topic for m in messages} <= set(generated_topics(shape))
