"""``yibao stack up``: start a local broker and database, print how to reach them, run until Ctrl-C.

``--with-connect`` adds a Kafka Connect worker with Debezium's PostgreSQL connector (jars from Maven, like the
broker's) and a stand-in HIS: database ``his`` on the local PostgreSQL with the example tables
(``example-postgres-his.sql``), captured by the shipped ``example-postgres-his`` connector configuration. Then
``yibao worker ingest`` (with ``YIBAO_INGEST_MAPPING=example-postgres-his``) turns the rows you write into it
into canonical events, and ``yibao worker his-writer`` writes the answers back into its ``his.yb_result`` table.
``--connector FILE`` registers your own connector configuration instead (its ``${env:NAME}`` values come from
this command's environment, through Connect's EnvVarConfigProvider).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from yibao.stack.select import start_stack

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefer", choices=["real", "embedded"], default="real",
                        help="real: Kafka 4.x KRaft + PostgreSQL when available (default); embedded: Tansu + SQLite")
    parser.add_argument("--require-real", action="store_true", help="fail instead of falling back to Tansu/SQLite")
    parser.add_argument("--migrate", action="store_true", help="also run the database migrations")
    parser.add_argument("--with-connect", action="store_true",
                        help="also run Kafka Connect with Debezium's PostgreSQL connector, capturing a stand-in HIS "
                             "database with the example tables (needs the real broker and the local PostgreSQL)")
    parser.add_argument("--connector", action="append", default=[], metavar="FILE",
                        help="with --with-connect: register this connector configuration (JSON) instead of the "
                             "stand-in HIS's; repeatable")


def run(args: argparse.Namespace) -> int:
    with start_stack(prefer=args.prefer, require_real=args.require_real) as stack:
        if args.migrate:
            from yibao.core.db.migrations import upgrade

            upgrade(stack.info.database_url)
        print(stack.info.describe())
        print(f"export KAFKA_BOOTSTRAP={stack.info.kafka_bootstrap}")
        print(f"export DATABASE_URL={stack.info.database_url}")
        connect = None
        if args.with_connect or args.connector:
            connect = _start_connect(stack, [Path(p) for p in args.connector])
            if connect is None:
                return 2
        print("running; Ctrl-C stops and removes everything", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if connect is not None:
                connect.stop()
                shutil.rmtree(connect.workdir, ignore_errors=True)
    return 0


def _start_connect(stack, files: list[Path]):  # type: ignore[no-untyped-def]
    from yibao.core.errors import StackError
    from yibao.stack import connect as connect_stack
    from yibao.stack.his import EXAMPLE, StandInHis

    ok, why = connect_stack.available()
    if not ok:
        print(f"Kafka Connect cannot run here: {why}")
        return None
    if stack.info.kafka_kind == "tansu":
        print("Kafka Connect needs the real broker (the embedded one lacks what Connect uses); use --prefer real")
        return None
    workdir = Path(tempfile.mkdtemp(prefix="yibao-connect-"))
    worker = connect_stack.KafkaConnect(workdir, stack.info.kafka_bootstrap).start()
    try:
        if files:
            for path in files:
                name = path.name.removesuffix(".json").removesuffix(".connector")
                worker.put_connector(name, connect_stack.connector_config(path))
                worker.wait_running(name)
                print(f"connector {name}: running ({path})")
        else:
            if stack.postgres_server is None:
                print("the stand-in HIS needs the local PostgreSQL cluster (DATABASE_URL points elsewhere); "
                      "register your own HIS's connector with --connector FILE")
                worker.stop()
                return None
            his = StandInHis.create(stack.postgres_server, "his")
            worker.put_connector("his", his.connector_config(topic_prefix="hisdb", slot="yibao_his",
                                                             slot__drop__on__stop="true"))
            worker.wait_running("his")
            print(f"stand-in HIS: {his.url} (tables: {EXAMPLE}.sql), captured by connector 'his' to topics "
                  "hisdb.his.<table>")
            print(f"export YIBAO_INGEST_MAPPING={EXAMPLE}")
            print(f"export YIBAO_HIS_WRITER_HIS_DATABASE_URL={his.url}")
            print("export YIBAO_HIS_WRITER_RESULTS_SCHEMA=his")
    except StackError as exc:
        print(str(exc))
        worker.stop()
        return None
    print(f"Kafka Connect: {worker.url} (REST API; log {worker.log})")
    return worker
