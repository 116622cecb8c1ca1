"""Imported as ``e2e.workinjury.month``. The work-injury path as real processes — the simulator (``yibao sim``) and
``yibao worker workinjury-sync`` on the session's real Kafka and a fresh PostgreSQL database — and a HIS that plays
a generated month for a few cross-province patients (:mod:`yibao.fakedata.workinjury`) through the topics:

filings downloaded (GYD001) and audited, admissions, fee lines (one stay over 500 lines: two batches), discharge
settlements, one deduction, one settlement revoked and settled again, the month-end. Then what a hospital checks:
every request answered once and on time, the platform's state equal to the hospital's, every download confirmed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from support.kafka import consume, produce
from support.stack import new_database
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import chain_calls
from yibao.core.topics import topic
from yibao.envelope.crypto import generate_keypair
from yibao.fakedata.workinjury import WiPatient, WorkInjuryMonth, generate_month
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge
from yibao.workinjury_sync.models import DownloadedRecord, WorkInjuryResult, case_key, parse_request

__all__ = ["WiRig", "bridge_on_stack", "SERVICE", "ORG"]

SERVICE = "workinjury-sync"
ORG = "H44010600001"
#: short waits and many attempts, so a fault costs a fraction of a second instead of the production minutes
FAST = {
    "YIBAO_SIM_HOLD_S": "1",
    "YIBAO_WORKINJURY_PLATFORM_RETRY_BACKOFF_S": "0.05",
    "YIBAO_WORKINJURY_SYNC_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_WORKINJURY_SYNC_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_WORKINJURY_SYNC_CHAIN_MAX_ATTEMPTS": "40",
    "YIBAO_WORKINJURY_SYNC_CHAIN_LEASE_S": "10",
    "YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S": "15",
    "YIBAO_WORKINJURY_SYNC_WATCH_INTERVAL_S": "1",
}


class WiRig:
    """A started bridge and the HIS that plays months on it."""

    def __init__(self, bridge: LocalBridge, database_url: str) -> None:
        self.bridge = bridge
        self.database_url = database_url
        self._engine: Engine | None = None
        self._seeds = iter(range(11, 400, 7))
        self._months = iter(range(0, 60))

    # --- the wire ------------------------------------------------------------------------------------------------

    @property
    def worker(self) -> Any:
        return self.bridge.workers[SERVICE]

    def month(self, *, patients: int = 3, lines: tuple[int, int] = (40, 120)) -> WorkInjuryMonth:
        seed, k = next(self._seeds), next(self._months)
        first = _dt.date(2026 + (10 + k) // 12, (10 + k) % 12 + 1, 1)  # a month of its own: one month-end each
        return generate_month(seed, month=first, patients=patients, lines=lines, org_code=ORG)

    async def send(self, *requests: dict[str, Any]) -> None:
        """HIS's requests on yibao.workinjury.requests.v1, keyed by their case (per-case order kept)."""
        name = topic("workinjury_requests", self.bridge.prefix)
        await produce(self.bridge.info.kafka_bootstrap,
                      [(name, case_key(parse_request(json.dumps(r)), ORG)[0].encode(), json.dumps(r).encode())
                       for r in requests])

    async def _read(self, topic_id: str) -> list[Any]:
        records = await consume(self.bridge.info.kafka_bootstrap, [topic(topic_id, self.bridge.prefix)], idle=1.0,
                                timeout=15)
        return [json.loads(r.value) for r in records]

    async def results(self) -> list[WorkInjuryResult]:
        return [WorkInjuryResult.model_validate(v) for v in await self._read("workinjury_results")]

    async def wait_results(self, done: Callable[[list[WorkInjuryResult]], bool], *, what: str,
                           timeout: float = 180) -> list[WorkInjuryResult]:
        deadline = time.monotonic() + timeout
        while True:
            results = await self.results()
            if done(results):
                return results
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f}s; {len(results)} results:\n"
                                     + "\n".join(f"{r.case_key} {r.request} {r.kind} {r.reason or ''}"
                                                 for r in results[-15:]) + "\n" + self.worker.log_tail(25))

    async def records(self, topic_id: str) -> list[DownloadedRecord]:
        return [DownloadedRecord.model_validate(v) for v in await self._read(topic_id)]

    def poll(self, *infnos: str) -> None:
        for infno in infnos:
            reply = httpx.post(f"{self.worker.url}/workinjury/downloads/{infno}/poll", timeout=10)
            assert reply.status_code == 202, reply.text

    def admin(self, path: str, **kw: Any) -> Any:
        return self.bridge.admin(path, **kw)

    def platform(self) -> dict[str, Any]:
        return self.admin("workinjury")

    # --- the database ------------------------------------------------------------------------------------------

    @property
    def db(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def calls(self, infno: str) -> list[tuple[str, str, str, str | None]]:
        """(case, purpose, status, resolution) of every journalled call of ``infno``."""
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.visit_key, chain_calls.c.purpose, chain_calls.c.status,
                                       chain_calls.c.resolution)
                                .where(chain_calls.c.service == self.bridge.prefix + SERVICE,
                                       chain_calls.c.infno == infno).order_by(chain_calls.c.id)).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def wait_in_flight(self, infno: str, *, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = [case for case, purpose, status, _ in self.calls(infno) if purpose == "step" and status == "sent"]
            if sent:
                return sent[0]
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {infno} in flight within {timeout:.0f}s")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # --- HIS plays the month -----------------------------------------------------------------------------------

    async def play(self, m: WorkInjuryMonth, *, during: Callable[[], Any] | None = None) -> Ledger:
        """The month, step by step as a hospital lives it; returns what HIS holds (its ledger)."""
        ledger = Ledger(m)
        pats = m.patients
        apply_nos = {p.apply_no for p in pats}
        self.admin("workinjury/offer", method="POST", body={"infno": "GYD001", "records": m.applications()})
        self.poll("GYD001")
        await self._wait_records("workinjury_filings", lambda rs: apply_nos <= {
            r.record.get("apply_no") for r in rs if r.kind == "filing_application"}, what="applications downloaded")
        await self.send(*(m.audit(p, clock.now()) for p in pats))
        results = await self.wait_results(lambda rs: len(_final(rs, "filing_audit", apply_nos, by="apply")) ==
                                          len(pats), what="audits answered")
        for r in _final(results, "filing_audit", apply_nos, by="apply").values():
            assert r.kind == "uploaded", f"audit {r.case_key}: {r.kind} {r.reason}"
            ledger.filings[r.case_key.split(":", 1)[1]] = r.platform_ids["filing_no"]
        if during is not None:
            await during()
        # admissions, fee lines in several events, discharge settlements
        for p in pats:
            filing_no = ledger.filings[p.apply_no]
            events = [m.admitted(p, filing_no, clock.now())]
            for start in range(0, len(p.lines), 150):
                events.append(m.fee_lines(p, p.lines[start:start + 150], clock.now()))
            events.append(m.settled(p, clock.now()))
            await self.send(*events)
        stays = {f"stay:{p.stay_id}" for p in pats}
        await self.wait_results(lambda rs: stays <= {r.case_key for r in rs if r.request == "settlement"},
                                what="settlements answered", timeout=300)
        # one deduction, one settlement revoked and settled again
        deducted, revoked = pats[0], pats[1]
        ledger.deduction = (deducted, Decimal("35.50"), f"KK{deducted.stay_id}")
        ledger.revoked_first = (revoked.setl_no, revoked.totals()["medfee_sumamt"])
        await self.send(m.deduction(deducted, Decimal("35.50"), clock.now(), deduct_no=ledger.deduction[2]),
                        m.revocation(revoked, "settlement", clock.now()))
        await self.wait_results(lambda rs: {("deduction", f"stay:{deducted.stay_id}"),
                                            ("revocation", f"stay:{revoked.stay_id}")} <= {
            (r.request, r.case_key) for r in rs}, what="deduction and revocation answered")
        revoked.setl_no = revoked.setl_no + "R"
        await self.send(m.admitted(revoked, ledger.filings[revoked.apply_no], clock.now()),
                        m.fee_lines(revoked, revoked.lines, clock.now()), m.settled(revoked, clock.now()))
        await self.wait_results(lambda rs: sum(1 for r in rs if r.request == "settlement"
                                               and r.case_key == f"stay:{revoked.stay_id}") >= 2,
                                what="the corrected settlement answered")
        # the month-end
        settled = [(p, p.totals(), ledger.deduction[1] if p is deducted else Decimal("0.00")) for p in pats]
        ledger.month_end = m.month_end(settled, ledger.revoked_first[1], clock.now())
        await self.send(ledger.month_end)
        await self.wait_results(lambda rs: any(r.request == "month_end" for r in rs), what="month-end answered")
        return ledger

    async def _wait_records(self, topic_id: str, done: Callable[[list[DownloadedRecord]], bool], *, what: str,
                            timeout: float = 120) -> list[DownloadedRecord]:
        deadline = time.monotonic() + timeout
        while True:
            records = await self.records(topic_id)
            if done(records):
                return records
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f}s\n{self.worker.log_tail(25)}")

    async def every_download_confirmed(self, *, timeout: float = 120) -> dict[str, Any]:
        """Poll every stream until the platform has nothing waiting and nothing unconfirmed."""
        deadline = time.monotonic() + timeout
        streams = ("GYD001", "GYD006", "GYD101", "GYD103", "GYD004", "GYD401", "GYD402", "GYD403", "GYD404",
                   "GYD003", "GYD005", "GYD009")
        while True:
            self.poll(*streams)
            await asyncio.sleep(2)
            state = self.platform()
            busy = {name: q for name, q in state["queues"].items() if q["waiting"] or q["outstanding"]}
            if not busy and not state["detail_queues_waiting"]:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"downloads not all confirmed: {busy}\n{self.worker.log_tail(25)}")


@dataclasses.dataclass
class Ledger:
    """What HIS holds at the end of the month."""

    month: WorkInjuryMonth
    filings: dict[str, str] = dataclasses.field(default_factory=dict)  #: apply_no → filing_no
    deduction: tuple[WiPatient, Decimal, str] | None = None
    revoked_first: tuple[str, Decimal] | None = None
    month_end: dict[str, Any] | None = None

    def problems(self, results: list[WorkInjuryResult], platform: dict[str, Any]) -> list[str]:
        """What a hospital would complain about: a request answered otherwise than asked, or twice; an answer
        late; the platform's state not the hospital's."""
        out: list[str] = []
        finals: dict[str, set[str]] = {}
        for r in results:
            if r.his_event_id:
                finals.setdefault(r.his_event_id, set()).add(r.message_id)
            if r.kind not in ("uploaded", "revoked"):
                out.append(f"{r.case_key} {r.request}: {r.kind} {r.reason_code} {r.reason}")
            if r.kind == "uploaded" and r.on_time is False:
                out.append(f"{r.case_key} {r.request}: uploaded after its deadline ({r.age_s} s)")
        out += [f"event {e} answered {len(ids)} times" for e, ids in finals.items() if len(ids) > 1]
        m = self.month
        admissions = {a["ipt_no"]: a for a in platform["admissions"]}
        settlements = {s["setl_no"]: s for s in platform["settlements"]}
        for p in m.patients:
            adm = admissions.get(p.ipt_no)
            if adm is None or adm["status"] != "active" or adm["setl_no"] != p.setl_no:
                out.append(f"{p.stay_id}: the platform's admission is {adm}")
                continue
            if adm["details"] != len(p.lines) or Decimal(adm["detail_total"]) != p.totals()["medfee_sumamt"]:
                out.append(f"{p.stay_id}: the platform holds {adm['details']} lines for {adm['detail_total']}, HIS "
                           f"{len(p.lines)} for {p.totals()['medfee_sumamt']}")
            setl = settlements.get(p.setl_no)
            if setl is None or setl["status"] != "active" or Decimal(setl["pool_amt"]) != p.totals()["pool_amt"]:
                out.append(f"{p.stay_id}: the platform's settlement is {setl}")
        assert self.revoked_first is not None and self.deduction is not None and self.month_end is not None
        if settlements.get(self.revoked_first[0], {}).get("status") != "revoked":
            out.append(f"the revoked settlement {self.revoked_first[0]} is not revoked on the platform")
        active = [s for s in settlements.values() if s["status"] == "active" and s["month"] == m.yyyymm]
        if len(active) != len(m.patients):
            out.append(f"{len(active)} active settlements on the platform, HIS has {len(m.patients)}")
        deductions = {d["deduct_no"]: d for d in platform["deductions"]}
        _, amount, no = self.deduction
        if deductions.get(no, {}).get("status") != "active" or Decimal(deductions[no]["deduct_amt"]) != amount:
            out.append(f"deduction {no}: the platform has {deductions.get(no)}")
        ends = [e for e in platform["month_ends"] if e["month"] == m.yyyymm]
        if len(ends) != 1 or Decimal(ends[0]["pay_amt"]) != Decimal(self.month_end["pay_amt"]):
            out.append(f"month-end: the platform has {ends}, HIS sent pay_amt {self.month_end['pay_amt']}")
        for apply_no, filing_no in self.filings.items():
            if platform["applications"].get(apply_no, {}).get("filing_no") != filing_no:
                out.append(f"application {apply_no}: the platform's filing is not {filing_no}")
        return out


def _final(results: list[WorkInjuryResult], request: str, keys: set[str], *, by: str) -> dict[str, Any]:
    out = {}
    for r in results:
        if r.request == request and r.case_key.split(":", 1)[1] in keys:
            out[r.case_key] = r
    return out


def bridge_on_stack(stack: Stack, tmp: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[WiRig]:
    """A module's bridge: a fresh database, a topic prefix of its own, the simulator and the workinjury-sync worker
    with one key pair each side. Stopped (its logs kept in ``tmp``) afterwards."""
    url = new_database(stack, tmp)
    upgrade(url)
    prefix = f"wi{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    hospital, platform = generate_keypair(), generate_keypair()
    bridge = LocalBridge(info, tmp, prefix=prefix, services=(SERVICE,), env={
        **FAST,
        "YIBAO_SIM_WI_HOSPITAL_PUBLIC_KEY_HEX": hospital[1],
        "YIBAO_SIM_PLATFORM_PRIVATE_KEY_HEX": platform[0],
        "YIBAO_SIM_PLATFORM_PUBLIC_KEY_HEX": platform[1],
        "YIBAO_WORKINJURY_PLATFORM_PRIVATE_KEY": hospital[0],
        "YIBAO_WORKINJURY_PLATFORM_PLATFORM_PUBLIC_KEY": platform[1],
        **(extra_env or {})})
    bridge.extra_env["YIBAO_WORKINJURY_PLATFORM_BASE_URL"] = bridge.sim_url
    bridge.start()
    rig = WiRig(bridge, url)
    try:
        yield rig
    finally:
        rig.close()
        bridge.stop()
