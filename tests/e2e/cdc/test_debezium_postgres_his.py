"""A HIS on PostgreSQL, captured by a real Debezium connector, answered in its own database.

The HIS's staff write rows with SQL (tests/e2e/cdc/his_clerk.py) into a stand-in HIS database on the session's
PostgreSQL (wal_level=logical) with the shipped example schema; Debezium's PostgreSQL connector 3.6.1 in a real
Kafka Connect worker (one per session) captures it with the shipped connector configuration (JSON, schemas off,
decimal.handling.mode=precise) onto the session's Kafka; the bridge's real processes (ingest with the shipped
example-postgres-his mapping, registration, settlement, the platform simulator, his-writer) do the rest; the
test reads the answers where the HIS would — the his.yb_result table of its own database. No change event on
that path is written by hand. A second connector with schemas on captures the same database to show that both
encodings become the same events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from e2e.cdc.his_clerk import ITEM_DRUG, ITEM_LAB, HisClerk
from e2e.chains.chain_day import FAST, SEED
from support.kafka import consume, produce
from support.stack import new_database
from yibao.core.db.migrations import upgrade
from yibao.core.errors import InputError
from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.topics import topic
from yibao.fakedata.people import Person, population
from yibao.hisevents import Ingestor, load_mapping
from yibao.stack import Stack
from yibao.stack.bridge import CHAIN_SERVICES, LocalBridge
from yibao.stack.connect import KafkaConnect
from yibao.stack.his import EXAMPLE, StandInHis

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

MAPPING = load_mapping(EXAMPLE)


@dataclasses.dataclass
class CdcRig:
    bridge: LocalBridge
    his: StandInHis
    clerk: HisClerk
    prefix: str
    people: Iterator[Person]

    @property
    def cdc_topics(self) -> list[str]:
        return [self.prefix + t for t in MAPPING.topics()]

    def typed_topic(self, cdc_topic: str) -> str:
        """The schemas-on connector's topic of the same table."""
        return cdc_topic.replace(self.prefix + "hisdb.", self.prefix + "typed.", 1)

    def answers(self, visit_id: int) -> list[dict[str, Any]]:
        """What the HIS finds in its own database: the his-writer's rows of the visit, oldest first."""
        with psycopg.connect(self.his.dsn, row_factory=dict_row) as conn:
            exists = conn.execute("SELECT to_regclass('his.yb_result') AS t").fetchone()
            if not exists or exists["t"] is None:
                return []
            return conn.execute("SELECT * FROM his.yb_result WHERE his_visit_id = %s ORDER BY occurred_at, kind",
                                (str(visit_id),)).fetchall()

    async def answers_until(self, visit_id: int, done: Callable[[list[dict[str, Any]]], bool], *,
                            timeout: float = 120) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.answers(visit_id)
            if done(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"HIS has no such answer for visit {visit_id} after {timeout:.0f}s; it has "
                                     f"{[(r['kind'], r['his_request_id'], r['reason']) for r in rows]}\n"
                                     + self.explain())
            await asyncio.sleep(0.3)

    async def dead_letters(self, done: Callable[[list[tuple[bytes | None, DeadLetter]]], bool], *,
                           timeout: float = 90) -> list[tuple[bytes | None, DeadLetter]]:
        def letters(records: list) -> list[tuple[bytes | None, DeadLetter]]:
            return [(r.key, DeadLetter.model_validate_json(r.value)) for r in records]

        records = await consume(self.bridge.info.kafka_bootstrap, [topic("dlq", self.prefix)], timeout=timeout,
                                until=lambda rs: done(letters(rs)))
        found = letters(records)
        assert done(found), f"dead letters: {[(k, d.reason_code, d.reason) for k, d in found]}\n{self.explain()}"
        return found

    def explain(self) -> str:
        return "\n".join(f"--- {name}.log\n{w.log_tail(12)}" for name, w in self.bridge.workers.items())


def _kinds(rows: list[dict[str, Any]]) -> list[str]:
    return [r["kind"] for r in rows]


def _one(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in rows if r["kind"] == kind]
    assert found, f"no {kind} answer; HIS has {[(r['kind'], r['his_request_id'], r['reason']) for r in rows]}"
    return found[-1]


@pytest.fixture(scope="module")
def rig(stack: Stack, kafka_connect: KafkaConnect, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CdcRig]:
    if stack.postgres_server is None:
        pytest.skip("the stand-in HIS needs the private PostgreSQL cluster (wal_level=logical)")
    tmp: Path = tmp_path_factory.mktemp("cdc")
    tag = uuid.uuid4().hex[:8]
    his = StandInHis.create(stack.postgres_server, f"his_{tag}")
    prefix = f"cdc{tag}."
    connectors = {
        # the shipped configuration as it is (schemas off, precise decimals) …
        f"his-{tag}": his.connector_config(topic_prefix=prefix + "hisdb", slot=f"yibao_{tag}",
                                           slot__drop__on__stop="true"),
        # … and with schemas on, for the comparison at the end
        f"his-{tag}-typed": his.connector_config(topic_prefix=prefix + "typed", slot=f"yibao_{tag}_typed",
                                                 slot__drop__on__stop="true",
                                                 value__converter__schemas__enable="true",
                                                 key__converter__schemas__enable="true"),
    }
    for name, config in connectors.items():
        kafka_connect.put_connector(name, config)
    for name in connectors:
        kafka_connect.wait_running(name)
    url = new_database(stack, tmp)
    upgrade(url)
    env = {
        **FAST,
        "YIBAO_INGEST_MAPPING": EXAMPLE,
        "YIBAO_INGEST_CDC_TOPICS": json.dumps([prefix + t for t in MAPPING.topics()]),
        "YIBAO_INGEST_CDC_TOPIC_CHECK_S": "1",
        "YIBAO_HIS_WRITER_HIS_DATABASE_URL": his.url,
        "YIBAO_HIS_WRITER_RESULTS_SCHEMA": "his",
    }
    bridge = LocalBridge(dataclasses.replace(stack.info, database_url=url), tmp, prefix=prefix, sim_seed=SEED,
                         env=env, services=(*CHAIN_SERVICES, "his-writer"))
    bridge.start()
    people = iter(population(SEED, 500)[300:340])
    try:
        yield CdcRig(bridge, his, HisClerk(his), prefix, people)
    finally:
        bridge.stop()
        for name in connectors:
            kafka_connect.delete_connector(name)


async def test_ingest_says_which_cdc_topics_the_connector_has_not_created_yet(rig: CdcRig) -> None:
    # the connector creates a table's topic with its first row: before the HIS writes anything there is none
    ingest = rig.bridge.workers["ingest"]
    deadline = time.monotonic() + 30
    while ingest.metrics().get("yibao_ingest_cdc_topics_missing") != len(rig.cdc_topics) or \
            "CDC topic does not exist (yet)" not in ingest.log_path.read_text():
        assert time.monotonic() < deadline, ingest.log_tail()
        await asyncio.sleep(0.2)


async def test_an_outpatient_visit_written_by_the_his_is_settled_and_refunded_and_answered_in_its_database(
        rig: CdcRig) -> None:
    person = next(rig.people)
    clerk = rig.clerk
    reg = clerk.register(person)
    clerk.diagnose(reg)
    drug = clerk.charge(reg, ITEM_DRUG, Decimal(2))  # 25.00
    lab = clerk.charge(reg, ITEM_LAB, Decimal(1), price=Decimal("5326.11"))
    # the reversal line: -5326.11 is base64 "9999" under precise decimals, a plain number to a naive reader
    clerk.reverse(lab, ITEM_LAB, Decimal(1), Decimal("5326.11"))
    settle = clerk.request_settlement(reg, drug.amount, person)  # a NUMERIC(12,0) request id: base64 on the wire
    rows = await rig.answers_until(reg, lambda rs: "settled" in _kinds(rs) or "rejected" in _kinds(rs))
    settled = _one(rows, "settled")
    assert settled["his_request_id"] == str(settle)
    assert settled["medfee_sumamt"] == Decimal("25.00") and settled["setl_id"]
    assert Decimal(settled["fund_pay_sumamt"]) + Decimal(settled["psn_part_amt"]) == Decimal("25.00")
    registered = _one(rows, "registered")
    assert registered["mdtrt_id"] and registered["visit_kind"] == "outpatient"
    # the HIS marks its lines settled: an update of no money column, skipped (neither an answer nor parked)
    clerk.sql("UPDATE his.outp_fee_detail SET settle_flag = '1' WHERE reg_id = %(reg)s", {"reg": reg})
    refund = clerk.request_refund(reg, settle)
    rows = await rig.answers_until(reg, lambda rs: "refunded" in _kinds(rs) or "rejected" in _kinds(rs))
    refunded = _one(rows, "refunded")
    assert refunded["his_request_id"] == str(refund) and refunded["orig_setl_id"] == settled["setl_id"]
    assert not {"rejected", "parked"} & set(_kinds(rows)), [(r["kind"], r["reason"]) for r in rows]
    assert len({r["message_id"] for r in rows}) == len(rows)


async def test_the_his_writer_writes_each_result_once_however_often_it_arrives(rig: CdcRig) -> None:
    results_topic = topic("his_results", rig.prefix)
    records = await consume(rig.bridge.info.kafka_bootstrap, [results_topic], idle=1.0, timeout=20)
    assert records
    writer = rig.bridge.workers["his-writer"]
    metric = 'yibao_his_results_written_total{outcome="duplicate"}'
    duplicates = writer.metrics().get(metric, 0.0)
    # every result again, as a replay or a producer retry would deliver it
    await produce(rig.bridge.info.kafka_bootstrap, [(results_topic, r.key, r.value) for r in records])
    deadline = time.monotonic() + 60
    while writer.metrics().get(metric, 0.0) < duplicates + len(records):
        assert time.monotonic() < deadline, writer.log_tail()
        await asyncio.sleep(0.3)
    published = await consume(rig.bridge.info.kafka_bootstrap, [results_topic], idle=1.0, timeout=20)
    ids = {json.loads(r.value)["message_id"] for r in published}
    while {r["message_id"] for r in _all_answers(rig)} != ids:  # one row per result, none twice, none missing
        assert time.monotonic() < deadline, writer.log_tail()
        await asyncio.sleep(0.3)


def _all_answers(rig: CdcRig) -> list[dict[str, Any]]:
    with psycopg.connect(rig.his.dsn, row_factory=dict_row) as conn:
        return conn.execute("SELECT message_id, kind FROM his.yb_result").fetchall()


async def test_a_billed_line_edited_in_place_is_parked_under_the_visit_and_the_desk_can_still_cancel(
        rig: CdcRig) -> None:
    person = next(rig.people)
    clerk = rig.clerk
    reg = clerk.register(person)
    line = clerk.charge(reg, ITEM_DRUG, Decimal(1))
    await rig.answers_until(reg, lambda rs: "registered" in _kinds(rs))
    clerk.sql("UPDATE his.outp_fee_detail SET qty = 3, amount = 37.50 WHERE detail_id = %(id)s",
              {"id": line.detail_id})
    letters = await rig.dead_letters(lambda ls: any(k == str(reg).encode() for k, _ in ls))
    key, letter = next((k, d) for k, d in letters if k == str(reg).encode())
    assert letter.reason_code == "refused" and "rule line_edited" in letter.reason
    assert "reversal line" in letter.reason and letter.source_topic == rig.prefix + "hisdb.his.outp_fee_detail"
    # the HIS does as the reason says: a reversal line for what was billed, then 退号 at the 医保 desk (a
    # lower-case table), answered in the HIS database
    clerk.reverse(line, ITEM_DRUG, Decimal(1), ITEM_DRUG.price)
    cancel = clerk.request_cancel(reg, "REG")
    rows = await rig.answers_until(reg, lambda rs: "cancelled" in _kinds(rs) or "rejected" in _kinds(rs))
    cancelled = _one(rows, "cancelled")
    assert cancelled["his_request_id"] == str(cancel) and cancelled["target"] == "registration"


async def test_a_discharge_cancelled_by_deleting_its_row_is_cancelled_on_the_platform(rig: CdcRig) -> None:
    person = next(rig.people)
    clerk = rig.clerk
    adm = clerk.admit(person)
    clerk.charge_daily(adm)
    dscg = clerk.discharge(adm)
    await rig.answers_until(adm, lambda rs: "discharged" in _kinds(rs) or "rejected" in _kinds(rs))
    clerk.cancel_discharge(dscg)  # REPLICA IDENTITY FULL: the delete carries the whole old row
    rows = await rig.answers_until(adm, lambda rs: "cancelled" in _kinds(rs) or "rejected" in _kinds(rs))
    cancelled = _one(rows, "cancelled")
    assert cancelled["target"] == "discharge" and cancelled["his_request_id"] == f"DSCG-{dscg}-CANCEL"
    assert _kinds(rows).count("admitted") == 1 and "rejected" not in _kinds(rows)


async def test_postgres_default_replica_identity_is_parked_with_the_fix_named_not_guessed(rig: CdcRig) -> None:
    clerk = rig.clerk
    clerk.sql("ALTER TABLE his.inp_admission REPLICA IDENTITY DEFAULT")
    try:
        adm = clerk.admit(next(rig.people))
        await rig.answers_until(adm, lambda rs: "admitted" in _kinds(rs) or "rejected" in _kinds(rs))
        clerk.cancel_admission(adm)  # an update: with the default identity it carries no old row
        letters = await rig.dead_letters(lambda ls: any(k == str(adm).encode() for k, _ in ls))
    finally:
        clerk.sql("ALTER TABLE his.inp_admission REPLICA IDENTITY FULL")
    letter = next(d for k, d in letters if k == str(adm).encode())
    assert letter.reason_code == "replica_identity"
    assert "ALTER TABLE his.inp_admission REPLICA IDENTITY FULL" in letter.reason
    assert "cancelled" not in _kinds(rig.answers(adm))


async def test_a_connector_with_schemas_on_gives_the_same_events(rig: CdcRig) -> None:
    """Every row the tests above wrote, as the schemas-on connector sent it, decodes to the same canonical events
    (same ids, same facts) — the negative precise amount whose base64 is all digits included."""
    ingestor = Ingestor(MAPPING)

    def outcomes(records: list) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in records:
            try:
                result = ingestor.ingest(r.topic, r.partition, r.offset, r.key, r.value)
            except InputError as exc:
                out[f"{r.topic.rsplit('.', 1)[-1]}@{r.offset}"] = exc.code  # same table, same order
                continue
            for e in result.events:
                out[e.event_id] = e.model_dump(mode="json", exclude={"source"})
        return out

    async def read(topics: list[str]) -> list:
        return await consume(rig.bridge.info.kafka_bootstrap, topics, idle=2.0, timeout=30)

    deadline = time.monotonic() + 60
    while True:  # the two connectors read the same log, each at its own pace
        plain, typed = await asyncio.gather(read(rig.cdc_topics),
                                            read([rig.typed_topic(t) for t in rig.cdc_topics]))
        if typed and len(plain) == len(typed):
            break
        assert time.monotonic() < deadline, f"{len(plain)} records without schemas, {len(typed)} with"
    assert any(b'"9999"' in r.value for r in typed), "no negative amount whose base64 is all digits was sent"
    plain_events, typed_events = outcomes(plain), outcomes(typed)
    assert typed_events == plain_events, _difference(plain_events, typed_events)
    assert sorted(v for v in typed_events.values() if isinstance(v, str)) == ["refused", "replica_identity"]
    amounts = {Decimal(e["det_item_fee_sumamt"]) for e in typed_events.values()
               if isinstance(e, dict) and e.get("type") == "charge_line_reversed"}
    assert Decimal("-5326.11") in amounts


def _difference(plain: dict[str, Any], typed: dict[str, Any]) -> str:
    def short(v: Any) -> Any:
        return (v.get("type"), v.get("his_visit_id")) if isinstance(v, dict) else v

    lines = [f"only without schemas: {short(plain[k])} {k}" for k in plain.keys() - typed.keys()]
    lines += [f"only with schemas: {short(typed[k])} {k}" for k in typed.keys() - plain.keys()]
    for k in plain.keys() & typed.keys():
        a, b = plain[k], typed[k]
        if a != b and isinstance(a, dict) and isinstance(b, dict):
            lines.append(f"{short(a)}: " + ", ".join(f"{f}: {a.get(f)!r} / {b.get(f)!r}"
                                                      for f in sorted(a.keys() | b.keys()) if a.get(f) != b.get(f)))
    return "\n".join(lines)
