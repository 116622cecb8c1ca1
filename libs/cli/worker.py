"""``yibao worker <service>``: run one service's worker in the foreground (what a Kubernetes pod runs)."""

from __future__ import annotations

import argparse
import importlib

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
    return int(module.main() or 0)
