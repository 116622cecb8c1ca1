"""Reconciliation of a very large day: 1,000,000 settlements, with time and peak memory per phase.

Phases (what a run does with a day of that size, minus the network):

1. **3201 totals** — sums and counts per key over the ledger, streamed;
2. **detail file** — the 3202 detail TXT zipped for 9101, streamed from the ledger;
3. **diff** — reading the platform's 1,000,000-row 3202 result file (9102) and keeping the differences;
4. **classification** — each difference with the hospital's side attached (ledger looked up in batches).

The ledger is a generator (as the database cursor is in a run): entries are never all in memory. The
platform's result file is built first (not timed as ours) with a few percent of differences planted:
platform-only rows, HIS-only rows, amount and status mismatches.

Run: ``.venv/bin/python bench/bench_reconciliation.py [--entries 1000000] [--differences 0.03]``; prints and
writes bench/results/reconciliation.json. Peak memory is the process's peak RSS (resource.getrusage) after
each phase, so it includes the interpreter and the libraries (~100 MB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import resource
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from yibao.core import clock
from yibao.reconciliation.classify import classify
from yibao.reconciliation.detail_file import build_detail_zip
from yibao.reconciliation.result_file import read_result_file
from yibao.reconciliation.settings import DEFAULT_ROW_CODES
from yibao.reconciliation.statement import totals_of

RESULTS = Path(__file__).resolve().parent / "results" / "reconciliation.json"
DAY = dt.datetime(2026, 11, 20, 10, 0, tzinfo=clock.SHANGHAI)
#: a small pool of amounts, shared objects (a real cursor makes new ones; the per-row cost is the same)
AMOUNTS = [Decimal(f"{10 + (i * 37) % 900}.{i % 100:02d}") for i in range(97)]
HALF = [(a / 2).quantize(Decimal("0.01")) for a in AMOUNTS]
TENTH = [(a / 10).quantize(Decimal("0.01")) for a in AMOUNTS]
ZERO = Decimal("0.00")


class Entry(NamedTuple):
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    his_visit_id: str
    channel: str


def local_entry(i: int) -> Entry:
    k = i % 97
    medfee, fund, acct = AMOUNTS[k], HALF[k], TENTH[k]
    return Entry(f"S{i:012d}", f"M{i:012d}", f"P{i % 250_000:010d}", "310" if i % 3 else "390", "11",
                 "440100", "0", medfee, fund, acct, medfee - fund - acct, f"V{i:012d}",
                 "mobilepay" if i % 50 == 0 else "national")


class Plan(NamedTuple):
    his_only: set[int]
    amount: set[int]
    status: set[int]
    platform_only: int


def plant(entries: int, share: float) -> Plan:
    """Which entries differ: share/3 HIS-only, share/6 amount, share/6 status; share/3 extra platform rows."""
    step = max(1, int(1 / share))
    differing = range(0, entries, step)
    his_only = {i for n, i in enumerate(differing) if n % 6 in (0, 1)}
    amount = {i for n, i in enumerate(differing) if n % 6 == 2}
    status = {i for n, i in enumerate(differing) if n % 6 == 3}
    return Plan(his_only, amount, status, platform_only=len(his_only))


def ledger(entries: int) -> Iterator[Entry]:
    for i in range(entries):
        yield local_entry(i)


def platform_result(entries: int, plan: Plan) -> bytes:
    """The platform's 3202 result file for this day (one row per setl_id of either side), zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("3202_result.txt", "w", force_zip64=True) as out:
            lines: list[str] = []
            for i in range(entries):
                e = local_entry(i)
                if i in plan.his_only:
                    code, msgid = "2", "null"
                elif i in plan.amount:
                    code, msgid = "3", f"H44010600001{i:018d}"[:30]
                elif i in plan.status:
                    code, msgid = "4", f"H44010600001{i:018d}"[:30]
                else:
                    code, msgid = "0", f"H44010600001{i:018d}"[:30]
                lines.append(f"{e.psn_no}\t{e.mdtrt_id}\t{e.setl_id}\t{msgid}\t{code}\t0\t{'一致' if code == '0' else 'x'}")
                if len(lines) >= 8192:
                    out.write(("\n".join(lines) + "\n").encode())
                    lines.clear()
            for j in range(plan.platform_only):
                lines.append(f"PX{j:09d}\tMX{j:011d}\tX{j:012d}\tH44010600001{j:018d}\t1\t0\t平台有医院无")
            out.write(("\n".join(lines) + "\n").encode())
    return buffer.getvalue()


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def timed(name: str, fn: Any, phases: list[dict[str, Any]]) -> Any:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    phases.append({"phase": name, "seconds": round(seconds, 3), "peak_rss_mb": peak_rss_mb()})
    print(f"  {name:<28} {seconds:8.2f} s   peak RSS {peak_rss_mb():8.1f} MB", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--differences", type=float, default=0.03, help="share of entries planted as differences")
    args = parser.parse_args()
    n = args.entries
    plan = plant(n, args.differences)
    phases: list[dict[str, Any]] = []
    print(f"reconciliation of {n:,} settlements, ~{args.differences:.0%} planted differences", flush=True)

    started = time.perf_counter()
    result_zip = platform_result(n, plan)
    prepare_s = time.perf_counter() - started
    print(f"  (platform result file built in {prepare_s:.2f} s, {len(result_zip) / 1e6:.1f} MB zipped)", flush=True)

    totals = timed("3201 totals", lambda: totals_of(ledger(n)), phases)
    detail = timed("detail file (zip)", lambda: build_detail_zip(ledger(n), filename="3202_11_440100.zip"), phases)
    phases[-1]["bytes_zipped"] = len(detail.content)
    summary = timed("diff (read 3202 result)", lambda: read_result_file(result_zip, row_codes=DEFAULT_ROW_CODES),
                    phases)
    phases[-1]["rows"] = summary.rows

    def lookup(setl_ids: Any) -> dict[str, Entry]:
        out = {}
        for setl_id in setl_ids:
            if setl_id.startswith("S"):
                out[setl_id] = local_entry(int(setl_id[1:]))
        return out

    diffs = timed("classification", lambda: classify(summary.differences, lookup, clr_type="11",
                                                      setl_optins="440100"), phases)
    by_class = Counter(d.diff_class for d in diffs)
    planted = {"his_only": len(plan.his_only), "amount_mismatch": len(plan.amount),
               "status_mismatch": len(plan.status), "platform_only": plan.platform_only}
    assert dict(by_class) == planted, (dict(by_class), planted)
    assert detail.count == n and sum(t.count for t in totals.values()) == n
    total_s = round(sum(p["seconds"] for p in phases), 3)
    print(f"  {'total (ours)':<28} {total_s:8.2f} s   differences {dict(by_class)}", flush=True)
    report = {
        "benchmark": "reconciliation",
        "time": clock.format_datetime(clock.now()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "entries": n,
        "result_rows": summary.rows,
        "differences": dict(by_class),
        "phases": phases,
        "total_seconds": total_s,
        "peak_rss_mb": peak_rss_mb(),
        "platform_result_build_seconds": round(prepare_s, 3),
        "platform_result_zip_bytes": len(result_zip),
        "notes": "ledger streamed (a generator stands in for the database cursor); result file streamed; "
                 "peak RSS includes the interpreter and libraries",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
