"""``make bench``: run every benchmark script in this folder; each writes bench/results/<name>.json.

Benchmarks are never timed tests: they measure and record, they do not pass or fail on speed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)])
        print(f"   {script.name}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
        if code:
            failed.append(script.name)
    print(f"results in {HERE / 'results'}")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
