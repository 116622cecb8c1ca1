"""Chains per second, the latency the bridge adds, and the database work per platform call — against the platform
simulator, on this machine's real stack with PostgreSQL run as production runs it (fsync, synchronous_commit on).

Every ratio names what it divides by. Phases, one stack, one simulator:

1. **ceiling** — the simulator answering 1101 to a trivial httpx loop (8 callers): ``ceiling_calls_per_s``.
2. **bare loop** — the outpatient chain the bridge runs (1101 → 2201 → 2203 → 2204 → 2206 → 2207) sent by a plain
   httpx loop with hand-built envelopes (no validation, signing, journal, Kafka or database), swept over
   concurrency 1…32: ``bare_sweep``; its best is the CPU-bound ceiling for these calls (``bare_best_chains_per_s``).
   One chain at a time gives ``bare_serial_chain_p50_ms``.
3. **burst** (CPU-bound) — ``--visits`` outpatient visits of a generated plain HIS day (``generate_day(plain=True)``:
   every visit registered, diagnosed once, charged and settled — the bare loop's six calls, not a day with 退号,
   refunds and self-pay whose visits settle less and call more) through the real path (Debezium
   events → ingest → registration → settlement, real processes), every change event produced at once:
   ``burst_chains_per_s`` over ``bare_best_chains_per_s``. Also the database transactions per platform call —
   every PostgreSQL commit of the run (``pg_stat_database``) and the chain engine's own
   (``yibao_chain_transactions_total``) — and the CPU each process spent per settled chain.
4. **unloaded** (latency) — ``--latency-visits`` visits one at a time. Per part, p50/p99: the entry hop (CDC event
   produced → registration has absorbed it; ``entry_hop_parts`` splits it: CDC record → ingest's inbox, → its outbox
   row, → published by its relay, → registration's inbox), the handoff (registration's fact written → settlement has absorbed it),
   the exit hop (settlement's result written → on the results topic), and what the bridge adds per platform call
   (the gap between one call's answer and the next call of the same visit in the same service).
5. **with the platform's latency** — the simulator answering after 150-300 ms (uniform jitter) with the chain
   services' in-flight limit at ``--in-flight``: the bridge's chains/s over the bare loop's with as many chains in
   flight as the bridge can have at the platform (the sum of the chain services' limits), then with 2 replicas of
   each chain service over 1. Before each of these bursts a few visits are settled unmeasured (``WARM_UP``): the
   workers just (re)started have signed in and the consumer group has finished rebalancing. The replica ratio means
   something only when in-flight work, not CPU, bounds the one-replica burst: the limit (``--in-flight``, 2 by
   default) is chosen so that twice the one-replica burst's CPU still fits in the machine (at ≈ 200 ms of CPU per
   chain over every process, 2 in flight per worker settles ≈ 3 chains/s on ≈ 0.6 of 2 cores; 4 would need all of
   both cores with two replicas). Each of these bursts records ``what_bounded_it``: the machine's CPU busy fraction
   (every process on it, from /proc/stat), the CPU cores the bridge's own processes used, and per chain worker how
   full its in-flight limit was (sampled from ``yibao_chain_in_flight``), the platform calls it sent and the most
   outbox rows its relay had waiting (``yibao_outbox_pending``: replicas' relays take turns) — ``bound``
   says which limit it hit: ``in_flight`` (a chain service at its limit most of the burst, the machine below 85 %
   busy) or ``cpu``.

    .venv/bin/python bench/bench_chains.py [--visits 200] [--latency-visits 10] [--latency-burst 120]
                                           [--in-flight 2] [--relaxed] [--phases bare,burst,unloaded,latency]
                                           [--profile DIR]

Written to bench/results/chains.json (``--relaxed``: PostgreSQL without fsync, to bench/results/chains-relaxed.json).
A run of only some ``--phases`` (work on the bridge: e.g. ``--phases burst``) is printed, never written there;
``--profile DIR`` records each chain worker with py-spy during the bursts (DIR/<worker>-<phase>.svg; py-spy from PyPI).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import itertools
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock

RESULTS = Path(__file__).resolve().parent / "results"
BRIDGE_CODE = "H44010600001"  # the bridge's institution
CODE = "H44010600009"  # the bare loop's: a second institution on the simulator, so its msgids never meet the bridge's
CALL = "/fsi/api/rsfComIfsService/callService"
SEED = 7  # of the simulator's persons and of the generated visits
POPULATION = 600  # people the bursts draw from; the unloaded visits use the ones after them
DAY = _dt.date(2026, 11, 20)  # each burst its own day (its own visit ids); the unloaded visits the days before
SWEEP = (1, 2, 4, 8, 16, 32)
LATENCY = "150-300"  # ms, uniform: the platform's own time per call in the latency phase
_serial = itertools.count()
ALL_PHASES = "bare,burst,unloaded,latency"
WARM_UP = 12  # visits settled (not measured) before each burst of the latency phase


# --- the bare loop --------------------------------------------------------------------------------------------------

def _dumps(obj: Any) -> str:
    """JSON with Decimals as exact number text (never through float)."""

    def default(v: Any) -> Any:
        if isinstance(v, Decimal):
            return f"__decimal__{v}__"
        raise TypeError(type(v).__name__)

    return re.sub(r'"__decimal__([-0-9.]+)__"', r"\1", json.dumps(obj, ensure_ascii=False, default=default))


def envelope(infno: str, payload: dict[str, Any], sign_no: str, insuplc: str = "") -> str:
    now = clock.now()
    return _dumps({"infno": infno, "msgid": f"{CODE}{now:%Y%m%d%H%M%S}{next(_serial) % 10000:04d}",
                   "mdtrtarea_admvs": "440100", "insuplc_admdvs": insuplc, "recer_sys_code": "FSI_LOCAL",
                   "infver": "V1.0", "opter_type": "1", "opter": "OP01", "opter_name": "bench",
                   "inf_time": clock.format_datetime(now), "fixmedins_code": CODE, "fixmedins_name": "bench",
                   "sign_no": sign_no, "input": payload})


async def post(client: httpx.AsyncClient, body: str) -> dict[str, Any]:
    reply = await client.post(CALL, content=body.encode(), headers={"content-type": "application/json"})
    data = reply.json()
    if str(data.get("infcode")) != "0":
        raise RuntimeError(f"bare loop refused: {data.get('err_msg')}")
    return data.get("output") or {}


async def bare_chain(client: httpx.AsyncClient, sign_no: str, person: dict[str, Any]) -> float:
    started = time.perf_counter()
    ins = person["insuplc_admdvs"]
    out = await post(client, envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"]}},
                                      sign_no))
    psn_no = out["baseinfo"]["psn_no"]
    insutype = person["insutype"]
    out = await post(client, envelope("2201", {"data": {
        "psn_no": psn_no, "insutype": insutype, "begntime": "2026-11-20 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person["certno"], "ipt_otp_no": "B" + secrets.token_hex(6), "atddr_no": "D1",
        "dr_name": "医生", "dept_code": "K1", "dept_name": "内科", "caty": "A03"}}, sign_no, ins))
    mdtrt_id = out["data"]["mdtrt_id"]
    await post(client, envelope("2203", {
        "mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11", "begntime": "2026-11-20 09:00:00",
                      "dise_codg": "J00", "dise_name": "感冒"},
        "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00", "diag_name": "感冒",
                      "diag_dept": "内科", "dise_dor_no": "D1", "dise_dor_name": "医生",
                      "diag_time": "2026-11-20 09:05:00", "vali_flag": "1"}]}, sign_no, ins))
    lines = [{"feedetl_sn": f"F{i}", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rx_circ_flag": "0",
              "fee_ocur_time": "2026-11-20 09:10:00", "med_list_codg": "XA01", "medins_list_codg": "HXA01",
              "det_item_fee_sumamt": Decimal("25.00"), "cnt": Decimal("1"), "pric": Decimal("25"),
              "bilg_dept_codg": "K1", "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生",
              "hosp_appr_flag": "1"} for i in range(5)]
    await post(client, envelope("2204", {"feedetail": lines}, sign_no, ins))
    data = {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "med_type": "11",
            "medfee_sumamt": Decimal("125.00"), "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1",
            "acct_used_flag": "0", "insutype": insutype}
    await post(client, envelope("2206", {"data": data}, sign_no, ins))
    await post(client, envelope("2207", {"data": {**data, "fulamt_ownpay_amt": Decimal("0"),
                                                  "overlmt_selfpay": Decimal("0"), "preselfpay_amt": Decimal("0"),
                                                  "inscp_scp_amt": Decimal("125.00")}}, sign_no, ins))
    return time.perf_counter() - started


class Bare:
    """The bare loop against one simulator: signed in once, people from the admin API."""

    def __init__(self, sim_url: str, admin_url: str) -> None:
        self.sim_url, self.admin_url = sim_url, admin_url
        self.people: list[dict[str, Any]] = []
        self.sign_no = ""

    async def __aenter__(self) -> Bare:
        self.client = httpx.AsyncClient(base_url=self.sim_url, timeout=60,
                                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        sign = await post(self.client, envelope("9001", {"signIn": {"opter_no": "OP01", "mac": "", "ip": "127.0.0.1"}},
                                                ""))
        self.sign_no = sign["signinoutb"]["sign_no"]
        self.people = [p for p in httpx.get(f"{self.admin_url}/admin/persons?limit=2000").json()
                       if p["insuplc_admdvs"].startswith("44")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def ceiling(self, seconds: float = 3.0, callers: int = 8) -> float:
        query = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": self.people[0]["certno"]}}
        done = 0
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await post(self.client, envelope("1101", query, self.sign_no))
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return done / (time.perf_counter() - start)

    async def run(self, concurrency: int, chains: int) -> tuple[float, list[float]]:
        """``chains`` chains, ``concurrency`` at a time: (chains/s, latencies)."""
        queue = [self.people[i % len(self.people)] for i in range(chains)]
        latencies: list[float] = []
        start = time.perf_counter()

        async def chainer() -> None:
            while queue:
                latencies.append(await bare_chain(self.client, self.sign_no, queue.pop()))

        await asyncio.gather(*(chainer() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), latencies


# --- measuring the bridge -------------------------------------------------------------------------------------------

def _pct(values: list[float], q: float) -> float | None:
    """Percentile of the values: the median for q=0.5, else nearest rank; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return statistics.median(ordered) if q == 0.5 else ordered[min(len(ordered), math.ceil(q * len(ordered))) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _p50_p99(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": _ms(_pct(values, 0.5)), "p99_ms": _ms(_pct(values, 0.99))}


def _cpu_by_process(bridge: Any, folders: list[str]) -> dict[str, float]:
    """CPU seconds (user + system) spent so far by each process of this run: the bridge's workers and simulator, and
    the broker and PostgreSQL of its stack (found by the stack's work folder, PostgreSQL's backends by their parent)
    — never another run's processes on the same machine."""
    tick = os.sysconf("SC_CLK_TCK")
    named = {h.proc.pid: "worker:" + n.split("#")[0] for n, h in bridge.workers.items() if h.proc is not None}
    if bridge.simulator is not None and bridge.simulator.proc is not None:
        named[bridge.simulator.proc.pid] = "simulator"
    named[os.getpid()] = "bench"
    stats: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / tick)
    ours = [f for f in folders if f]
    postmasters = {pid for pid, (_, cmd, _) in stats.items()
                   if "postgres" in cmd and any(f in cmd for f in ours)}
    for pid, (ppid, cmd, _) in stats.items():
        if "kafka.Kafka" in cmd and any(f in cmd for f in ours):
            named[pid] = "kafka"
        elif pid in postmasters or ppid in postmasters:
            named[pid] = "postgresql"
    out: dict[str, float] = defaultdict(float)
    for pid, name in named.items():
        if pid in stats:
            out[name] += stats[pid][2]
    return dict(out)


def _commits(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if database_url.startswith("postgresql://") else database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT sum(xact_commit) FROM pg_stat_database")).scalar() or 0)
    finally:
        engine.dispose()


def _metric_sum(bridge: Any, name: str, **labels: str) -> float:
    """The sum of a counter over every chain worker's /metrics (optionally only samples with these labels)."""
    total = 0.0
    for handle in bridge.workers.values():
        try:
            text = httpx.get(f"{handle.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _calls(bridge: Any) -> int:
    counters = bridge.admin("counters")
    calls = counters.get("calls", {})
    return int(sum(calls.values()) if isinstance(calls, dict) else calls)


def _stamp(results: list[Any], kind: str | None = None) -> float | None:
    stamps = [r.__dict__["_ts"] for r in results if kind is None or r.kind == kind]
    return min(stamps) if stamps else None


class Counters:
    """What a phase spent: platform calls, commits, engine transactions, CPU by process."""

    #: the folders of this run's broker and database (set by run())
    folders: list[str] = []

    def __init__(self, bridge: Any, database_url: str) -> None:
        self.bridge, self.url = bridge, database_url
        self.calls, self.commits = _calls(bridge), _commits(database_url)
        self.engine_tx = _metric_sum(bridge, "yibao_chain_transactions_total")
        self.cpu = _cpu_by_process(bridge, Counters.folders)

    def since(self, settled: int) -> dict[str, Any]:
        calls = _calls(self.bridge) - self.calls
        commits = _commits(self.url) - self.commits
        engine_tx = _metric_sum(self.bridge, "yibao_chain_transactions_total") - self.engine_tx
        cpu = _cpu_by_process(self.bridge, Counters.folders)
        per_chain = {k: round((v - self.cpu.get(k, 0.0)) * 1000 / max(1, settled), 1) for k, v in cpu.items()
                     if v - self.cpu.get(k, 0.0) > 0.005}
        return {"platform_calls": calls, "calls_per_chain": round(calls / max(1, settled), 2),
                "pg_commits": commits, "pg_commits_per_platform_call": round(commits / max(1, calls), 2),
                "engine_transactions": int(engine_tx),
                "engine_transactions_per_platform_call": round(engine_tx / max(1, calls), 2),
                "cpu_ms_per_settled_chain": dict(sorted(per_chain.items()))}


# --- phases -----------------------------------------------------------------------------------------------------------

#: set by main(): a folder for py-spy flame graphs of the workers during each burst (None: no profiling)
PROFILE: Path | None = None
#: a burst waits this long for every HIS request's answer; one that runs out keeps the run's folder (worker logs)
BURST_TIMEOUT_S = 900.0
KEEP_WORKDIR = False


def _profilers(bridge: Any, phase: str) -> list[Any]:
    """py-spy recording each worker (until stopped with SIGINT), when --profile was given."""
    if PROFILE is None:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    PROFILE.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, handle in bridge.workers.items():
        if handle.proc is None:
            continue
        out = PROFILE / f"{name.replace('#', '-')}-{phase}"
        procs.append(subprocess.Popen([spy, "record", "--pid", str(handle.proc.pid), "--rate", "200", "--nonblocking", "--gil",
                                       "-o", f"{out}.txt", "--format", "raw"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # py-spy attaches
    return procs


def _stop_profilers(procs: list[Any]) -> None:
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        p.wait(timeout=60)


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far, every process's (``/proc/stat``)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return total - fields[3] - fields[4], total


def _gauges(url: str, names: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=2).text.splitlines():
        for name in names:
            if line.startswith(name + "{"):
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


class Sampler:
    """What bounded a burst: the machine's CPU (every process on it, busy fraction of all its cores) and, per chain
    worker, how full its in-flight limit was (``yibao_chain_in_flight`` over ``yibao_chain_in_flight_limit``),
    sampled every ``period`` seconds in a thread while the burst runs."""

    WORKERS = ("registration", "settlement")

    def __init__(self, bridge: Any, period: float = 1.0) -> None:
        self.bridge, self.period = bridge, period
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.pending: dict[str, list[float]] = defaultdict(list)  #: the relay's backlog (outbox rows unpublished)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self.cpu0, self.calls0 = _machine_cpu(), self._calls()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.cpu1 = _machine_cpu()

    def _chain_workers(self) -> list[tuple[str, Any]]:
        return [(n, h) for n, h in list(self.bridge.workers.items()) if n.split("#")[0] in self.WORKERS]

    def _calls(self) -> dict[str, float]:
        out = {}
        for name, handle in self._chain_workers():
            try:
                out[name] = _metric_sum_one(handle.url, "yibao_chain_calls_total")
            except httpx.HTTPError:
                pass
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for name, handle in self._chain_workers():
                try:
                    g = _gauges(handle.url, ("yibao_chain_in_flight", "yibao_chain_in_flight_limit",
                                             "yibao_outbox_pending"))
                except httpx.HTTPError:
                    continue
                if g.get("yibao_chain_in_flight_limit"):
                    self.samples[name].append((g.get("yibao_chain_in_flight", 0.0), g["yibao_chain_in_flight_limit"]))
                    self.pending[name].append(g.get("yibao_outbox_pending", 0.0))

    def report(self, *, settled: int, seconds: float, cpu_ms_per_chain: dict[str, float]) -> dict[str, Any]:
        busy = (self.cpu1[0] - self.cpu0[0]) / max(1.0, self.cpu1[1] - self.cpu0[1])
        cpus = os.cpu_count() or 1
        bridge_cores = sum(cpu_ms_per_chain.values()) * settled / 1000 / max(0.001, seconds)
        calls1 = self._calls()
        in_flight = {}
        for name, rows in sorted(self.samples.items()):
            # the burst's steady part: from the first sample with work to the last (not the fill and the drain)
            busy_rows = [i for i, (n, _) in enumerate(rows) if n > 0]
            steady = rows[busy_rows[0]:busy_rows[-1] + 1] if busy_rows else []
            in_flight[name] = {
                "limit": int(rows[0][1]), "samples": len(steady),
                "mean_in_flight": round(statistics.fmean(n for n, _ in steady), 2) if steady else 0.0,
                "share_of_samples_at_limit": round(sum(1 for n, lim in steady if n >= lim) / len(steady), 2)
                if steady else 0.0,
                "platform_calls": int(calls1.get(name, 0) - self.calls0.get(name, 0)),
                "outbox_pending_max": int(max(self.pending[name], default=0))}
        at_limit = max((v["share_of_samples_at_limit"] for v in in_flight.values()), default=0.0)
        # in-flight work is the bound when a chain service sat at its limit most of the burst while the machine had
        # CPU to spare; CPU is when the machine was (nearly) saturated
        bound = "cpu" if busy >= 0.85 else ("in_flight" if at_limit >= 0.6 else "neither (waiting elsewhere)")
        return {"bound": bound, "machine_cpu_busy": round(busy, 3), "machine_cpus": cpus,
                "bridge_cpu_cores": round(bridge_cores, 2), "in_flight": in_flight}


def _metric_sum_one(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def burst(bridge: Any, ingestor: Any, info: Any, visits: int, day: _dt.date, phase: str = "burst",
          *, sample: bool = False) -> dict[str, Any]:
    """Every visit's change events produced at once: throughput."""
    from yibao.cli.demo import _produce, _requests, _wait_for_answers
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day

    messages = generate_day(SEED, day=day, outpatients=visits, inpatients=0, population_size=POPULATION,
                            shape=CdcShape(decimal_mode="string"), plain=True)
    requests = _requests(ingestor, messages)
    profilers = _profilers(bridge, phase)
    counters = Counters(bridge, info.database_url)
    sampler = Sampler(bridge) if sample else None
    if sampler is not None:
        sampler.__enter__()
    started = time.monotonic()
    try:
        asyncio.run(_produce(info.kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages]))
        results, elapsed = asyncio.run(_wait_for_answers(info.kafka_bootstrap, requests, started, BURST_TIMEOUT_S,
                                                              quiet=True))
    finally:
        if sampler is not None:
            sampler.__exit__()
        _stop_profilers(profilers)
    mine = {visit for pairs in requests.values() for visit, _ in pairs}
    settled = sum(1 for r in results if r.kind == "settled" and r.his_visit_id in mine)
    answered = {r.his_visit_id for r in results if r.his_visit_id in mine}
    out = {"visits": visits, "settled": settled, "seconds": round(elapsed, 2),
           "chains_per_s": round(settled / elapsed, 2), **counters.since(settled)}
    if sampler is not None:
        out["what_bounded_it"] = sampler.report(settled=settled, seconds=elapsed,
                                                cpu_ms_per_chain=out["cpu_ms_per_settled_chain"])
    if elapsed >= BURST_TIMEOUT_S - 1:  # not every request was answered: a fault of the bridge, not a figure
        global KEEP_WORKDIR
        KEEP_WORKDIR = True
        out["timed_out"] = {"after_s": BURST_TIMEOUT_S, "visits_without_any_answer": sorted(mine - answered)[:20]}
        print(f"  {phase}: not every HIS request answered within {BURST_TIMEOUT_S:.0f}s — the workers' logs are kept",
              flush=True)
    return out


async def unloaded(bridge: Any, ingestor: Any, info: Any, count: int) -> dict[str, Any]:
    """``count`` visits one at a time: the chain's latency and its parts when nothing queues."""
    from aiokafka import AIOKafkaProducer
    from sqlalchemy import create_engine

    from yibao.cli.demo import _requests, _wait_for_answers
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.fakedata.people import population

    db = create_engine(info.database_url)
    chain, entry, handoff, exit_, added = [], [], [], [], []
    entry_parts: list[tuple[float, ...]] = []
    producer = AIOKafkaProducer(bootstrap_servers=info.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, person in enumerate(population(SEED, POPULATION + count)[POPULATION:]):
            messages = generate_day(SEED, day=DAY - _dt.timedelta(days=i + 1), outpatients=1, inpatients=0,
                                    people=[person], shape=CdcShape(decimal_mode="string"), plain=True)
            requests = _requests(ingestor, messages)
            visits = {visit for pairs in requests.values() for visit, _ in pairs}
            produced = time.time()
            await asyncio.gather(*[await producer.send(m.topic, value=m.value, key=m.key) for m in messages])
            results, _ = await _wait_for_answers(info.kafka_bootstrap, requests, time.monotonic(), 60, quiet=True)
            mine = [r for r in results if r.his_visit_id in visits]
            settled = _stamp(mine, "settled")
            if settled is None:  # a rare path (self-pay, cancelled, refused): no chain to time
                continue
            chain.append(settled - produced)
            event_ids = [f"his:{e.event_id}" for m in messages if m.value is not None
                         for e in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events]
            parts = _parts(db, visits, event_ids, produced, settled)
            for bucket, value in zip((entry, handoff, exit_), parts[:3]):
                if value is not None:
                    bucket.append(value)
            added.extend(parts[3])
            if parts[4] is not None:
                entry_parts.append(parts[4])
    finally:
        await producer.stop()
        db.dispose()
    return {"visits": count, "settled": len(chain), "chain": _p50_p99(chain), "entry_hop": _p50_p99(entry),
            "handoff": _p50_p99(handoff), "exit_hop": _p50_p99(exit_), "added_per_platform_call": _p50_p99(added),
            "entry_hop_parts": {name: _p50_p99([p[i] for p in entry_parts]) for i, name in enumerate(
                ("cdc produced → ingest absorbed", "ingest absorbed → handed on (outbox row)",
                 "handed on → published by ingest's relay", "published → registration absorbed"))}}


def _parts(db: Any, visits: set[str], event_ids: list[str], produced: float, settled_ts: float
           ) -> tuple[float | None, float | None, float | None, list[float], tuple[float, ...] | None]:
    """One visit's entry hop, handoff, exit hop (seconds), the gaps between its calls, and the entry hop's four
    parts (None when a stamp is missing)."""
    from sqlalchemy import and_, select

    from yibao.core.db.schema import inbox, outbox, platform_calls

    since = _dt.datetime.fromtimestamp(produced, tz=clock.SHANGHAI) - _dt.timedelta(seconds=1)
    with db.connect() as conn:
        first_in = conn.execute(select(inbox.c.received_at).where(and_(
            inbox.c.consumer == "registration", inbox.c.event_id.in_(event_ids)))
            .order_by(inbox.c.received_at).limit(1)).scalar()
        raw_ids = [e.removeprefix("his:") for e in event_ids]
        ingested = conn.execute(select(inbox.c.received_at).where(and_(
            inbox.c.consumer.like("%ingest"), inbox.c.event_id.in_(raw_ids)))
            .order_by(inbox.c.received_at).limit(1)).scalar()
        handed = conn.execute(select(outbox.c.created_at, outbox.c.published_at).where(and_(
            outbox.c.producer.like("%ingest"), outbox.c.created_at >= since, outbox.c.msg_key.in_(visits)))
            .order_by(outbox.c.id).limit(1)).first()
        facts = conn.execute(select(outbox.c.created_at, outbox.c.headers).where(and_(
            outbox.c.producer == "registration", outbox.c.topic.like("%visits%"), outbox.c.created_at >= since,
            outbox.c.msg_key.in_(visits))).order_by(outbox.c.id)).all()
        handoff = None
        if facts:
            written, headers = facts[0]
            message_id = json.loads(headers or "{}").get("message_id")
            absorbed = conn.execute(select(inbox.c.received_at).where(
                inbox.c.consumer == "settlement", inbox.c.event_id == f"fact:{message_id}")).scalar()
            if absorbed is not None:
                handoff = (absorbed - written).total_seconds()
        result_written = conn.execute(select(outbox.c.created_at).where(and_(
            outbox.c.producer == "settlement", outbox.c.topic.like("%his.results%"), outbox.c.created_at >= since,
            outbox.c.msg_key.in_(visits), outbox.c.payload.like('%"kind":"settled"%'))).limit(1)).scalar()
        calls = conn.execute(select(platform_calls.c.service, platform_calls.c.started_at,
                                    platform_calls.c.duration_ms).where(
            platform_calls.c.visit_key.in_(visits), platform_calls.c.started_at >= since)
            .order_by(platform_calls.c.service, platform_calls.c.started_at)).all()
    entry = (first_in.timestamp() - produced) if first_in is not None else None
    entry_parts = None
    if entry is not None and ingested is not None and handed is not None and handed[1] is not None:
        marks = (produced, ingested.timestamp(), handed[0].timestamp(), handed[1].timestamp(), first_in.timestamp())
        entry_parts = tuple(later - earlier for earlier, later in zip(marks, marks[1:]))
    exit_ = (settled_ts - result_written.timestamp()) if result_written is not None else None
    gaps = []
    for _, rows in itertools.groupby(calls, key=lambda r: r.service):
        rows = list(rows)
        for prev, nxt in zip(rows, rows[1:]):
            if prev.duration_ms is not None:
                end = prev.started_at + _dt.timedelta(milliseconds=prev.duration_ms)
                gaps.append(max(0.0, (nxt.started_at - end).total_seconds()))
    return entry, handoff, exit_, gaps, entry_parts


async def _bare_at(bridge: Any, concurrency: int, chains: int) -> float:
    async with Bare(bridge.sim_url, bridge.admin_url) as bare:
        cps, _ = await bare.run(concurrency, chains)
    return cps


def with_latency(bridge: Any, ingestor: Any, info: Any, visits: int, in_flight: int) -> dict[str, Any]:
    """The platform answering after 150-300 ms: in-flight work is the limit."""
    bridge.set_faults([f"*:latency:1:{LATENCY}"])
    limits = {"YIBAO_REGISTRATION_CHAIN_CONCURRENCY": str(in_flight),
              "YIBAO_SETTLEMENT_CHAIN_CONCURRENCY": str(in_flight)}
    bridge.extra_env.update(limits)
    for name in ("registration", "settlement"):
        bridge.restart_worker(name)
    in_flight_total = 2 * in_flight  # as many visits as the two chain services can have at the platform at once
    bare_cps = asyncio.run(_bare_at(bridge, in_flight_total, max(24, 3 * in_flight_total)))
    # each measured burst runs on workers that have settled a few chains already (signed in, partitions assigned:
    # a replica started just before would otherwise measure the consumer group's rebalance, not its capacity)
    burst(bridge, ingestor, info, WARM_UP, DAY + _dt.timedelta(days=3), "latency-warm-up")
    one = burst(bridge, ingestor, info, visits, DAY + _dt.timedelta(days=1), "latency-one", sample=True)
    for name in ("registration#2", "settlement#2"):
        bridge.start_worker(name)
    burst(bridge, ingestor, info, WARM_UP, DAY + _dt.timedelta(days=4), "latency-warm-up-two")
    two = burst(bridge, ingestor, info, visits, DAY + _dt.timedelta(days=2), "latency-two", sample=True)
    bridge.set_faults([])
    return {"platform_latency_ms": LATENCY, "in_flight_per_worker": in_flight,
            "bare_concurrency": in_flight_total, "bare_chains_per_s": round(bare_cps, 2),
            "one_replica": one, "two_replicas": two}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from yibao.core.db.migrations import upgrade
    from yibao.core.kafka import create_topics
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack import start_stack
    from yibao.stack.bridge import LocalBridge

    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-"))
    stack = start_stack(prefer="real", workdir=workdir, durable_database=not args.relaxed)
    bridge = None
    try:
        info = stack.info
        server = getattr(stack, "postgres_server", None)
        Counters.folders = [str(workdir), str(getattr(server, "workdir", "") or "")]
        upgrade(info.database_url)
        mapping = load_mapping("example-oracle-his")
        asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in mapping.topics()]))
        bridge = LocalBridge(info, workdir, sim_seed=SEED, sim_population=POPULATION + args.latency_visits,
                             env={"YIBAO_SIM_FIXMEDINS_CODES": json.dumps([BRIDGE_CODE, CODE])})
        bridge.start()  # assigned first: workers started before one failed to get ready are stopped below
        ingestor = Ingestor(mapping)
        out: dict[str, Any] = {"stack": {"broker": info.kafka_kind, "database": info.database_kind,
                                         "database_detail": info.database_detail}}

        async def bare_phase() -> dict[str, Any]:
            async with Bare(bridge.sim_url, bridge.admin_url) as bare:
                ceiling = await bare.ceiling()
                sweep = {}
                for c in SWEEP:
                    cps, _ = await bare.run(c, max(30, 6 * c))
                    sweep[str(c)] = round(cps, 2)
                serial = [await bare_chain(bare.client, bare.sign_no, p) for p in bare.people[:10]]
            return {"ceiling_calls_per_s": round(ceiling, 1), "bare_sweep_chains_per_s": sweep,
                    "bare_best_chains_per_s": max(sweep.values()),
                    "bare_best_concurrency": int(max(sweep, key=lambda k: sweep[k])),
                    "bare_serial_chain_p50_ms": _ms(_pct(serial, 0.5))}

        phases = set(args.phases.split(","))
        if "bare" in phases:
            out.update(asyncio.run(bare_phase()))
            bridge.admin("reset", method="POST")
        if "burst" in phases:
            out["burst"] = burst(bridge, ingestor, info, args.visits, DAY)
        if "unloaded" in phases:
            out["unloaded"] = asyncio.run(unloaded(bridge, ingestor, info, args.latency_visits))
        if "latency" in phases:
            out["with_platform_latency"] = with_latency(bridge, ingestor, info, args.latency_burst, args.in_flight)
        return out
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()
        if KEEP_WORKDIR:
            print(f"a burst timed out: the stack's and the workers' logs are in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def ratios(m: dict[str, Any]) -> dict[str, Any]:
    lat = m["with_platform_latency"]
    one, two = lat["one_replica"]["chains_per_s"], lat["two_replicas"]["chains_per_s"]
    return {
        "burst_chains_per_s / bare_best_chains_per_s": round(m["burst"]["chains_per_s"] / m["bare_best_chains_per_s"], 3),
        "burst platform calls/s / ceiling_calls_per_s": round(
            m["burst"]["platform_calls"] / m["burst"]["seconds"] / m["ceiling_calls_per_s"], 3),
        "latency: one replica chains/s / bare loop chains/s (same in flight)": round(one / lat["bare_chains_per_s"], 3),
        "latency: two replicas chains/s / one replica chains/s": round(two / max(0.01, one), 3),
        "latency: what bounded one replica / two replicas": "{} / {}".format(
            lat["one_replica"].get("what_bounded_it", {}).get("bound"),
            lat["two_replicas"].get("what_bounded_it", {}).get("bound")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=200, help="visits of the CPU-bound burst")
    parser.add_argument("--latency-visits", type=int, default=10, help="visits run one at a time (latency)")
    parser.add_argument("--latency-burst", type=int, default=120, help="visits of each burst with platform latency")
    parser.add_argument("--in-flight", type=int, default=2,
                        help="chain_concurrency of each chain worker in the latency phase (small enough that in-flight "
                             "work, not CPU, bounds one replica)")
    parser.add_argument("--burst-timeout", type=float, default=BURST_TIMEOUT_S,
                        help="seconds a burst waits for every answer; one that runs out keeps the logs")
    parser.add_argument("--relaxed", action="store_true", help="PostgreSQL without fsync (a second line, not the figure)")
    parser.add_argument("--phases", default=ALL_PHASES,
                        help=f"comma-separated phases to run (default: all, {ALL_PHASES}); a partial run is not written")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the workers with py-spy during each burst, raw stacks into this folder")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    m = run(args)
    report = {"when": clock.format_datetime(clock.now()), "python": platform.python_version(),
              "machine": f"{platform.system()} {platform.machine()}", "cpus": os.cpu_count(), **m}
    if set(args.phases.split(",")) != set(ALL_PHASES.split(",")):
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    m["ratios"] = report["ratios"] = ratios(m)
    path = RESULTS / ("chains-relaxed.json" if args.relaxed else "chains.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
