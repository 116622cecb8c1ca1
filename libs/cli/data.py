"""``yibao data purge`` and ``yibao data reencrypt``: the retention policy and the data keys, applied by hand.

* ``yibao data purge [--days N] [--dry-run]`` — deletes what the retention policy says is old enough
  (:mod:`yibao.core.retention`); every worker also does it on a timer.
* ``yibao data reencrypt [--dry-run]`` — seals every stored personal value under the first key of
  ``YIBAO_DATA_KEYS`` (:mod:`yibao.core.reseal`): run after putting a new key first; then drop the old ones.

Both work on the deployment of the settings (``DATABASE_URL``, ``YIBAO_TOPIC_PREFIX``, ``YIBAO_DATA_KEYS``).
"""

from __future__ import annotations

import argparse
import importlib

from yibao.core.db import make_engine
from yibao.core.deployment import Deployment, bind
from yibao.core.settings import CommonSettings

__all__ = ["add_arguments", "run", "PARTS"]

#: parts that register their own tables with yibao.core.retention / yibao.core.reseal when imported
PARTS = ("yibao.chains",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["purge", "reencrypt"],
                        help="purge: apply the retention policy; reencrypt: seal stored data under the current key")
    parser.add_argument("--days", type=int, help="purge: retention in days (default: YIBAO_RETENTION_DAYS)")
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")


def run(args: argparse.Namespace) -> int:
    for part in PARTS:
        importlib.import_module(part)
    settings = CommonSettings()
    deployment = Deployment.from_settings(settings)
    engine = bind(make_engine(settings.database_url), deployment)
    try:
        if args.what == "purge":
            from yibao.core.retention import RetentionPolicy, purge

            policy = RetentionPolicy(days=args.days if args.days is not None else settings.retention_days)
            if policy.days <= 0:
                print("retention is off (0 days): nothing purged")
                return 0
            counts = purge(engine, policy, dry_run=args.dry_run)
            verb = "would delete" if args.dry_run else "deleted"
            print(f"older than {policy.days} days: {verb} " + ", ".join(f"{t} {n}" for t, n in counts.items()))
            return 0
        from yibao.core.reseal import reseal

        print(f"data at rest: {deployment.cipher.describe()}")
        if not deployment.cipher.enabled:
            print("no data key configured: nothing to seal (set YIBAO_DATA_KEYS)")
            return 2
        reports = reseal(engine, dry_run=args.dry_run)
        verb = "would re-seal" if args.dry_run else "re-sealed"
        unreadable = 0
        for name, report in reports.items():
            unreadable += report.unreadable
            print(f"{name}: {verb} {report.resealed}, already current {report.current}, "
                  f"cannot open {report.unreadable}")
        return 1 if unreadable else 0
    finally:
        engine.dispose()
