"""The registration worker end to end: a real ``yibao worker registration`` process on the real broker and database,
talking to the platform simulator (in this process, real HTTP). Canonical HIS events go in on ``his_events``
(keyed by visit, as ingest publishes them); HisResults and VisitFacts come out; the simulator's ledger (admin API)
shows what the platform holds. The test plays settlement where a rollback needs its answer.

One worker and one simulator serve the module; each test works on visits of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from support.kafka import consume, produce
from support.stack import new_database
from support.simulator import SimulatorThread
from support.workers import WorkerProcess
from unit.registration.registration_support import Events
from yibao.core.results import SettlementFact, stable_id
from yibao.core.topics import topic
from yibao.simulator import Simulator, SimulatorSettings
from yibao.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PREFIX = "regtest."
EVENTS = topic("his_events", PREFIX)
RESULTS = topic("his_results", PREFIX)
VISITS = topic("visits", PREFIX)
FACTS = topic("settlement_facts", PREFIX)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with SimulatorThread(SimulatorSettings(port=0, admin_port=0, population_size=40, hold_s=1.0)) as s:
        yield s


@pytest.fixture(scope="module")
def worker(stack: Stack, kafka_bootstrap: str, sim: Simulator,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("registration")
    proc = WorkerProcess("registration", {
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": new_database(stack, tmp), "YIBAO_TOPIC_PREFIX": PREFIX,
        "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url, "YIBAO_PLATFORM_READ_TIMEOUT_S": "5",
        "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.1", "YIBAO_REGISTRATION_CHAIN_BACKOFF_S": "1.0",
    }, tmp / "registration.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def persons(sim: Simulator) -> list[dict[str, Any]]:
    return httpx.get(sim.admin_url + "/admin/persons?limit=40").json()


_taken = iter(range(40))


def a_person(persons: list[dict[str, Any]]) -> dict[str, Any]:
    """A person no other test of the module uses (an inpatient may hold one open admission only)."""
    return persons[next(_taken)]


def visit_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def as_patient(person: dict[str, Any]) -> dict[str, Any]:
    return {"mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "certno": person["certno"],
            "insutype": person["insutype"]}


async def send(bootstrap: str, *events: Any) -> None:
    await produce(bootstrap, [(EVENTS, e.his_visit_id.encode(), e.to_json()) for e in events])


async def settlement_answers(bootstrap: str, visit: str, kind: str, request_id: str, visit_kind: str) -> None:
    fact = SettlementFact(message_id=stable_id("test-settlement", visit, request_id, kind), his_visit_id=visit,
                          visit_kind=visit_kind, kind=kind, his_request_id=request_id)  # type: ignore[arg-type]
    await produce(bootstrap, [(FACTS, visit.encode(), fact.to_json())])


async def out(bootstrap: str, visit: str, done: Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool], *,
              timeout: float = 45, settle: float = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(HisResults, VisitFacts) of ``visit`` once ``done(results, facts)`` holds (then ``settle`` more seconds)."""

    def split(records: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mine = [(r.topic, json.loads(r.value)) for r in records if r.key == visit.encode()]
        return [v for t, v in mine if t == RESULTS], [v for t, v in mine if t == VISITS]

    records = await consume(bootstrap, [RESULTS, VISITS], timeout=timeout, until=lambda rs: done(*split(rs)))
    if settle:
        await asyncio.sleep(settle)
        records = await consume(bootstrap, [RESULTS, VISITS], timeout=timeout, until=lambda rs: done(*split(rs)))
    results, facts = split(records)
    assert done(results, facts), f"timed out: results {[r['kind'] for r in results]}, facts {[f['kind'] for f in facts]}"
    return results, facts


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["kind"] for m in messages]


async def ledger_visits(sim: Simulator, number: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        visits = (await client.get(sim.admin_url + "/admin/visits")).json()
    return [v for v in visits if v["ipt_otp_no"] == number]


async def set_faults(sim: Simulator, *rules: str) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(sim.admin_url + "/admin/faults", json={"rules": list(rules)})).raise_for_status()


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """A counter of the worker's /metrics (0 when the series does not exist yet)."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in httpx.get(worker.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def unknown_2201(worker: WorkerProcess, resolution: str) -> float:
    return metric(worker, "yibao_unknown_outcomes_total", service="registration", infno="2201",
                  resolution=resolution)


async def fired(sim: Simulator, counter: str) -> int:
    async with httpx.AsyncClient() as client:
        return int((await client.get(sim.admin_url + "/admin/counters")).json()["faults"].get(counter, 0))


# --- outpatient -------------------------------------------------------------------------------------------------

async def test_a_registration_and_its_visit_info_reach_the_platform_and_his(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    from unit.registration.registration_support import diagnosis

    person, ev = a_person(persons), Events(visit_id("O"))
    await send(kafka_bootstrap, ev.registered(**as_patient(person)), ev.visit_info(diagnosis(), med_type="11"))
    results, facts = await out(kafka_bootstrap, ev.visit,
                               lambda r, f: {"registered", "visit_info_uploaded"} <= set(kinds(r)))
    registered = next(r for r in results if r["kind"] == "registered")
    assert registered["psn_no"] == person["psn_no"] and registered["insuplc_admdvs"] == person["insuplc_admdvs"]
    assert registered["detail"]["consultation_fee"]["reg_fee"] == "10.00"
    assert kinds(facts) == ["registered", "visit_info_uploaded"]
    [visit] = await ledger_visits(sim, f"MZ{ev.visit}")
    assert visit["mdtrt_id"] == registered["mdtrt_id"] and visit["info_uploaded"] is True


async def test_duplicated_events_change_nothing(worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str,
                                                persons: list[dict[str, Any]]) -> None:
    person, ev = a_person(persons), Events(visit_id("O"))
    event = ev.registered(**as_patient(person))
    await send(kafka_bootstrap, event, event)
    await out(kafka_bootstrap, ev.visit, lambda r, f: "registered" in kinds(r))
    await send(kafka_bootstrap, event)  # replayed later (a CDC connector restart)
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "registered" in kinds(r), settle=3)
    assert kinds(results) == ["registered"] and kinds(facts) == ["registered"]
    assert len(await ledger_visits(sim, f"MZ{ev.visit}")) == 1


async def test_a_person_the_platform_does_not_know_is_rejected_with_its_reason(
        worker: WorkerProcess, kafka_bootstrap: str) -> None:
    ev = Events(visit_id("O"))
    await send(kafka_bootstrap, ev.registered(mdtrt_cert_no="440106199901010000", certno=None))
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: bool(r) and bool(f))
    assert results[0]["kind"] == "rejected" and results[0]["step_infno"] == "1101" and results[0]["reason"]
    assert kinds(facts) == ["registration_failed"]


async def test_a_self_pay_registration_goes_nowhere_near_the_platform(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    ev = Events(visit_id("O"))
    await send(kafka_bootstrap, ev.registered(settle_choice="self_pay", **as_patient(persons[0])))
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: bool(r) and bool(f))
    assert kinds(results) == ["self_pay"] and facts[0]["self_pay"] is True
    assert await ledger_visits(sim, f"MZ{ev.visit}") == []


async def test_a_cancellation_waits_for_settlement_then_cancels_on_the_platform(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, ev = a_person(persons), Events(visit_id("O"))
    await send(kafka_bootstrap, ev.registered(**as_patient(person)), ev.cancellation(request_id="C1"))
    _, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "unwind_requested" in kinds(f))
    assert next(f for f in facts if f["kind"] == "unwind_requested")["unwind"] == "registration"
    await settlement_answers(kafka_bootstrap, ev.visit, "unwound", "C1", "outpatient")
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "cancelled" in kinds(r))
    assert kinds(results) == ["registered", "cancelled"] and kinds(facts)[-1] == "registration_cancelled"
    [visit] = await ledger_visits(sim, f"MZ{ev.visit}")
    assert visit["status"] == "cancelled"


# --- inpatient --------------------------------------------------------------------------------------------------

async def test_admission_discharge_and_the_rollback_in_reverse_order(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, ev = a_person(persons), Events(visit_id("I"))
    discharge = ev.discharge()
    await send(kafka_bootstrap, ev.admission(**as_patient(person)), ev.admission_changed(adm_bed="07-07"), discharge)
    _, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "discharge_requested" in kinds(f))
    asked = next(f for f in facts if f["kind"] == "discharge_requested")
    assert asked["his_request_id"] == discharge.event_id  # settlement uploads the stay's lines before 2402
    await settlement_answers(kafka_bootstrap, ev.visit, "ready_for_discharge", discharge.event_id, "inpatient")
    await out(kafka_bootstrap, ev.visit, lambda r, f: "discharged" in kinds(r))
    await send(kafka_bootstrap, ev.cancellation("admission", "A1"))  # skips 2405: refused
    results, _ = await out(kafka_bootstrap, ev.visit, lambda r, f: "rejected" in kinds(r))
    assert results[-1]["reason_code"] == "out_of_order"
    await send(kafka_bootstrap, ev.cancellation("discharge", "D1"))
    await out(kafka_bootstrap, ev.visit, lambda r, f: kinds(f).count("unwind_requested") == 1)
    await settlement_answers(kafka_bootstrap, ev.visit, "unwound", "D1", "inpatient")
    await out(kafka_bootstrap, ev.visit, lambda r, f: "discharge_cancelled" in kinds(f))
    await send(kafka_bootstrap, ev.cancellation("admission", "A2"))
    await out(kafka_bootstrap, ev.visit, lambda r, f: kinds(f).count("unwind_requested") == 2)
    await settlement_answers(kafka_bootstrap, ev.visit, "unwound", "A2", "inpatient")
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "admission_cancelled" in kinds(f))
    assert kinds(results) == ["admitted", "admission_changed", "discharged", "rejected", "cancelled", "cancelled"]
    assert [r.get("target") for r in results if r["kind"] == "cancelled"] == ["discharge", "admission"]
    [visit] = await ledger_visits(sim, f"ZY{ev.visit}")
    assert visit["status"] == "cancelled"


# --- faults on 2201 ----------------------------------------------------------------------------------------------

#: fault → how the unknown outcome is resolved (None: not an unknown outcome — 503 means "not forwarded")
FAULTS = {"commit_then_timeout": "adopted", "reset": "absent", "http_5xx:502": "absent", "http_5xx:503": None}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_on_2201_ends_with_exactly_one_registration(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]],
        fault: str) -> None:
    kind, _, status = fault.partition(":")
    person, ev = a_person(persons), Events(visit_id("F"))
    counter = f"2201:{kind}"
    before = await fired(sim, counter)
    resolved_before = {r: unknown_2201(worker, r) for r in ("adopted", "absent")}
    await set_faults(sim, f"2201:{kind}:1" + (f":{status}" if status else ""))
    try:
        await send(kafka_bootstrap, ev.registered(**as_patient(person)))
        for _ in range(300):  # the first 2201 meets the fault; later ones go through
            if await fired(sim, counter) > before:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the fault never fired")
    finally:
        await set_faults(sim)
    results, facts = await out(kafka_bootstrap, ev.visit, lambda r, f: "registered" in kinds(r), settle=1)
    [visit] = [v for v in await ledger_visits(sim, f"MZ{ev.visit}") if v["status"] != "cancelled"]
    assert kinds(results) == ["registered"] and results[0]["mdtrt_id"] == visit["mdtrt_id"]
    assert kinds(facts) == ["registered"] and facts[0]["mdtrt_id"] == visit["mdtrt_id"]
    resolution = FAULTS[fault]
    for name, value in resolved_before.items():  # the journal's resolution, as the metrics count it
        assert unknown_2201(worker, name) == value + (1 if name == resolution else 0), name


async def test_a_worker_killed_mid_2201_resumes_without_a_second_registration(
        worker: WorkerProcess, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, ev = a_person(persons), Events(visit_id("K"))
    before = await fired(sim, "2201:commit_then_timeout")
    await set_faults(sim, "2201:commit_then_timeout:1")
    try:
        await send(kafka_bootstrap, ev.registered(**as_patient(person)))
        for _ in range(300):  # the platform registered the visit and holds its answer: kill -9 now
            if await fired(sim, "2201:commit_then_timeout") > before:
                break
            await asyncio.sleep(0.05)
        worker.kill()
    finally:
        await set_faults(sim)
    worker.start()
    results, _ = await out(kafka_bootstrap, ev.visit, lambda r, f: "registered" in kinds(r), settle=1)
    [visit] = await ledger_visits(sim, f"MZ{ev.visit}")
    assert kinds(results) == ["registered"] and results[0]["mdtrt_id"] == visit["mdtrt_id"]
    assert unknown_2201(worker, "adopted") == 1  # the new process found the journalled call and asked 5201
