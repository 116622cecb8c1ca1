"""``yibao worker <service>``: run one service's worker in the foreground (what a Kubernetes pod runs)."""

from __future__ import annotations

import argparse
import importlib
import logging

from yibao.core.errors import StackError

__all__ = ["add_arguments", "run", "SERVICES"]

#: service name as typed → package holding its ``app.main()``
SERVICES: dict[str, str] = {
    "ingest": "yibao.ingest",
    "registration": "yibao.registration",
    "settlement": "yibao.settlement",
    "upload-scheduler": "yibao.upload_scheduler",
    "workinjury-sync": "yibao.workinjury_sync",
    "mobilepay": "yibao.mobilepay",
    "reconciliation": "yibao.reconciliation",
    "his-writer": "yibao.his_writer",
    "counter": "yibao.counter",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=sorted(SERVICES), help="which service to run")


def run(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(f"{SERVICES[args.service]}.app")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(".app"):
            print(f"service '{args.service}' has no worker yet in this version", flush=True)
            return 2
        raise
    try:
        return int(module.main() or 0)
    except (StackError, ValueError) as exc:  # settings refused, the broker or the database refused us at start
        from yibao.core.logs import configure_logging

        configure_logging(args.service)
        logging.getLogger("yibao.worker").error("cannot start: %s", exc)
        return 1
