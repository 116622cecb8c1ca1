"""The reconciliation benchmark still runs its real path end to end (a smoke run at 3,000 entries, never timed).

bench/bench_reconciliation.py leans on the reconciler's inner steps (statements, the streamed detail file, 9101,
3202, 9102, classification, storing the differences); this run proves it still drives them, finds exactly the
differences it planted and writes a result whose figures add up. The figures themselves are not asserted: speed
is recorded in bench/results by the full-size run, never tested.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

BENCH = Path(__file__).resolve().parents[3] / "bench" / "bench_reconciliation.py"


def test_a_small_day_runs_the_real_path_and_finds_what_was_planted(tmp_path: Path) -> None:
    out = tmp_path / "reconciliation.json"
    # its own private PostgreSQL cluster and broker, never a database the session was pointed at
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP")}
    done = subprocess.run([sys.executable, str(BENCH), "--entries", "3000", "--output", str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode and "needs PostgreSQL" in done.stderr + done.stdout and not os.environ.get(
            "YIBAO_REQUIRE_REAL"):
        pytest.skip("no PostgreSQL server binaries on this machine")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["entries"] == 3000
    assert report["stack"]["database"] == "postgresql"
    assert "fsync and synchronous_commit on" in report["stack"]["database_detail"]
    assert report["differences"] == report["planted"] and sum(report["planted"].values()) > 0
    assert report["groups"] >= 1 and report["result_rows"] >= 3000
    phases = {p["phase"]: p for p in report["phases"]}
    assert len(phases) == 10 and all(p["divides_by"] for p in phases.values())
    assert report["total_seconds"] == pytest.approx(sum(p["ours_seconds"] for p in phases.values()), abs=0.01)
    assert set(report["platform_seconds_by_infno"]) >= {"3201", "9101", "3202", "9102"}
    assert 0 < report["peak_rss_mb"] and report["rss"]["ready_mb"] <= report["peak_rss_mb"]
