"""``yibao chaos``: the bridge under everything that can go wrong at once, then the audit a hospital would make.

A stream of generated HIS days goes through ingest, registration, settlement and reconciliation on a stack of the
run's own (a real Kafka broker and a private PostgreSQL cluster) while workers are killed with SIGKILL, the
database is stopped and started, the broker restarted and the simulator loses answers, resets connections and
answers 5xx. Afterwards: every HIS request answered exactly once, the platform's ledger agrees with what HIS was
told, nothing parked, and the day's 3201/3202 balances. Exit status 0 only when all of that holds.

``--visits 300`` takes a few minutes; ``--visits 10000 --out bench/results/chaos.json`` is the long soak
(``make chaos``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--visits", type=int, default=300, help="visits (outpatient and inpatient) in the run")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated days and of the disruptions")
    parser.add_argument("--disrupt", default="kill,database,broker",
                        help="what may be done at random: kill, database, broker (comma separated; '' for none)")
    parser.add_argument("--every", type=float, nargs=2, default=(6.0, 15.0), metavar=("MIN_S", "MAX_S"),
                        help="seconds between two disruptions")
    parser.add_argument("--script", action="append", default=[], metavar="DISRUPTION",
                        help="a disruption done once before the random ones, e.g. database:60 or broker or "
                             "kill:settlement (repeatable, in order)")
    parser.add_argument("--no-faults", action="store_true", help="no simulator faults (disruptions only)")
    parser.add_argument("--timeout", type=float, default=3600, help="give up waiting for answers after this long")
    parser.add_argument("--out", type=Path, help="write the report (JSON) here, e.g. bench/results/chaos.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every process)")


def run(args: argparse.Namespace) -> int:
    import logging

    from yibao.stack.chaos import DEFAULT_FAULTS, ChaosPlan, run_chaos

    # the run's own answer reader loses the broker when the run restarts it: that is the point, not news
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    plan = ChaosPlan(visits=args.visits, seed=args.seed,
                     disruptions=tuple(d for d in args.disrupt.split(",") if d.strip()),
                     every_s=tuple(args.every), scripted=tuple(args.script),
                     faults=() if args.no_faults else DEFAULT_FAULTS, timeout_s=args.timeout)
    workdir = Path(tempfile.mkdtemp(prefix="yibao-chaos-"))
    print(f"yibao chaos — work directory {workdir}", flush=True)
    try:
        report = run_chaos(plan, workdir, say=lambda line: print(line, flush=True))
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.to_json() + "\n")
        print(f"report written to {args.out}")
    print("chaos: " + ("every request answered once, the ledgers agree, nothing parked, the day reconciled"
                       if report.ok else "FAILED — see the report"))
    return 0 if report.ok else 1
