"""``yibao`` — the one command-line entry point.

Each sub-command lives with the code it runs: the table below maps a command to ``module:attribute`` where
the module provides ``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
command runs, so ``yibao --help`` stays fast and one broken part cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "COMMANDS"]

#: command path -> (module providing add_arguments/run, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("worker",): ("yibao.cli.worker", "run one service's worker: yibao worker <service>"),
    ("demo",): ("yibao.cli.demo", "run the whole bridge on the embedded stack with generated HIS activity"),
    ("chaos",): ("yibao.cli.chaos", "the bridge under killed workers, database and broker outages and platform "
                                     "faults, then the audit (every request answered once, the day reconciled)"),
    ("sim",): ("yibao.simulator.cli", "run the platform simulator (national, mobile pay) on loopback"),
    ("topics", "create"): ("yibao.cli.topics", "create every topic of the catalog (idempotent)"),
    ("topics", "list"): ("yibao.cli.topics_list", "print the topic catalog"),
    ("db", "upgrade"): ("yibao.cli.db", "migrate the database to the newest schema (idempotent)"),
    ("data",): ("yibao.cli.data", "personal data at rest: purge (retention policy), reencrypt (after a key rotation)"),
    ("stack", "up"): ("yibao.stack.cli", "start a local Kafka + database and print how to reach them"),
    ("settings",): ("yibao.cli.settings_ref", "print every setting of every service with its env variable"),
    ("recon",): ("yibao.reconciliation.cli", "reconcile with the platform (3201/3202), approve repairs, reports"),
    ("catalog",): ("yibao.cli.catalog", "the national transactions: how many have a field list, which a service calls"),
    ("replay",): ("yibao.cli.replay", "put parked work back once fixed: dead letters (dlq), parked visits (chains), "
                                      "upload records (uploads)"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yibao", description="yibao-bridge: HIS ⇄ 医保 platforms on Kafka")
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {}
    root = parser.add_subparsers(dest="command", metavar="<command>")
    groups[()] = root
    for path, (module, help_text) in COMMANDS.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                sub = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} commands")
                groups[prefix] = sub.add_subparsers(dest=f"command_{depth}", metavar="<subcommand>")
                sub.set_defaults(_usage=sub)
        command_parser = groups[path[:-1]].add_parser(path[-1], help=help_text, description=help_text)
        command_parser.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(command_parser)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                command_parser.set_defaults(_missing=f"'{' '.join(path)}' is not available in this build")
            else:
                raise
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(args._missing, file=sys.stderr)
        return 2
    module = getattr(args, "_module", None)
    if module is None:
        (getattr(args, "_usage", None) or parser).print_help()
        return 2
    return int(importlib.import_module(module).run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
