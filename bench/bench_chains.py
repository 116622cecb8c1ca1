"""Chains per second, and the latency the bridge adds to each platform call.

All against the same platform simulator (one `yibao sim` process):

1. **ceiling** — the simulator answering 1101 to a trivial httpx loop (8 concurrent callers): the most calls per
   second this machine's simulator gives anyone (``ceiling_calls_per_s``);
2. **bare loop** — the same outpatient chain the bridge runs (1101 → 2201 → 2203 → 2204 → 2206 → 2207), sent by
   a plain httpx loop with hand-built envelopes: no validation, no signing, no journal, no Kafka, no database.
   Run at concurrency 8 for throughput (``bare_chains_per_s``), then one chain at a time for the latency of a
   chain that waits behind nothing (``bare_serial_chain_p50_ms``);
3. **burst** (throughput) — a generated HIS day of ``--visits`` outpatient visits through the real path
   (Debezium events → ingest → registration → settlement; real processes, the stack of this machine), every
   change event produced at once, until every request is answered: ``burst_chains_per_s``,
   ``burst_calls_per_s``. ``burst_chain_p50_ms`` / ``_p99_ms`` (a visit's first answer → its settlement answer)
   are mostly time spent queueing behind the rest of the burst: a figure of the backlog, not of the bridge's
   latency;
4. **unloaded** (latency) — then ``--latency-visits`` more visits (other patients, each on its own date) one at
   a time: one visit's change events produced, its answers awaited, then the next. Over the visits that settled:
   ``unloaded_chain_p50_ms`` / ``_p99_ms`` from producing the visit's events to its settlement answer (Kafka
   timestamp), ``unloaded_first_to_settled_p50_ms`` from its first answer to its settlement answer (as
   ``yibao demo`` reports), ``unloaded_calls_per_chain`` from the simulator's call counters.

Ratios: the burst's platform calls per second over the ceiling, its chains per second over the bare loop's (same
concurrency), and ``added_ms_per_platform_call`` = (unloaded chain p50 − bare serial chain p50) / unloaded calls
per chain: what the bridge (Kafka hops, ingest, journal, database, validation, signing) adds per platform call
when nothing queues. Written to bench/results/chains.json.

    .venv/bin/python bench/bench_chains.py [--visits 150] [--latency-visits 10] [--prefer real|embedded]
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
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock

RESULTS = Path(__file__).resolve().parent / "results" / "chains.json"
CODE = "H44010600001"
CALL = "/fsi/api/rsfComIfsService/callService"
_serial = itertools.count()
SEED = 7  # of the simulator's persons and of the generated visits
POPULATION = 500  # people the burst draws from; the unloaded visits use the ones after them
BURST_DAY = _dt.date(2026, 11, 20)  # the unloaded visits take the days before, one each


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


async def ceiling_and_bare(sim_url: str, admin_url: str, chains: int, concurrency: int,
                           serial_chains: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim_url, timeout=30) as client:
        sign = await post(client, envelope("9001", {"signIn": {"opter_no": "OP01", "mac": "", "ip": "127.0.0.1"}}, ""))
        sign_no = sign["signinoutb"]["sign_no"]
        persons = [p for p in httpx.get(f"{admin_url}/admin/persons?limit=500").json()
                   if p["insuplc_admdvs"].startswith("44")][:chains + serial_chains]
        body = lambda p=persons[0]: envelope("1101", {"data": {"mdtrt_cert_type": "02",  # noqa: E731
                                                               "mdtrt_cert_no": p["certno"]}}, sign_no)
        done = 0
        deadline = time.perf_counter() + 3

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await post(client, body())
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(8)))
        ceiling = done / (time.perf_counter() - start)

        latencies: list[float] = []
        queue = persons[:chains]
        start = time.perf_counter()

        async def chainer() -> None:
            while queue:
                latencies.append(await bare_chain(client, sign_no, queue.pop()))

        await asyncio.gather(*(chainer() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        serial = sorted([await bare_chain(client, sign_no, p) for p in persons[chains:]])
    return {"ceiling_calls_per_s": round(ceiling, 1), "bare_concurrency": concurrency, "bare_chains": len(latencies),
            "bare_chains_per_s": round(len(latencies) / elapsed, 2),
            "bare_chain_p50_ms": _ms(statistics.median(latencies)),
            "bare_serial_chains": len(serial), "bare_serial_chain_p50_ms": _ms(_pct(serial, 0.5)),
            "bare_serial_call_ms": round(statistics.median(serial) * 1000 / 6, 2)}


def bridge_run(prefer: str, visits: int, latency_visits: int) -> dict[str, Any]:
    from yibao.core.db.migrations import upgrade
    from yibao.core.kafka import create_topics
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack import start_stack
    from yibao.stack.bridge import LocalBridge

    workdir = Path(tempfile.mkdtemp(prefix="yibao-bench-"))
    stack = start_stack(prefer=prefer, workdir=workdir)
    bridge = None
    try:
        info = stack.info
        upgrade(info.database_url)
        mapping = load_mapping("example-oracle-his")
        asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in mapping.topics()]))
        # the burst's patients come from the first POPULATION people, the unloaded visits' from the ones after
        bridge = LocalBridge(info, workdir, sim_seed=SEED, sim_population=POPULATION + latency_visits).start()
        measured = asyncio.run(ceiling_and_bare(bridge.sim_url, bridge.admin_url, 40, 8, latency_visits))
        measured["stack"] = {"broker": info.kafka_kind, "database": info.database_kind}
        bridge.admin("reset", method="POST")
        ingestor = Ingestor(mapping)
        measured.update(burst(info.kafka_bootstrap, bridge, ingestor, visits))
        measured.update(asyncio.run(unloaded(info.kafka_bootstrap, bridge, ingestor, latency_visits)))
        return measured
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def burst(bootstrap: str, bridge: Any, ingestor: Any, visits: int) -> dict[str, Any]:
    """Every visit's change events produced at once: throughput (its latencies are mostly queueing)."""
    from yibao.cli.demo import _produce, _requests, _wait_for_answers
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day

    calls_before = _calls(bridge)
    messages = generate_day(SEED, day=BURST_DAY, outpatients=visits, inpatients=0, population_size=POPULATION,
                            shape=CdcShape(decimal_mode="string"))
    requests = _requests(ingestor, messages)
    started = time.monotonic()
    asyncio.run(_produce(bootstrap, [(m.topic, m.key, m.value) for m in messages]))
    results, elapsed = asyncio.run(_wait_for_answers(bootstrap, requests, started, 900))
    calls = _calls(bridge) - calls_before
    by_visit: dict[str, list[Any]] = {}
    for r in results:
        by_visit.setdefault(r.his_visit_id, []).append(r)
    latency = sorted(settled - _stamp(rs) for rs in by_visit.values()
                     if (settled := _stamp(rs, "settled")) is not None)
    return {"burst_visits": visits, "burst_settled": len(latency), "burst_seconds": round(elapsed, 2),
            "burst_chains_per_s": round(len(latency) / elapsed, 2), "burst_platform_calls": calls,
            "burst_calls_per_chain": round(calls / max(1, len(latency)), 1),
            "burst_calls_per_s": round(calls / elapsed, 1),
            "burst_chain_p50_ms": _ms(_pct(latency, 0.5)), "burst_chain_p99_ms": _ms(_pct(latency, 0.99))}


async def unloaded(bootstrap: str, bridge: Any, ingestor: Any, count: int) -> dict[str, Any]:
    """``count`` visits one at a time (each its own patient and date): a chain's latency when nothing queues."""
    from aiokafka import AIOKafkaProducer

    from yibao.cli.demo import _requests, _wait_for_answers
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.fakedata.people import population

    chain: list[float] = []
    first_to_settled: list[float] = []
    calls_before = _calls(bridge)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()  # started once, so that a visit's clock starts at its first send
    try:
        for i, person in enumerate(population(SEED, POPULATION + count)[POPULATION:]):
            messages = generate_day(SEED, day=BURST_DAY - _dt.timedelta(days=i + 1), outpatients=1, inpatients=0,
                                    people=[person], shape=CdcShape(decimal_mode="string"))
            requests = _requests(ingestor, messages)
            visits = {visit for pairs in requests.values() for visit, _ in pairs}
            produced = time.time()
            await asyncio.gather(*[await producer.send(m.topic, value=m.value, key=m.key) for m in messages])
            results, _ = await _wait_for_answers(bootstrap, requests, time.monotonic(), 60, quiet=True)
            mine = [r for r in results if r.his_visit_id in visits]
            settled = _stamp(mine, "settled")
            if settled is None:  # a rare path (self-pay, cancelled, refused): no chain to time
                print(f"  unloaded visit {', '.join(sorted(visits))} did not settle: {[r.kind for r in mine]}")
                continue
            chain.append(settled - produced)
            first_to_settled.append(settled - _stamp(mine))
    finally:
        await producer.stop()
    calls = _calls(bridge) - calls_before
    return {"unloaded_visits": count, "unloaded_settled": len(chain), "unloaded_platform_calls": calls,
            "unloaded_calls_per_chain": round(calls / max(1, len(chain)), 2),
            "unloaded_chain_p50_ms": _ms(_pct(sorted(chain), 0.5)),
            "unloaded_chain_p99_ms": _ms(_pct(sorted(chain), 0.99)),
            "unloaded_first_to_settled_p50_ms": _ms(_pct(sorted(first_to_settled), 0.5))}


def _stamp(results: list[Any], kind: str | None = None) -> float | None:
    """Kafka timestamp (seconds) of the earliest result (of ``kind``); None when there is none."""
    stamps = [r.__dict__["_ts"] for r in results if kind is None or r.kind == kind]
    return min(stamps) if stamps else None


def _pct(ordered: list[float], q: float) -> float | None:
    """Percentile of an ascending list: the median for q=0.5, else nearest rank; None when empty."""
    if not ordered:
        return None
    return statistics.median(ordered) if q == 0.5 else ordered[min(len(ordered), math.ceil(q * len(ordered))) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _calls(bridge: Any) -> int:
    counters = bridge.admin("counters")
    calls = counters.get("calls", {})
    return int(sum(calls.values()) if isinstance(calls, dict) else calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=150, help="visits of the burst (throughput)")
    parser.add_argument("--latency-visits", type=int, default=10, help="visits run one at a time (latency)")
    parser.add_argument("--prefer", choices=["real", "embedded"], default="real")
    args = parser.parse_args()
    m = bridge_run(args.prefer, args.visits, args.latency_visits)
    added = None
    if m["unloaded_chain_p50_ms"] is not None and m["unloaded_calls_per_chain"]:
        added = round((m["unloaded_chain_p50_ms"] - m["bare_serial_chain_p50_ms"]) / m["unloaded_calls_per_chain"], 2)
    m["ratios"] = {
        "burst_calls_per_s_over_ceiling": round(m["burst_calls_per_s"] / m["ceiling_calls_per_s"], 3),
        "burst_chains_per_s_over_bare": round(m["burst_chains_per_s"] / m["bare_chains_per_s"], 3),
        "added_ms_per_platform_call": added,
    }
    report = {"when": clock.format_datetime(clock.now()), "python": platform.python_version(),
              "machine": f"{platform.system()} {platform.machine()}", "cpus": os.cpu_count(), **m}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
