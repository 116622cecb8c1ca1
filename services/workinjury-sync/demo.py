"""A work-injury month on a running bridge, and its SLA figures: ``yibao demo --workinjury`` (the CLI calls
:func:`run`; the end-to-end tests and the benchmark use :class:`HisPlayer`).

:class:`HisPlayer` plays HIS for a generated month of cross-province patients (:mod:`yibao.fakedata.workinjury`)
through the topics, step by step as a hospital lives it: the platform offers the filing applications (GYD001), the
bridge downloads them, HIS audits them (GYU001) and admits the patients (GYU101), sends their fee lines (GYU102) and
discharge settlements (GYU103), one deduction (GYU004), one settlement revoked (GYR003, its deduction first if any)
and settled again, the month-end (GYU003). :func:`sla_report` tells what a hospital is judged on: every request
answered once, every upload's age against its 30-minute deadline, every download confirmed, how each lost answer
was resolved.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock
from yibao.core.topics import topic
from yibao.fakedata.workinjury import WiPatient, WorkInjuryMonth, generate_month
from yibao.workinjury_sync.models import DownloadedRecord, WorkInjuryResult, case_key, parse_request
from yibao.workinjury_sync.streams import QUEUE_STREAMS

__all__ = ["HisPlayer", "Ledger", "sla_report", "run", "bridge_env", "SERVICE"]

SERVICE = "workinjury-sync"


def bridge_env(sim_url: str, *, hospital: tuple[str, str], platform: tuple[str, str]) -> dict[str, str]:
    """The environment connecting the simulator and the worker: one SM2 key pair each side."""
    return {"YIBAO_SIM_WI_HOSPITAL_PUBLIC_KEY_HEX": hospital[1], "YIBAO_SIM_PLATFORM_PRIVATE_KEY_HEX": platform[0],
            "YIBAO_SIM_PLATFORM_PUBLIC_KEY_HEX": platform[1], "YIBAO_WORKINJURY_PLATFORM_PRIVATE_KEY": hospital[0],
            "YIBAO_WORKINJURY_PLATFORM_PLATFORM_PUBLIC_KEY": platform[1],
            "YIBAO_WORKINJURY_PLATFORM_BASE_URL": sim_url}


@dataclass
class Ledger:
    """What HIS holds at the end of the month."""

    month: WorkInjuryMonth
    filings: dict[str, str] = field(default_factory=dict)  #: apply_no → filing_no
    deduction: tuple[WiPatient, Decimal, str] | None = None
    revoked_first: tuple[str, Decimal] | None = None
    month_end: dict[str, Any] | None = None

    def keys(self) -> set[str]:
        m = self.month
        return ({f"stay:{p.stay_id}" for p in m.patients} | {f"application:{p.apply_no}" for p in m.patients}
                | {f"month:{m.org_code}:{m.yyyymm}"})

    def problems(self, results: list[WorkInjuryResult], platform: dict[str, Any]) -> list[str]:
        """What a hospital would complain about: a request answered otherwise than asked, or twice; an answer late;
        the platform's state not the hospital's."""
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
        if self.revoked_first is not None and settlements.get(self.revoked_first[0], {}).get("status") != "revoked":
            out.append(f"the revoked settlement {self.revoked_first[0]} is not revoked on the platform")
        active = [s for s in settlements.values() if s["status"] == "active" and s["month"] == m.yyyymm]
        if len(active) != len(m.patients):
            out.append(f"{len(active)} active settlements on the platform, HIS has {len(m.patients)}")
        if self.deduction is not None:
            deductions = {d["deduct_no"]: d for d in platform["deductions"]}
            _, amount, no = self.deduction
            if deductions.get(no, {}).get("status") != "active" or Decimal(deductions[no]["deduct_amt"]) != amount:
                out.append(f"deduction {no}: the platform has {deductions.get(no)}")
        if self.month_end is not None:
            ends = [e for e in platform["month_ends"] if e["month"] == m.yyyymm]
            if len(ends) != 1 or Decimal(ends[0]["pay_amt"]) != Decimal(self.month_end["pay_amt"]):
                out.append(f"month-end: the platform has {ends}, HIS sent pay_amt {self.month_end['pay_amt']}")
        for apply_no, filing_no in self.filings.items():
            if platform["applications"].get(apply_no, {}).get("filing_no") != filing_no:
                out.append(f"application {apply_no}: the platform's filing is not {filing_no}")
        return out


class HisPlayer:
    """HIS on the topics of a running bridge (``bootstrap``, ``prefix``), the simulator's admin API at ``admin_url``
    and the worker at ``worker_url``."""

    def __init__(self, bootstrap: str, prefix: str, admin_url: str, worker_url: str, *,
                 org_code: str = "H44010600001") -> None:
        self.bootstrap, self.prefix = bootstrap, prefix
        self.admin_url, self.worker_url = admin_url, worker_url
        self.org_code = org_code
        self.log: Callable[[str], None] = lambda text: None

    # --- the wire ----------------------------------------------------------------------------------------------

    def admin(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        reply = httpx.request(method, f"{self.admin_url}/admin/{path}", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def poll(self, *infnos: str) -> None:
        for infno in infnos:
            httpx.post(f"{self.worker_url}/workinjury/downloads/{infno}/poll", timeout=10).raise_for_status()

    async def send(self, *requests: dict[str, Any]) -> None:
        from aiokafka import AIOKafkaProducer

        name = topic("workinjury_requests", self.prefix)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                    max_request_size=8 * 1024 * 1024)
        await producer.start()
        try:
            futures = [await producer.send(name, key=case_key(parse_request(json.dumps(r)), self.org_code)[0].encode(),
                                           value=json.dumps(r).encode()) for r in requests]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def read(self, topic_id: str) -> list[dict[str, Any]]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(topic(topic_id, self.prefix), bootstrap_servers=self.bootstrap,
                                    group_id=f"his-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            idle_since = time.monotonic()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=250)
                for records in batch.values():
                    out.extend(json.loads(r.value) for r in records)
                if batch:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > 1.0 and (out or time.monotonic() - idle_since > 3.0):
                    break
        finally:
            await consumer.stop()
        return out

    async def results(self) -> list[WorkInjuryResult]:
        return [WorkInjuryResult.model_validate(v) for v in await self.read("workinjury_results")]

    async def wait_results(self, done: Callable[[list[WorkInjuryResult]], bool], *, what: str,
                           timeout: float = 300) -> list[WorkInjuryResult]:
        deadline = time.monotonic() + timeout
        while True:
            results = await self.results()
            if done(results):
                return results
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s ({len(results)} results so far)")

    async def wait_records(self, topic_id: str, done: Callable[[list[DownloadedRecord]], bool], *, what: str,
                           timeout: float = 180) -> list[DownloadedRecord]:
        deadline = time.monotonic() + timeout
        while True:
            records = [DownloadedRecord.model_validate(v) for v in await self.read(topic_id)]
            if done(records):
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:.0f} s")

    # --- the month ---------------------------------------------------------------------------------------------

    async def play(self, m: WorkInjuryMonth, *, during: Callable[[], Any] | None = None,
                   line_events: int = 150) -> Ledger:
        ledger = Ledger(m)
        pats = m.patients
        apply_nos = {p.apply_no for p in pats}
        self.admin("workinjury/offer", method="POST", body={"infno": "GYD001", "records": m.applications()})
        self.poll("GYD001")
        self.log(f"{len(pats)} filing applications offered by the national public service platform (GYD001)")
        await self.wait_records("workinjury_filings", lambda rs: apply_nos <= {
            r.record.get("apply_no") for r in rs if r.kind == "filing_application"}, what="applications downloaded")
        await self.send(*(m.audit(p, clock.now()) for p in pats))
        keys = {f"application:{a}" for a in apply_nos}
        results = await self.wait_results(lambda rs: keys <= {r.case_key for r in rs if r.request == "filing_audit"},
                                          what="audits answered")
        for r in results:
            if r.request == "filing_audit" and r.case_key in keys:
                if r.kind != "uploaded" or not r.platform_ids:
                    raise RuntimeError(f"audit {r.case_key}: {r.kind} {r.reason}")
                ledger.filings[r.case_key.split(":", 1)[1]] = r.platform_ids["filing_no"]
        self.log("applications downloaded, audited (GYU001) and filed")
        if during is not None:
            await during()
        for p in pats:
            events = [m.admitted(p, ledger.filings[p.apply_no], clock.now())]
            for start in range(0, len(p.lines), line_events):
                events.append(m.fee_lines(p, p.lines[start:start + line_events], clock.now()))
            events.append(m.settled(p, clock.now()))
            await self.send(*events)
        stays = {f"stay:{p.stay_id}" for p in pats}
        await self.wait_results(lambda rs: stays <= {r.case_key for r in rs if r.request == "settlement"},
                                what="settlements answered", timeout=600)
        self.log(f"{len(pats)} stays admitted (GYU101), {sum(len(p.lines) for p in pats)} fee lines (GYU102), "
                 "settled (GYU103)")
        if len(pats) >= 2:
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
            self.log("one deduction (GYU004); one settlement revoked (GYR003) and settled again")
        settled = [(p, p.totals(), ledger.deduction[1] if ledger.deduction and p is ledger.deduction[0]
                    else Decimal("0.00")) for p in pats]
        ledger.month_end = m.month_end(settled, ledger.revoked_first[1] if ledger.revoked_first else Decimal("0.00"),
                                       clock.now())
        await self.send(ledger.month_end)
        await self.wait_results(lambda rs: any(r.request == "month_end" and r.case_key == f"month:{m.org_code}:"
                                               f"{m.yyyymm}" for r in rs), what="month-end answered")
        self.log(f"month-end {m.yyyymm} (GYU003)")
        return ledger

    async def every_download_confirmed(self, *, timeout: float = 180) -> dict[str, Any]:
        """Poll every stream until the platform has nothing waiting and nothing unconfirmed; its state."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll(*QUEUE_STREAMS)
            await asyncio.sleep(2)
            state = self.admin("workinjury")
            busy = {name: q for name, q in state["queues"].items() if q["waiting"] or q["outstanding"]}
            if not busy and not state["detail_queues_waiting"]:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"downloads not all confirmed within {timeout:.0f} s: {busy}")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def sla_report(ledger: Ledger, results: list[WorkInjuryResult], platform: dict[str, Any],
               resolutions: Counter[tuple[str, str]] | None = None) -> tuple[list[str], bool]:
    """The lines a hospital reads, and whether the month passed."""
    mine = [r for r in results if r.case_key in ledger.keys()]
    kinds = Counter((r.request, r.kind) for r in mine)
    uploads = [r for r in mine if r.kind == "uploaded" and r.age_s is not None]
    ages = [float(r.age_s) for r in uploads]
    on_time = sum(1 for r in uploads if r.on_time is not False)
    lines = ["requests answered: " + ", ".join(f"{req} {kind} {n}" for (req, kind), n in sorted(kinds.items()))]
    if ages:
        lines.append(f"uploads inside their 30-minute deadline: {on_time}/{len(uploads)}; age p50 "
                     f"{statistics.median(ages):.1f} s, p99 {_percentile(ages, 0.99):.1f} s, max {max(ages):.1f} s "
                     f"(deadline 1800 s)")
    queues = platform["queues"]
    delivered = sum(q["delivered"] for q in queues.values())
    confirmed = sum(q["confirmed"] for q in queues.values())
    lines.append(f"downloads: {delivered} records delivered, {confirmed} confirmed with GYU008, "
                 f"{sum(q['outstanding'] for q in queues.values())} awaiting confirmation, "
                 + ", ".join(f"{k} {q['confirmed']}" for k, q in sorted(queues.items()) if q["delivered"]))
    if resolutions:
        lines.append("lost answers resolved: " + ", ".join(f"{infno} {res} {n}" for (infno, res), n in
                                                           sorted(resolutions.items())))
    problems = ledger.problems(mine, platform)
    lines.append("the platform's state equals the hospital's: " + ("yes" if not problems else "NO"))
    lines += [f"  ! {p}" for p in problems[:20]]
    return lines, not problems and delivered == confirmed


def _resolutions(database_url: str, prefix: str) -> Counter[tuple[str, str]]:
    from sqlalchemy import select

    from yibao.core.db import make_engine
    from yibao.core.db.schema import chain_calls

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(chain_calls.c.infno, chain_calls.c.resolution)
                                .where(chain_calls.c.service == prefix + SERVICE,
                                       chain_calls.c.resolution.is_not(None))).all()
    finally:
        engine.dispose()
    return Counter((infno, res) for infno, res in rows)


def run(info: Any, workdir: Path, *, patients: int = 3, lines: tuple[int, int] = (60, 620), seed: int = 2026,
        faults: list[str] | None = None, out: Callable[[str], None] = print, timeout: float = 900) -> int:
    """Start the simulator and the workinjury-sync worker on ``info`` (a StackInfo), play a generated month, print
    the SLA figures. 0 when every request was answered as asked, on time, the platform equals the hospital and every
    download is confirmed."""
    from yibao.core.db.migrations import upgrade
    from yibao.envelope.crypto import generate_keypair
    from yibao.stack.bridge import LocalBridge

    upgrade(info.database_url)
    prefix = f"wi{uuid.uuid4().hex[:6]}."
    bridge = LocalBridge(info, workdir, prefix=prefix, services=(SERVICE,), sim_faults=faults or [], env={
        "YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S": "60", "YIBAO_WORKINJURY_SYNC_WATCH_INTERVAL_S": "2",
        "YIBAO_SIM_HOLD_S": "1", "YIBAO_WORKINJURY_SYNC_CHAIN_BACKOFF_MAX_S": "2",
        "YIBAO_WORKINJURY_SYNC_CHAIN_MAX_ATTEMPTS": "30"})
    bridge.extra_env.update(bridge_env(bridge.sim_url, hospital=generate_keypair(), platform=generate_keypair()))
    started = time.monotonic()
    try:
        out("work injury (工伤跨省异地就医): starting the simulator and yibao worker workinjury-sync …")
        bridge.start()
        month = generate_month(seed, month=_dt.date(2026, 11, 1), patients=patients, lines=lines)
        player = HisPlayer(info.kafka_bootstrap, prefix, bridge.admin_url, bridge.workers[SERVICE].url)
        player.log = lambda text: out(f"  {text}")

        async def month_and_downloads() -> tuple[Ledger, list[WorkInjuryResult], dict[str, Any]]:
            ledger = await player.play(month)
            platform = await player.every_download_confirmed()
            return ledger, await player.results(), platform

        ledger, results, platform = asyncio.run(asyncio.wait_for(month_and_downloads(), timeout))
        report, ok = sla_report(ledger, results, platform, _resolutions(info.database_url, prefix))
        out(f"work injury: a month of {patients} cross-province stays in {time.monotonic() - started:.0f} s")
        for line in report:
            out(f"  {line}")
        return 0 if ok else 1
    finally:
        bridge.stop()
