"""Chains per second and the latency the bridge adds to each platform call.

Three measurements against the same platform simulator (one `yibao sim` process):

1. **ceiling** — the simulator answering 1101 to a trivial httpx loop (8 concurrent callers): the most calls per
   second this machine's simulator gives anyone;
2. **bare loop** — the same outpatient chain the bridge runs (1101 → 2201 → 2203 → 2204 → 2206 → 2207), sent by
   a plain httpx loop with hand-built envelopes: no validation, no signing, no journal, no Kafka, no database;
3. **bridge** — a generated HIS day of outpatient visits through the real path: Debezium events → ingest →
   registration → settlement (real processes, the stack of this machine), until every settlement is answered.

Reported as ratios: the bridge's platform calls per second over the ceiling, its chains per second over the bare
loop's (same concurrency), and the latency added per platform call. Written to bench/results/chains.json.

    .venv/bin/python bench/bench_chains.py [--visits 150] [--prefer real|embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import itertools
import json
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


async def ceiling_and_bare(sim_url: str, admin_url: str, visits: int, concurrency: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim_url, timeout=30) as client:
        sign = await post(client, envelope("9001", {"signIn": {"opter_no": "OP01", "mac": "", "ip": "127.0.0.1"}}, ""))
        sign_no = sign["signinoutb"]["sign_no"]
        persons = [p for p in httpx.get(f"{admin_url}/admin/persons?limit=500").json()
                   if p["insuplc_admdvs"].startswith("44")][:visits]
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
        queue = list(persons)
        start = time.perf_counter()

        async def chainer() -> None:
            while queue:
                latencies.append(await bare_chain(client, sign_no, queue.pop()))

        await asyncio.gather(*(chainer() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"ceiling_calls_per_s": round(ceiling, 1), "bare_chains": len(latencies),
            "bare_chains_per_s": round(len(latencies) / elapsed, 2),
            "bare_chain_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "bare_call_ms": round(statistics.median(latencies) * 1000 / 6, 2)}


def bridge_run(prefer: str, visits: int) -> dict[str, Any]:
    from yibao.cli.demo import _produce, _requests, _wait_for_answers
    from yibao.core.db.migrations import upgrade
    from yibao.core.kafka import create_topics
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
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
        bridge = LocalBridge(info, workdir, sim_seed=7).start()
        measured = asyncio.run(ceiling_and_bare(bridge.sim_url, bridge.admin_url, 40, 8))
        bridge.admin("reset", method="POST")
        calls_before = _calls(bridge)
        messages = generate_day(7, day=_dt.date(2026, 11, 20), outpatients=visits, inpatients=0,
                                shape=CdcShape(decimal_mode="string"))
        requests = _requests(Ingestor(mapping), messages)
        started = time.monotonic()
        asyncio.run(_produce(info.kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages]))
        results, elapsed = asyncio.run(_wait_for_answers(info.kafka_bootstrap, requests, started, 900))
        calls = _calls(bridge) - calls_before
        settled = [r for r in results if r.kind == "settled"]
        by_visit: dict[str, list[Any]] = {}
        for r in results:
            by_visit.setdefault(r.his_visit_id, []).append(r)
        latency = sorted(max(0.0, [x for x in rs if x.kind == "settled"][0].__dict__["_ts"] - rs[0].__dict__["_ts"])
                         for rs in by_visit.values() if any(x.kind == "settled" for x in rs))
        chain_calls = calls / max(1, len(settled))
        p50 = statistics.median(latency) if latency else 0.0
        measured.update({
            "stack": {"broker": info.kafka_kind, "database": info.database_kind},
            "bridge_visits": visits, "bridge_settled": len(settled), "bridge_seconds": round(elapsed, 2),
            "bridge_chains_per_s": round(len(settled) / elapsed, 2),
            "bridge_platform_calls": calls, "bridge_calls_per_chain": round(chain_calls, 1),
            "bridge_calls_per_s": round(calls / elapsed, 1),
            "bridge_chain_p50_ms": round(p50 * 1000, 1),
            "bridge_chain_p99_ms": round(latency[min(len(latency) - 1, int(len(latency) * 0.99))] * 1000, 1)
            if latency else None,
        })
        return measured
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _calls(bridge: Any) -> int:
    counters = bridge.admin("counters")
    calls = counters.get("calls", {})
    return int(sum(calls.values()) if isinstance(calls, dict) else calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=150)
    parser.add_argument("--prefer", choices=["real", "embedded"], default="real")
    args = parser.parse_args()
    m = bridge_run(args.prefer, args.visits)
    m["ratios"] = {
        "bridge_calls_per_s_over_ceiling": round(m["bridge_calls_per_s"] / m["ceiling_calls_per_s"], 3),
        "bridge_chains_per_s_over_bare": round(m["bridge_chains_per_s"] / m["bare_chains_per_s"], 3),
        "added_ms_per_platform_call": round((m["bridge_chain_p50_ms"] - m["bare_chain_p50_ms"])
                                            / max(1.0, m["bridge_calls_per_chain"]), 2),
    }
    report = {"when": clock.format_datetime(clock.now()), "python": platform.python_version(),
              "machine": f"{platform.system()} {platform.machine()}", "cpus": __import__("os").cpu_count(), **m}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
