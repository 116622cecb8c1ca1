"""The simulator's ceiling: calls per second it answers on this machine with a trivial httpx client.

Run: ``.venv/bin/python bench/bench_simulator.py [--seconds 3] [--concurrency 8]``; prints and writes
bench/results/simulator.json. The bridge's throughput is quoted as a ratio of these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.settings import DEFAULT_FIXMEDINS_CODE as CODE

RESULTS = Path(__file__).resolve().parent / "results" / "simulator.json"
_serial = itertools.count()


def envelope(infno: str, payload: dict[str, Any], sign_no: str, insuplc: str = "") -> bytes:
    now = clock.now()
    env = {"infno": infno, "msgid": f"{CODE}{now:%Y%m%d%H%M%S}{next(_serial) % 10000:04d}", "mdtrtarea_admvs": "440100",
           "insuplc_admdvs": insuplc, "recer_sys_code": "FSI_LOCAL", "infver": "V1.0", "opter_type": "1",
           "opter": "OP01", "opter_name": "bench", "inf_time": clock.format_datetime(now), "fixmedins_code": CODE,
           "fixmedins_name": "bench", "sign_no": sign_no, "input": payload}
    return json.dumps(env, ensure_ascii=False).encode()


async def measure(name: str, seconds: float, concurrency: int, make: Any, client: httpx.AsyncClient, url: str) -> dict:
    done = 0
    failed = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            r = await client.post(url, content=make())
            if r.status_code == 200 and json.loads(r.content).get("infcode") == 0:
                done += 1
            else:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"infno": name, "calls": done, "failed": failed, "seconds": round(elapsed, 3),
            "calls_per_s": round(done / elapsed, 1)}


async def main(seconds: float, concurrency: int) -> dict:
    settings = SimulatorSettings(port=0, admin_port=0, population_size=200)
    async with Simulator(settings) as sim, httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as c:
        url = sim.url + settings.call_path
        r = await c.post(url, content=envelope("9001", {"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}}, ""))
        sign_no = json.loads(r.content)["output"]["signinoutb"]["sign_no"]
        person = next(p for p in sim.ledger.persons.values() if p.insutype == "310")
        reg = json.loads((await c.post(url, content=envelope("2201", {"data": {
            "psn_no": person.psn_no, "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": person.certno, "ipt_otp_no": "BENCH-1", "atddr_no": "D1", "dr_name": "医生",
            "dept_code": "K1", "dept_name": "内科", "caty": "A03"}}, sign_no, person.insuplc_admdvs))).content)
        mdtrt_id = reg["output"]["data"]["mdtrt_id"]
        await c.post(url, content=envelope("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no,
                                                                  "med_type": "11", "begntime": "2024-05-01 09:00:00"},
                                                    "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J00",
                                                                  "diag_name": "感冒", "diag_dept": "内科", "dise_dor_no": "D1",
                                                                  "dise_dor_name": "医生", "diag_time": "2024-05-01 09:05:00",
                                                                  "vali_flag": "1"}]},
                                           sign_no, person.insuplc_admdvs))
        sn = itertools.count()
        q1101 = lambda: envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person.certno}}, sign_no)  # noqa: E731
        q2204 = lambda: envelope("2204", {"feedetail": [{  # noqa: E731
            "feedetl_sn": f"B{next(sn)}", "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "chrg_bchno": "B1",
            "fee_ocur_time": "2024-05-01 09:10:00", "med_list_codg": "XA01", "medins_list_codg": "HXA01",
            "det_item_fee_sumamt": "1.00", "cnt": "1", "pric": "1", "rx_circ_flag": "0", "bilg_dept_codg": "K1",
            "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生", "hosp_appr_flag": "1"}]},
            sign_no, person.insuplc_admdvs)
        figures = [await measure("1101", seconds, concurrency, q1101, c, url),
                   await measure("2204", seconds, concurrency, q2204, c, url)]
    return {"benchmark": "simulator", "time": clock.format_datetime(clock.now()), "python": platform.python_version(),
            "cpus": os.cpu_count(), "concurrency": concurrency, "client": "httpx.AsyncClient, one process",
            "results": figures}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = asyncio.run(main(args.seconds, args.concurrency))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))
