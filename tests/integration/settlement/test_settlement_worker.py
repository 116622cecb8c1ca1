"""The settlement worker end to end: a real ``yibao worker settlement`` process on the real broker and database,
talking to the platform simulator (in this process, on its own thread, real HTTP).

The test plays the HIS (canonical events on ``his_events``, keyed by visit, as ingest publishes them) and
registration (2201/2203, 2401/2402 on the platform with its own client, then VisitFacts on ``visits``). What comes
back — HisResults and SettlementFacts — is checked against the simulator's ledger: every settlement HIS heard of
is exactly the platform's, and nothing is ever settled twice, whatever fault the platform throws.

One worker and one simulator serve the module; each test works on visits and persons of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from support.kafka import consume, produce
from support.stack import new_database
from support.simulator import SimulatorThread
from support.workers import WorkerProcess
from unit.settlement import his_events as ev
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.results import VisitFact, stable_id
from yibao.core.topics import topic
from yibao.envelope.client import NationalClient
from yibao.envelope.settings import PlatformSettings
from yibao.simulator import Simulator, SimulatorSettings
from yibao.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PREFIX = "settletest."
EVENTS = topic("his_events", PREFIX)
VISITS = topic("visits", PREFIX)
RESULTS = topic("his_results", PREFIX)
FACTS = topic("settlement_facts", PREFIX)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with SimulatorThread(SimulatorSettings(port=0, admin_port=0, population_size=60, hold_s=2.0)) as s:
        yield s


@pytest.fixture(scope="module")
def db_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_database(stack, tmp_path_factory.mktemp("settlement-db"))


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, sim: Simulator, db_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    tmp = tmp_path_factory.mktemp("settlement")
    proc = WorkerProcess("settlement", {
        "KAFKA_BOOTSTRAP": kafka_bootstrap, "DATABASE_URL": db_url, "YIBAO_TOPIC_PREFIX": PREFIX,
        "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_PLATFORM_BASE_URL": sim.url, "YIBAO_PLATFORM_READ_TIMEOUT_S": "3",
        "YIBAO_PLATFORM_SETTLEMENT_READ_TIMEOUT_S": "1", "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.05",
        "YIBAO_SETTLEMENT_CHAIN_BACKOFF_S": "0.2", "YIBAO_SETTLEMENT_LINES_WAIT_S": "60",
    }, tmp / "settlement.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def persons(sim: Simulator) -> list[dict[str, Any]]:
    everyone = httpx.get(sim.admin_url + "/admin/persons?limit=60").json()
    return [p for p in everyone if p["insutype"] == "310"]


_taken = iter(range(60))


def a_person(persons: list[dict[str, Any]]) -> dict[str, Any]:
    """A person no other test of the module uses (one open admission per person)."""
    return persons[next(_taken)]


@pytest.fixture
async def registrar(worker: WorkerProcess, sim: Simulator, db_url: str) -> AsyncIterator["Registrar"]:
    engine = make_engine(db_url)
    # its own operator and sign-in, never signed out under the worker's feet
    settings = PlatformSettings(base_url=sim.url, retry_backoff_s=0.05, read_timeout_s=5, opter="test-reg",
                                signout_on_close=False)
    async with NationalClient(settings, engine=engine, service="test-registration") as client:
        yield Registrar(client)
    engine.dispose()


class Registrar:
    """Plays registration: the platform's visit (2201/2203, 2401/2402), then the VisitFacts settlement reads."""

    def __init__(self, client: NationalClient) -> None:
        self.client = client

    async def outpatient(self, bootstrap: str, visit: str, person: dict[str, Any]) -> str:
        ins = person["insuplc_admdvs"]
        out = await self.client.call("2201", {"data": {
            "psn_no": person["psn_no"], "insutype": person["insutype"], "begntime": clock.now(),
            "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "ipt_otp_no": "MZ" + visit,
            "atddr_no": "D01", "dr_name": "医生甲", "dept_code": "K01", "dept_name": "内科", "caty": "A03"}},
            insuplc_admdvs=ins)
        mdtrt_id = out.output["data"]["mdtrt_id"]
        await self.client.call("2203", {
            "mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person["psn_no"], "med_type": "11",
                          "begntime": clock.now(), "dise_codg": "J00", "dise_name": "感冒"},
            "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00", "diag_name": "感冒",
                          "diag_dept": "内科", "dise_dor_no": "D01", "dise_dor_name": "医生甲",
                          "diag_time": clock.now(), "vali_flag": "1"}]}, insuplc_admdvs=ins)
        await facts(bootstrap, visit, "outpatient", registered(person, mdtrt_id, "11"), {"kind": "visit_info_uploaded"})
        return mdtrt_id

    async def inpatient(self, bootstrap: str, visit: str, person: dict[str, Any]) -> str:
        diagnosis = {"psn_no": person["psn_no"], "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1,
                     "diag_code": "J18.9", "diag_name": "肺炎", "diag_dept": "内科", "dise_dor_no": "D01",
                     "dise_dor_name": "医生甲", "diag_time": clock.now()}
        out = await self.client.call("2401", {"mdtrtinfo": {
            "psn_no": person["psn_no"], "insutype": person["insutype"], "begntime": clock.now(),
            "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "med_type": "21", "ipt_no": "ZY" + visit,
            "atddr_no": "D01", "chfpdr_name": "医生甲", "adm_diag_dscr": "肺炎", "adm_dept_codg": "K01",
            "adm_dept_name": "内科", "adm_bed": "01", "dscg_maindiag_code": "J18.9", "dscg_maindiag_name": "肺炎"},
            "diseinfo": [diagnosis]}, insuplc_admdvs=person["insuplc_admdvs"])
        mdtrt_id = out.output["data"]["mdtrt_id"]
        await facts(bootstrap, visit, "inpatient", registered(person, mdtrt_id, "21", kind="admitted"))
        self._diagnosis = diagnosis
        return mdtrt_id

    async def discharge(self, bootstrap: str, visit: str, person: dict[str, Any], mdtrt_id: str) -> None:
        await self.client.call("2402", {"dscginfo": {
            "mdtrt_id": mdtrt_id, "psn_no": person["psn_no"], "insutype": person["insutype"], "endtime": clock.now(),
            "dise_codg": "J18.9", "dise_name": "肺炎", "dscg_way": "1", "dscg_dept_codg": "K01",
            "dscg_dept_name": "内科"}, "diseinfo": [{**self._diagnosis, "mdtrt_id": mdtrt_id}]},
            insuplc_admdvs=person["insuplc_admdvs"])
        await facts(bootstrap, visit, "inpatient", {"kind": "discharged", "endtime": clock.now()})


def registered(person: dict[str, Any], mdtrt_id: str, med_type: str, *, kind: str = "registered") -> dict[str, Any]:
    return {"kind": kind, "psn_no": person["psn_no"], "insutype": person["insutype"],
            "insuplc_admdvs": person["insuplc_admdvs"], "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"],
            "med_type": med_type, "mdtrt_id": mdtrt_id}


async def facts(bootstrap: str, visit: str, visit_kind: str, *items: dict[str, Any]) -> None:
    messages = []
    for item in items:
        fact = VisitFact(message_id=stable_id("test-registration", visit, uuid.uuid4().hex), his_visit_id=visit,
                         visit_kind=visit_kind, **item)  # type: ignore[arg-type]
        messages.append((VISITS, visit.encode(), fact.to_json()))
    await produce(bootstrap, messages)


async def send(bootstrap: str, *events: Any) -> None:
    await produce(bootstrap, [(EVENTS, e.his_visit_id.encode(), e.to_json()) for e in events])


def visit_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


Done = Callable[[list[dict[str, Any]], list[dict[str, Any]]], bool]


async def out(bootstrap: str, visit: str, done: Done, *, timeout: float = 60, settle: float = 0
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(HisResults, SettlementFacts) of ``visit``, distinct by message id, once ``done(results, facts)`` holds."""

    def split(records: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        for r in records:
            value = json.loads(r.value)
            if value.get("his_visit_id") == visit:
                seen.setdefault(value["message_id"], (r.topic, value))
        return ([v for t, v in seen.values() if t == RESULTS], [v for t, v in seen.values() if t == FACTS])

    records = await consume(bootstrap, [RESULTS, FACTS], timeout=timeout, until=lambda rs: done(*split(rs)))
    if settle:
        await asyncio.sleep(settle)
        records = await consume(bootstrap, [RESULTS, FACTS], timeout=timeout, until=lambda rs: done(*split(rs)))
    results, answers = split(records)
    assert done(results, answers), (f"timed out: results {[(r['kind'], r.get('reason')) for r in results]}, "
                                    f"facts {kinds(answers)}")
    return results, answers


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["kind"] for m in messages]


def has(*wanted: str) -> Done:
    return lambda results, _: all(kinds(results).count(k) >= wanted.count(k) for k in set(wanted))


async def ledger(sim: Simulator, mdtrt_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        entries = (await client.get(sim.admin_url + "/admin/settlements")).json()
    return [e for e in entries if e["mdtrt_id"] == mdtrt_id]


async def set_faults(sim: Simulator, *rules: str) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(sim.admin_url + "/admin/faults", json={"rules": list(rules)})).raise_for_status()


async def counters(sim: Simulator) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        return dict((await client.get(sim.admin_url + "/admin/counters")).json()["faults"])


def agrees(results: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """HIS heard of exactly the platform's settlements and cancellations, each once; nothing settled twice."""
    settlements = [e for e in entries if e["refd_setl_flag"] == "0" and e["status"] != "reversed"]
    cancellations = [e for e in entries if e["refd_setl_flag"] == "1" and e["status"] != "reversed"]
    settled = [r for r in results if r["kind"] == "settled"]
    refunded = [r for r in results if r["kind"] == "refunded"]
    assert sorted(r["setl_id"] for r in settled) == sorted(e["setl_id"] for e in settlements)
    assert sorted(r["setl_id"] for r in refunded) == sorted(e["setl_id"] for e in cancellations)
    by_id = {e["setl_id"]: e for e in entries}
    for r in settled + refunded:
        entry = by_id[r["setl_id"]]
        assert r["msgid"] == entry["msgid"], "msgid = medins_setl_id"
        assert Decimal(str(r["split"]["medfee_sumamt"])) == Decimal(str(entry["amounts"]["medfee_sumamt"]))
    for request in {r["his_request_id"] for r in settled}:
        assert [r["his_request_id"] for r in settled].count(request) == 1


# --- outpatient ---------------------------------------------------------------------------------------------------


async def test_an_outpatient_visit_is_settled_refunded_and_unwound(
        registrar: Registrar, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, visit = a_person(persons), visit_id("O")
    mdtrt_id = await registrar.outpatient(kafka_bootstrap, visit, person)
    await send(kafka_bootstrap, ev.line(visit, "outpatient", "F1", "30.00"),
               ev.line(visit, "outpatient", "F2", "12.50", cnt="2"), ev.settle(visit, "outpatient", "S1", "42.50"))
    results, _ = await out(kafka_bootstrap, visit, has("settled"))
    settled = next(r for r in results if r["kind"] == "settled")
    assert settled["split"]["medfee_sumamt"] == "42.50" and settled["his_request_id"] == "S1"
    await send(kafka_bootstrap, ev.refund(visit, "outpatient", "R1", of="S1"))
    results, answers = await out(kafka_bootstrap, visit, has("settled", "refunded"))
    refunded = next(r for r in results if r["kind"] == "refunded")
    assert refunded["orig_setl_id"] == settled["setl_id"] and refunded["split"]["medfee_sumamt"] == "-42.50"
    agrees(results, await ledger(sim, mdtrt_id))
    await facts(kafka_bootstrap, visit, "outpatient",
                {"kind": "unwind_requested", "unwind": "registration", "his_request_id": "C1"})
    _, answers = await out(kafka_bootstrap, visit, lambda r, f: "unwound" in kinds(f))
    assert kinds(answers)[-3:] == ["settled", "settlement_cancelled", "unwound"]
    assert set(kinds(answers)[:-3]) == {"details_uploaded"}  # one per upload batch


async def test_duplicated_and_reordered_events_settle_once(
        registrar: Registrar, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, visit = a_person(persons), visit_id("D")
    first = ev.line(visit, "outpatient", "F1", "20.00")
    second = ev.line(visit, "outpatient", "F2", "5.00")
    request = ev.settle(visit, "outpatient", "S1", "25.00")
    await send(kafka_bootstrap, request, second, request)  # the request before its lines, twice
    mdtrt_id = await registrar.outpatient(kafka_bootstrap, visit, person)  # registration after them
    await send(kafka_bootstrap, first, second, first)
    results, _ = await out(kafka_bootstrap, visit, has("settled"), settle=3)
    await send(kafka_bootstrap, request, first, second)  # replayed later (a connector restart)
    results, _ = await out(kafka_bootstrap, visit, has("settled"), settle=3)
    assert kinds(results) == ["presettled", "settled"]
    agrees(results, await ledger(sim, mdtrt_id))


# --- inpatient ----------------------------------------------------------------------------------------------------


async def test_an_inpatient_stay_settles_mid_way_and_finally_and_refunds_latest_first(
        registrar: Registrar, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]]) -> None:
    person, visit = a_person(persons), visit_id("I")
    mdtrt_id = await registrar.inpatient(kafka_bootstrap, visit, person)
    await send(kafka_bootstrap, ev.line(visit, "inpatient", "L1", "200.00"),
               ev.settle(visit, "inpatient", "M1", "200.00", mid="1"))
    await out(kafka_bootstrap, visit, has("settled"))
    await send(kafka_bootstrap, ev.line(visit, "inpatient", "L2", "80.00"))
    await out(kafka_bootstrap, visit, lambda r, f: kinds(f).count("details_uploaded") == 2)
    await registrar.discharge(kafka_bootstrap, visit, person, mdtrt_id)
    await send(kafka_bootstrap, ev.settle(visit, "inpatient", "S1", "80.00"),
               ev.refund(visit, "inpatient", "R1", of="M1"))
    results, _ = await out(kafka_bootstrap, visit, has("settled", "settled", "rejected"))
    rejected = next(r for r in results if r["kind"] == "rejected")
    assert rejected["his_request_id"] == "R1" and rejected["reason_code"] == "out_of_order"
    await send(kafka_bootstrap, ev.refund(visit, "inpatient", "R2", of="S1"))
    results, _ = await out(kafka_bootstrap, visit, has("settled", "settled", "refunded"))
    assert [(r["his_request_id"], r.get("mid_setl_flag")) for r in results if r["kind"] == "settled"] == [
        ("M1", "1"), ("S1", "0")]
    agrees(results, await ledger(sim, mdtrt_id))


# --- faults -------------------------------------------------------------------------------------------------------

FAULTS = {
    "http_5xx": "http_5xx:1:503",
    "reset": "reset:1",
    "latency": "latency:1:300",
    "commit_then_timeout": "commit_then_timeout:1",
}
TARGETS = ("2204", "2207", "2304", "2208")


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_each_fault_ends_with_the_ledger_and_his_agreeing(
        registrar: Registrar, sim: Simulator, kafka_bootstrap: str, persons: list[dict[str, Any]],
        fault: str) -> None:
    kind, _, rest = FAULTS[fault].partition(":")
    before = await counters(sim)
    armed = set(TARGETS)
    await set_faults(sim, *(f"{infno}:{kind}:{rest}" for infno in TARGETS))

    async def disarm() -> None:  # each target meets its fault once; later calls go through
        while armed:
            now = await counters(sim)
            for infno in list(armed):
                if now.get(f"{infno}:{kind}", 0) > before.get(f"{infno}:{kind}", 0):
                    armed.discard(infno)
            await set_faults(sim, *(f"{infno}:{kind}:{rest}" for infno in sorted(armed)))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(disarm())
    try:
        out_person, in_person = a_person(persons), a_person(persons)
        out_visit, in_visit = visit_id("FO"), visit_id("FI")
        out_mdtrt = await registrar.outpatient(kafka_bootstrap, out_visit, out_person)
        in_mdtrt = await registrar.inpatient(kafka_bootstrap, in_visit, in_person)
        await send(kafka_bootstrap, ev.line(out_visit, "outpatient", "F1", "60.00"),
                   ev.settle(out_visit, "outpatient", "S1", "60.00"),
                   ev.refund(out_visit, "outpatient", "R1", of="S1"),
                   ev.line(in_visit, "inpatient", "L1", "150.00"))
        await out(kafka_bootstrap, in_visit, lambda r, f: "details_uploaded" in kinds(f))
        await registrar.discharge(kafka_bootstrap, in_visit, in_person, in_mdtrt)
        await send(kafka_bootstrap, ev.settle(in_visit, "inpatient", "S1", "150.00"))
        out_results, _ = await out(kafka_bootstrap, out_visit, has("settled", "refunded"), timeout=90)
        in_results, _ = await out(kafka_bootstrap, in_visit, has("settled"), timeout=90)
        await asyncio.wait_for(watcher, 30)
    finally:
        watcher.cancel()
        await set_faults(sim)
    fired = await counters(sim)
    assert all(fired.get(f"{i}:{kind}", 0) > before.get(f"{i}:{kind}", 0) for i in TARGETS), fired
    agrees(out_results, await ledger(sim, out_mdtrt))
    agrees(in_results, await ledger(sim, in_mdtrt))
    await asyncio.sleep(2)  # nothing more comes: no second settlement, no late duplicate
    out_again, _ = await out(kafka_bootstrap, out_visit, has("settled", "refunded"))
    assert sorted(kinds(out_again)) == sorted(kinds(out_results))


# --- a crash ------------------------------------------------------------------------------------------------------


async def test_a_worker_killed_mid_settlement_resumes_without_a_second_settlement(
        worker: WorkerProcess, registrar: Registrar, sim: Simulator, kafka_bootstrap: str,
        persons: list[dict[str, Any]]) -> None:
    person, visit = a_person(persons), visit_id("K")
    mdtrt_id = await registrar.outpatient(kafka_bootstrap, visit, person)
    before = (await counters(sim)).get("2207:commit_then_timeout", 0)
    await set_faults(sim, "2207:commit_then_timeout:1")
    try:
        await send(kafka_bootstrap, ev.line(visit, "outpatient", "F1", "88.00"),
                   ev.settle(visit, "outpatient", "S1", "88.00"))
        for _ in range(400):  # the platform settled and holds its answer: kill -9 now, mid-call
            if (await counters(sim)).get("2207:commit_then_timeout", 0) > before:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the 2207 never arrived")
        worker.kill()
    finally:
        await set_faults(sim)
    assert [e["status"] for e in await ledger(sim, mdtrt_id)] == ["active"]
    worker.start()
    results, _ = await out(kafka_bootstrap, visit, has("settled"), timeout=90, settle=2)
    assert kinds(results).count("settled") == 1
    agrees(results, await ledger(sim, mdtrt_id))
