"""``yibao stack up``: start a local broker and database, print how to reach them, run until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from yibao.stack.select import start_stack

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefer", choices=["real", "embedded"], default="real",
                        help="real: Kafka 4.x KRaft + PostgreSQL when available (default); embedded: Tansu + SQLite")
    parser.add_argument("--require-real", action="store_true", help="fail instead of falling back to Tansu/SQLite")
    parser.add_argument("--migrate", action="store_true", help="also run the database migrations")


def run(args: argparse.Namespace) -> int:
    with start_stack(prefer=args.prefer, require_real=args.require_real) as stack:
        if args.migrate:
            from yibao.core.db.migrations import upgrade

            upgrade(stack.info.database_url)
        print(stack.info.describe())
        print(f"export KAFKA_BOOTSTRAP={stack.info.kafka_bootstrap}")
        print(f"export DATABASE_URL={stack.info.database_url}")
        print("running; Ctrl-C stops and removes everything", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0
