"""Work-injury fee lines uploaded per second in 500-record batches (GYU102), against the simulator's ceiling — on
this machine's real stack (Kafka KRaft + PostgreSQL when available), everything on the same cores.

Every ratio names what it divides by. Phases, one simulator process (``yibao sim``):

1. **ceiling** — the simulator taking pre-sealed GYU102 envelopes of 500 lines from a plain httpx loop (4 callers):
   its own work per call (open the SM4 + SM2 envelope, validate 500 lines against the catalog, check them, seal the
   reply) is the most any client can get: ``ceiling_records_per_s``.
2. **client** — the same batches through :class:`~yibao.envelope.workinjury.WorkInjuryClient` (catalog validation,
   sealing, opening and verifying the reply, the call log), 4 in flight: ``client_records_per_s``, and over the
   ceiling.
3. **bridge** — HIS's fee-line requests of ``--stays`` stays of ``--lines`` lines each, produced at once on
   ``yibao.workinjury.requests.v1``, through ``yibao worker workinjury-sync`` (absorbed, checked line by line, frozen
   in batches of 500, journalled, sent, answered, results on Kafka): records/s from the first request produced to
   the last answer, over the ceiling; the batches it sent, and the age of the uploads against their 30-minute
   deadline.

    .venv/bin/python bench/bench_workinjury.py [--batches 16] [--stays 6] [--lines 1000]

Written to bench/results/workinjury.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results"
ORG = "H44010600001"


def _filing(admin_url: str, p: Any, filing_no: str) -> None:
    httpx.post(f"{admin_url}/admin/workinjury/filings", json={
        "filing_no": filing_no, "psn_no": p.person.psn_no, "certno": p.certno, "psn_name": p.person.psn_name,
        "insu_admdvs": p.insu_admdvs, "mdtrt_admdvs": "440100", "org_type": "1", "begin_date": "2026-01-01",
        "end_date": "2027-12-31"}, timeout=10).raise_for_status()


def _lines(p: Any, n: int, tag: str) -> list[dict[str, Any]]:
    base = p.lines
    return [dict(base[i % len(base)], fee_sn=f"{tag}{i:06d}") for i in range(n)]


async def _admit(client: Any, p: Any, ipt_no: str, filing_no: str) -> None:
    from yibao.core import clock

    await client.call("GYU101", {"adm_list": [{
        "ipt_no": ipt_no, "org_code": ORG, "filing_no": filing_no, "psn_no": p.person.psn_no, "certno": p.certno,
        "psn_name": p.person.psn_name, "visit_type": "1", "adm_time": clock.as_shanghai(p.adm_time),
        "adm_dept_code": "GK01", "adm_dept_name": "骨科", "adm_diag_code": "S82.001", "adm_diag_name": "髌骨骨折"}]})


def _rows(lines: list[dict[str, Any]], ipt_no: str) -> list[dict[str, Any]]:
    from yibao.core import clock

    return [{**{k: v for k, v in line.items() if k != "dept_code"}, "ipt_no": ipt_no, "org_code": ORG,
             "fee_time": clock.format_datetime(_dt.datetime.fromisoformat(line["fee_time"]))} for line in lines]


async def ceiling_and_client(sim_url: str, admin_url: str, keys: tuple[tuple[str, str], str], database_url: str,
                             batches: int) -> dict[str, Any]:
    from yibao.core.db import make_engine
    from yibao.envelope.catalog import Catalog
    from yibao.envelope.workinjury import WorkInjuryClient, WorkInjuryCodec, WorkInjuryPlatformSettings
    from yibao.fakedata.workinjury import generate_month

    hospital, platform_public = keys
    catalog = Catalog.load(platform="workinjury")
    engine = make_engine(database_url)
    month = generate_month(99, month=_dt.date(2026, 11, 1), patients=2, lines=(50, 60))
    settings = WorkInjuryPlatformSettings(base_url=sim_url, private_key=hospital[0],
                                          platform_public_key=platform_public, max_connections=8)
    client = WorkInjuryClient(settings, engine=engine, service="bench", catalog=catalog)
    report: dict[str, Any] = {}
    try:
        for phase, p in (("ceiling", month.patients[0]), ("client", month.patients[1])):
            filing_no, ipt_no = f"BA{phase}{uuid.uuid4().hex[:6]}", f"ZY{phase}{uuid.uuid4().hex[:6]}"
            _filing(admin_url, p, filing_no)
            await _admit(client, p, ipt_no, filing_no)
            bodies = [catalog.prepare_input("GYU102", {"fee_list": _rows(_lines(p, 500, f"{phase[0]}{b:03d}"),
                                                                               ipt_no)}) for b in range(batches)]
            if phase == "ceiling":
                codec = WorkInjuryCodec(hospital[0], platform_public)
                sealed = [json.dumps(codec.seal("GYU102", await client.allocate_msgid(), body)).encode()
                          for body in bodies]
                queue: asyncio.Queue[bytes] = asyncio.Queue()
                for item in sealed:
                    queue.put_nowait(item)
                async with httpx.AsyncClient(base_url=sim_url, timeout=120) as http:
                    async def caller() -> None:
                        while not queue.empty():
                            body = queue.get_nowait()
                            reply = await http.post("/gsyd/api/GYU102", content=body,
                                                    headers={"Content-Type": "application/json"})
                            assert reply.status_code == 200
                    started = time.perf_counter()
                    await asyncio.gather(*(caller() for _ in range(4)))
                    elapsed = time.perf_counter() - started
            else:
                semaphore = asyncio.Semaphore(4)

                async def upload(body: dict[str, Any]) -> None:
                    async with semaphore:
                        await client.call("GYU102", body)

                started = time.perf_counter()
                await asyncio.gather(*(upload(b) for b in bodies))
                elapsed = time.perf_counter() - started
            records = 500 * batches
            report[phase] = {"batches": batches, "records": records, "seconds": round(elapsed, 3),
                             "records_per_s": round(records / elapsed, 1),
                             "calls_per_s": round(batches / elapsed, 2)}
        accepted = httpx.get(f"{admin_url}/admin/workinjury", timeout=10).json()
        report["platform_details_accepted"] = sum(a["details"] for a in accepted["admissions"])
    finally:
        await client.aclose()
        engine.dispose()
    return report


async def through_the_bridge(bridge: Any, stays: int, lines: int) -> dict[str, Any]:
    from yibao.core import clock
    from yibao.fakedata.workinjury import generate_month
    from yibao.workinjury_sync.demo import HisPlayer

    player = HisPlayer(bridge.info.kafka_bootstrap, bridge.prefix, bridge.admin_url,
                       bridge.workers["workinjury-sync"].url)
    month = generate_month(7, month=_dt.date(2026, 11, 1), patients=stays, lines=(40, 60))
    admissions = []
    for p in month.patients:
        filing_no = f"BA{p.apply_no}"
        _filing(bridge.admin_url, p, filing_no)
        p.lines = _lines(p, lines, p.stay_id[-6:])
        admissions.append(month.admitted(p, filing_no, clock.now()))
    await player.send(*admissions)
    stays_keys = {f"stay:{p.stay_id}" for p in month.patients}
    await player.wait_results(lambda rs: stays_keys <= {r.case_key for r in rs if r.request == "admission"},
                              what="admissions", timeout=300)
    events = [month.fee_lines(p, p.lines[i:i + 500], clock.now()) for p in month.patients
              for i in range(0, len(p.lines), 500)]
    calls_before = bridge.admin("workinjury")["calls"].get("GYU102", 0)
    started = time.perf_counter()
    await player.send(*events)
    results = await player.wait_results(lambda rs: sum(1 for r in rs if r.request == "fee_lines") >= len(events),
                                        what="fee lines", timeout=900)
    elapsed = time.perf_counter() - started
    fee = [r for r in results if r.request == "fee_lines"]
    uploaded = sum(int((r.detail or {}).get("uploaded", 0)) for r in fee)
    ages = sorted(float(r.age_s or 0) for r in fee)
    return {"stays": stays, "lines_per_stay": lines, "records": stays * lines, "records_uploaded": uploaded,
            "requests": len(events), "batches_sent": bridge.admin("workinjury")["calls"].get("GYU102", 0) - calls_before,
            "seconds": round(elapsed, 3), "records_per_s": round(uploaded / elapsed, 1),
            "answer_age_p50_s": round(statistics.median(ages), 2), "answer_age_max_s": round(max(ages), 2),
            "deadline_s": 1800, "all_on_time": all(r.on_time is not False for r in fee)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=16, help="500-line batches in the ceiling and client phases")
    parser.add_argument("--stays", type=int, default=6, help="stays sent through the bridge")
    parser.add_argument("--lines", type=int, default=1000, help="fee lines per stay through the bridge")
    args = parser.parse_args()

    from yibao.core.db.migrations import upgrade
    from yibao.envelope.crypto import generate_keypair
    from yibao.stack import start_stack
    from yibao.stack.bridge import LocalBridge
    from yibao.workinjury_sync.demo import bridge_env

    workdir = Path(tempfile.mkdtemp(prefix="bench-workinjury-"))
    stack = start_stack(prefer="real", workdir=workdir)
    info = stack.info
    upgrade(info.database_url)
    hospital, platform_keys = generate_keypair(), generate_keypair()
    bridge = LocalBridge(info, workdir, prefix=f"bw{uuid.uuid4().hex[:6]}.", services=("workinjury-sync",),
                         log_level="WARNING", env={"YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S": "3600",
                                                   "YIBAO_WORKINJURY_SYNC_STREAMS": "[]"})
    bridge.extra_env.update(bridge_env(bridge.sim_url, hospital=hospital, platform=platform_keys))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}", "cpus": os.cpu_count(),
        "stack": {"broker": info.kafka_kind, "database": info.database_kind},
        "method": "GYU102 fee lines in 500-record batches; ceiling: the simulator alone taking pre-sealed envelopes "
                  "from 4 httpx callers; client: WorkInjuryClient, 4 in flight; bridge: HIS requests on Kafka through "
                  "the workinjury-sync worker to the same simulator (one process each, same cores)",
    }
    try:
        bridge.start()
        report.update(asyncio.run(ceiling_and_client(bridge.sim_url, bridge.admin_url,
                                                     (hospital, platform_keys[1]), info.database_url,
                                                     args.batches)))
        report["bridge"] = asyncio.run(through_the_bridge(bridge, args.stays, args.lines))
        ceiling = report["ceiling"]["records_per_s"]
        report["client_over_ceiling"] = round(report["client"]["records_per_s"] / ceiling, 3)
        report["bridge_over_ceiling"] = round(report["bridge"]["records_per_s"] / ceiling, 3)
        # the README's performance rows (bench/report.py may paste them as it does mobilepay.json's)
        report["readme"] = [
            f"| work-injury GYU102 fee lines in 500-record batches: the simulator's ceiling / WorkInjuryClient / "
            f"HIS requests through the workinjury-sync worker | {ceiling:,.0f} / "
            f"{report['client']['records_per_s']:,.0f} / {report['bridge']['records_per_s']:,.0f} records/s "
            f"(bridge = {report['bridge_over_ceiling']:.2f} × the ceiling) | workinjury.json |"]
    finally:
        bridge.stop()
        stack.stop()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "workinjury.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
