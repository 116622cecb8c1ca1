"""National-envelope figures: build + validate + sign per call for each gateway signer, msgid allocation rate,
and the whole client pipeline (validate, msgid, sign, HTTP to an instant in-process peer, call-log row, metrics).

Run with the project's interpreter::

    .venv/bin/python bench/bench_envelope.py [--budget SECONDS] [--out PATH]

Prints a table and writes JSON (default bench/results/envelope.json). Each measurement runs for about
``--budget`` seconds (default 1.0). Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.envelope import crypto
from yibao.envelope.catalog import Catalog
from yibao.envelope.client import NationalClient
from yibao.envelope.msgid import MsgidAllocator
from yibao.envelope.national.envelope import Sender, build_header, encode_input
from yibao.envelope.national.gateways import make_signer
from yibao.envelope.settings import PlatformSettings

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "envelope.json"
CODE = "H44010600001"


def measure(fn: Callable[[], object], budget: float, *, min_runs: int = 3) -> dict[str, float]:
    """Calls per second and mean milliseconds of ``fn`` over about ``budget`` seconds (after one warm-up)."""
    fn()
    runs, start, elapsed = 0, time.perf_counter(), 0.0
    while runs < min_runs or elapsed < budget:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
    return {"per_second": round(runs / elapsed, 1), "mean_ms": round(elapsed / runs * 1000, 4), "runs": runs}


def fee_details(lines: int) -> dict[str, Any]:
    """A 2204 input of ``lines`` fee lines (about 8.5 KB of envelope for 20 lines)."""
    return {"feedetail": [{
        "feedetl_sn": f"F{i:05d}", "mdtrt_id": "440100202405010900000001", "psn_no": "44060101000000000006",
        "chrg_bchno": "B1", "rx_circ_flag": "0", "fee_ocur_time": "2024-05-01 09:10:00",
        "med_list_codg": "XA01AAA000000000000000", "medins_list_codg": "H-XA01-0001",
        "det_item_fee_sumamt": Decimal("24.68"), "cnt": Decimal("2"), "pric": Decimal("12.34"),
        "bilg_dept_codg": "K1", "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生",
        "hosp_appr_flag": "1"} for i in range(lines)]}


SETTLEMENT = {"data": {
    "psn_no": "44060101000000000006", "mdtrt_cert_type": "02", "mdtrt_cert_no": "440106199001011234",
    "med_type": "11", "medfee_sumamt": Decimal("493.60"), "psn_setlway": "01", "mdtrt_id": "M1",
    "chrg_bchno": "B1", "acct_used_flag": "1", "insutype": "310", "fulamt_ownpay_amt": Decimal("0"),
    "overlmt_selfpay": Decimal("0"), "preselfpay_amt": Decimal("0"), "inscp_scp_amt": Decimal("493.60")}}


def gateway_settings() -> dict[str, PlatformSettings]:
    private, _ = crypto.generate_keypair()
    return {
        "none": PlatformSettings(),
        "tif": PlatformSettings(gateway="tif", tif_paasid="paas", tif_token=SecretStr("token")),
        "api": PlatformSettings(gateway="api", api_access_key="ak", api_secret=SecretStr("secret")),
        "encrypted": PlatformSettings(gateway="encrypted", sm4_key=SecretStr("0123456789abcdeffedcba9876543210"),
                                      sm2_private_key=SecretStr(private)),
    }


def bench_build(budget: float) -> dict[str, Any]:
    catalog = Catalog.load()
    sender = Sender.from_settings(PlatformSettings())
    payloads = {"2204x20": ("2204", fee_details(20)), "2207": ("2207", SETTLEMENT)}
    out: dict[str, Any] = {}
    for kind, settings in gateway_settings().items():
        signer = make_signer(settings)
        for label, (infno, payload) in payloads.items():
            def one(infno: str = infno, payload: dict[str, Any] = payload) -> str:
                text = encode_input(infno, catalog.prepare_input(infno, payload))
                header = build_header(sender, infno, "H44010600001202405010900000001", sign_no="SN1",
                                      insuplc_admdvs="440100")
                return signer.seal(infno, header, text).body
            out.setdefault(kind, {})[label] = measure(one, budget)
            out[kind][label]["body_chars"] = len(one())
    return out


def bench_msgid(budget: float, directory: Path) -> dict[str, Any]:
    url = f"sqlite:///{directory / 'msgid.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    out: dict[str, Any] = {}
    for slots in (1, 10):
        allocator = MsgidAllocator(engine, CODE, slots=slots)
        allocator.allocate_sync()
        time.sleep(1.0 - time.time() % 1.0)  # start on a second boundary: whole seconds, honest ceilings
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < max(2.0, round(budget * 2)) - 0.01:
            allocator.allocate_sync()
            count += 1
        elapsed = time.perf_counter() - start
        allocator.close_sync()
        out[f"slots_{slots}"] = {"per_second": round(count / elapsed, 1), "ceiling_per_second": 10000 // slots}
    # the in-memory path alone (no per-second ceiling reached): time a burst well under the ceiling
    allocator = MsgidAllocator(engine, CODE, slots=1)
    allocator.allocate_sync()
    burst = 2000
    start = time.perf_counter()
    for _ in range(burst):
        allocator.allocate_sync()
    out["issue_mean_us"] = round((time.perf_counter() - start) / burst * 1e6, 2)
    allocator.close_sync()
    engine.dispose()
    return out


async def bench_client(budget: float, directory: Path) -> dict[str, Any]:
    url = f"sqlite:///{directory / 'client.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    answer = json.dumps({"infcode": 0, "output": {"data": {}}}).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=answer if b'"9001"' not in request.content[:40] else
                                       b'{"infcode":0,"output":{"signinoutb":{"sign_no":"SN1"}}}'))
    settings = PlatformSettings(msgid_slots=1, signout_on_close=False)
    out: dict[str, Any] = {}
    async with NationalClient(settings, engine=engine, service="bench", transport=transport) as client:
        payload = fee_details(20)
        await client.call("2204", payload, insuplc_admdvs="440100")
        for concurrency in (1, 20):
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < budget:
                await asyncio.gather(*(client.call("2204", payload, insuplc_admdvs="440100")
                                       for _ in range(concurrency)))
                count += concurrency
            elapsed = time.perf_counter() - start
            out[f"concurrency_{concurrency}"] = {"calls_per_second": round(count / elapsed, 1),
                                                 "mean_ms": round(elapsed / count * 1000, 3)}
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        results: dict[str, Any] = {
            "when": clock.format_datetime(clock.now()),
            "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}",
            "sm2_backend": crypto.get_backend("auto").name,
            "budget_seconds": args.budget,
            "build_validate_sign": bench_build(args.budget),
            "msgid": bench_msgid(args.budget, directory),
            "client_pipeline_2204x20_mock_peer_sqlite": asyncio.run(bench_client(args.budget, directory)),
        }
    print("build + validate + sign, per call (ms):")
    for kind, figures in results["build_validate_sign"].items():
        cells = "  ".join(f"{label} {f['mean_ms']:.3f} ({f['per_second']:.0f}/s)" for label, f in figures.items())
        print(f"  {kind:<10} {cells}")
    print("msgid:", json.dumps(results["msgid"]))
    print("client pipeline:", json.dumps(results["client_pipeline_2204x20_mock_peer_sqlite"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
