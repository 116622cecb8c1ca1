"""``yibao demo``: the whole bridge on the embedded default, fed a generated day of HIS activity.

Starts the embedded broker (Tansu) and SQLite (or whatever KAFKA_BOOTSTRAP / DATABASE_URL name), the platform
simulator and the workers as real processes, produces a generated day of Debezium change events (with a few
malformed ones and CDC duplicates mixed in, as real connectors deliver them), waits until everything is through,
and prints what came in, what was parked and why, and how fast.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from yibao.core.kafka import create_topics
from yibao.core.topics import topic

__all__ = ["add_arguments", "run"]

#: workers the demo runs, in start order
DEMO_SERVICES = ("ingest",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outpatients", type=int, default=200, help="outpatient visits in the generated day")
    parser.add_argument("--inpatients", type=int, default=20, help="inpatient stays in the generated day")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated day (same seed, same day)")
    parser.add_argument("--bad", type=int, default=2, help="malformed change events of each kind to mix in")
    parser.add_argument("--duplicates", type=int, default=20, help="change events the 'connector' sends twice")
    parser.add_argument("--prefer", choices=["embedded", "real"], default="embedded",
                        help="embedded: Tansu + SQLite (default); real: Kafka KRaft + PostgreSQL when available")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")


class _Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "yibao.cli.main", *args], env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def wait_http(self, name: str, url: str, timeout: float = 120) -> None:
        proc = dict(self.procs)[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}); see {self.workdir / (name + '.log')}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{name} not ready after {timeout:.0f}s; see {self.workdir / (name + '.log')}")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _metrics(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return values
    for line in text.splitlines():
        if line.startswith("yibao_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def run(args: argparse.Namespace) -> int:
    from yibao.core.db.migrations import upgrade
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack import start_stack
    from yibao.stack._proc import free_port

    workdir = Path(tempfile.mkdtemp(prefix="yibao-demo-"))
    print(f"yibao demo — work directory {workdir}")
    stack = start_stack(prefer=args.prefer, workdir=workdir)
    processes = _Processes(workdir)
    try:
        info = stack.info
        print(info.describe())
        upgrade(info.database_url)
        mapping = load_mapping("example-oracle-his")
        cdc_topics = mapping.topics()
        asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in cdc_topics]))
        env = {"KAFKA_BOOTSTRAP": info.kafka_bootstrap, "DATABASE_URL": info.database_url,
               "YIBAO_SESSION_TIMEOUT_S": "6", "YIBAO_LOG_LEVEL": "WARNING"}
        sim_port, admin_port = free_port(), free_port()
        processes.start("simulator", ["sim", "--port", str(sim_port), "--admin-port", str(admin_port),
                                      "--seed", str(args.seed)], env)
        processes.wait_http("simulator", f"http://127.0.0.1:{admin_port}/admin/counters")
        env["YIBAO_PLATFORM_BASE_URL"] = f"http://127.0.0.1:{sim_port}"
        ports: dict[str, int] = {}
        for service in DEMO_SERVICES:
            ports[service] = free_port()
            prefix = "YIBAO_" + service.upper().replace("-", "_") + "_"
            processes.start(service, ["worker", service], {**env, f"{prefix}WEB_PORT": str(ports[service])})
        for service in DEMO_SERVICES:
            processes.wait_http(service, f"http://127.0.0.1:{ports[service]}/readyz")
        print("simulator and workers ready: " + ", ".join(f"{s} :{p}" for s, p in ports.items()))

        day = _dt.date(2026, 11, 20)
        messages = generate_day(args.seed, day=day, outpatients=args.outpatients, inpatients=args.inpatients,
                                shape=CdcShape(decimal_mode="precise", schemas=True),
                                inject={k: args.bad for k in ("bad_json", "unknown_table", "missing_column",
                                                              "bad_date")} if args.bad else None,
                                duplicates=args.duplicates)
        ingestor = Ingestor(mapping)
        expected: Counter[str] = Counter()
        for m in messages:
            if not m.expect_error and m.value is not None and not m.duplicate:
                expected.update(e.type for e in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events)
        print(f"HIS day {day}: {args.outpatients} outpatient visits, {args.inpatients} inpatient stays → "
              f"{len(messages)} change events ({sum(1 for m in messages if m.expect_error)} malformed, "
              f"{sum(1 for m in messages if m.duplicate)} duplicates)")

        started = time.monotonic()
        asyncio.run(_produce(info.kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages]))
        ingest_url = f"http://127.0.0.1:{ports['ingest']}"
        total = len(messages)
        deadline = started + args.timeout
        handled = 0.0
        while time.monotonic() < deadline:
            values = _metrics(ingest_url)
            handled = sum(v for k, v in values.items() if k.startswith("yibao_events_handled_total{"))
            if handled >= total and values.get('yibao_outbox_pending{service="ingest"}', 0) == 0:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        values = _metrics(ingest_url)
        published = asyncio.run(_count_by_type(info.kafka_bootstrap, topic("his_events")))
        parked = asyncio.run(_parked(info.kafka_bootstrap, topic("dlq")))

        print(f"\nprocessed {int(handled)}/{total} change events in {elapsed:.1f}s "
              f"({handled / elapsed if elapsed else 0:.0f}/s)")
        print("canonical HIS events published (yibao.his.events.v1):")
        for kind, n in sorted(published.items()):
            print(f"  {kind:22} {n:6}")
        outcome = {k.split('outcome="')[1].split('"')[0]: int(v) for k, v in values.items()
                   if k.startswith("yibao_events_handled_total{")}
        print("ingest outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
        print(f"parked on the dead-letter topic (yibao.dlq.v1): {len(parked)}")
        for code, reason in parked:
            print(f"  [{code}] {reason[:110]}")
        ok = published == expected and int(handled) == total
        print("\nresult: " + ("every change accounted for" if ok else
                              f"MISMATCH: expected {dict(expected)}"))
        return 0 if ok else 1
    finally:
        processes.stop()
        stack.stop()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _produce(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, name: str, idle: float = 2.0) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    values: list[bytes] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                values.extend(r.value for r in records)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return values


async def _count_by_type(bootstrap: str, name: str) -> Counter[str]:
    return Counter(json.loads(v)["type"] for v in await _read_all(bootstrap, name))


async def _parked(bootstrap: str, name: str) -> list[tuple[str, str]]:
    return [(d["reason_code"], d["reason"]) for d in (json.loads(v) for v in await _read_all(bootstrap, name))]
