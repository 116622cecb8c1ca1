"""``yibao demo``: the whole bridge on the embedded default, fed a generated day of HIS activity.

Starts the embedded broker (Tansu) and SQLite — or whatever KAFKA_BOOTSTRAP / DATABASE_URL name, or a real
Kafka and PostgreSQL with ``--prefer real`` — the platform simulator and the workers (ingest, registration,
settlement) as real processes; produces a generated day of Debezium change events (outpatient visits and
inpatient stays with their charges, settlements, refunds and cancellations; a few malformed events and CDC
duplicates mixed in, as real connectors deliver them); waits until every HIS request has its answer; prints
what HIS got back, what was parked and why, throughput and chain latency, and checks the platform's ledger
against what HIS was told.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from yibao.core.kafka import create_topics
from yibao.core.topics import topic

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outpatients", type=int, default=120, help="outpatient visits in the generated day")
    parser.add_argument("--inpatients", type=int, default=12, help="inpatient stays in the generated day")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated day (same seed, same day)")
    parser.add_argument("--bad", type=int, default=1, help="malformed change events of each kind to mix in")
    parser.add_argument("--duplicates", type=int, default=20, help="change events the 'connector' sends twice")
    parser.add_argument("--fault", action="append", default=[], metavar="TARGET:KIND:PROB[:PARAM]",
                        help="a simulator fault, e.g. 2207:commit_then_timeout:0.05 (repeatable)")
    parser.add_argument("--prefer", choices=["embedded", "real"], default="embedded",
                        help="embedded: Tansu + SQLite (default); real: Kafka KRaft + PostgreSQL when available")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")


def run(args: argparse.Namespace) -> int:
    from yibao.core.db.migrations import upgrade
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack import start_stack
    from yibao.stack.bridge import LocalBridge

    workdir = Path(tempfile.mkdtemp(prefix="yibao-demo-"))
    print(f"yibao demo — work directory {workdir}")
    stack = start_stack(prefer=args.prefer, workdir=workdir)
    bridge: LocalBridge | None = None
    try:
        info = stack.info
        print(info.describe())
        upgrade(info.database_url)
        mapping = load_mapping("example-oracle-his")
        asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in mapping.topics()]))
        bridge = LocalBridge(info, workdir, sim_seed=args.seed, sim_faults=args.fault).start()
        print("simulator and workers ready: " + ", ".join(f"{n} :{w.port}" for n, w in bridge.workers.items())
              + (f"; simulator faults: {', '.join(args.fault)}" if args.fault else ""))

        day = _dt.date(2026, 11, 20)
        messages = generate_day(args.seed, day=day, outpatients=args.outpatients, inpatients=args.inpatients,
                                shape=CdcShape(decimal_mode="precise", schemas=True),
                                inject={k: args.bad for k in ("bad_json", "unknown_table", "missing_column",
                                                              "bad_date")} if args.bad else None,
                                duplicates=args.duplicates)
        requests = _requests(Ingestor(mapping), messages)
        print(f"HIS day {day}: {args.outpatients} outpatient visits, {args.inpatients} inpatient stays → "
              f"{len(messages)} change events ({sum(1 for m in messages if m.expect_error)} malformed, "
              f"{sum(1 for m in messages if m.duplicate)} duplicates); HIS requests: "
              + ", ".join(f"{k} {len(v)}" for k, v in requests.items()))

        started = time.monotonic()
        asyncio.run(_produce(info.kafka_bootstrap, [(m.topic, m.key, m.value) for m in messages]))
        results, elapsed = asyncio.run(_wait_for_answers(info.kafka_bootstrap, requests, started, args.timeout))
        return _report(bridge, requests, results, elapsed)
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


#: HIS requests the demo waits an answer for: event type → how its answer is recognised
_REQUESTS = {
    "patient_registered": "registration",
    "admission": "admission",
    "settlement_requested": "settlement",
    "refund_requested": "refund",
    "cancellation": "cancellation",
}
_FINAL = {
    "registration": {"registered", "self_pay", "rejected", "parked"},
    "admission": {"admitted", "self_pay", "rejected", "parked"},
    "settlement": {"settled", "rejected", "parked"},
    "refund": {"refunded", "rejected", "parked"},
    "cancellation": {"cancelled", "rejected", "parked", "self_pay"},
}


def _requests(ingestor: Any, messages: list[Any]) -> dict[str, set[tuple[str, str | None]]]:
    """(visit, HIS request id) of every request in the day, by kind (registrations are keyed by visit)."""
    found: dict[str, set[tuple[str, str | None]]] = {kind: set() for kind in _FINAL}
    for m in messages:
        if m.expect_error or m.value is None:
            continue
        for event in ingestor.ingest(m.topic, 0, 0, m.key, m.value).events:
            kind = _REQUESTS.get(event.type)
            if kind:
                found[kind].add((event.his_visit_id, getattr(event, "his_request_id", None)))
    return found


def _answered(kind: str, key: tuple[str, str | None], by_request: dict, by_visit: dict) -> Any:
    if key[1] is not None:
        result = by_request.get(key)
        return result if result is not None and result.kind in _FINAL[kind] else None
    for result in reversed(by_visit.get(key[0], [])):
        if result.kind in _FINAL[kind] and result.his_request_id is None:
            return result
    return None


async def _wait_for_answers(bootstrap: str, requests: dict, started: float, timeout: float) -> tuple[list, float]:
    from aiokafka import AIOKafkaConsumer

    from yibao.core.results import HisResult

    consumer = AIOKafkaConsumer(topic("his_results"), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    results: list[Any] = []
    by_request: dict[tuple[str, str], Any] = {}
    by_visit: dict[str, list[Any]] = {}
    total = sum(len(v) for v in requests.values())
    last_print = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    result = HisResult.model_validate_json(record.value)
                    result.__dict__["_ts"] = record.timestamp / 1000
                    results.append(result)
                    by_visit.setdefault(result.his_visit_id, []).append(result)
                    if result.his_request_id:
                        by_request[(result.his_visit_id, result.his_request_id)] = result
            answered = sum(1 for kind, keys in requests.items() for key in keys
                           if _answered(kind, key, by_request, by_visit) is not None)
            if time.monotonic() - last_print > 5:
                last_print = time.monotonic()
                print(f"  … {answered}/{total} HIS requests answered, {len(results)} results "
                      f"({time.monotonic() - started:.0f}s)", flush=True)
            if answered >= total:
                break
    finally:
        await consumer.stop()
    return results, time.monotonic() - started


def _report(bridge: Any, requests: dict, results: list, elapsed: float) -> int:
    from yibao.stack.audit import audit

    by_request = {(r.his_visit_id, r.his_request_id): r for r in results if r.his_request_id}
    by_visit: dict[str, list[Any]] = {}
    for r in results:
        by_visit.setdefault(r.his_visit_id, []).append(r)
    print(f"\nall HIS requests answered in {elapsed:.1f}s" if all(
        _answered(k, key, by_request, by_visit) for k, keys in requests.items() for key in keys)
        else f"\nNOT every HIS request was answered within {elapsed:.0f}s")
    print("HIS requests → what HIS got back:")
    unanswered = 0
    for kind, keys in requests.items():
        outcomes: Counter[str] = Counter()
        for key in keys:
            answer = _answered(kind, key, by_request, by_visit)
            outcomes[answer.kind if answer is not None else "no answer yet"] += 1
        unanswered += outcomes.get("no answer yet", 0)
        print(f"  {kind:13} {len(keys):5} → " + ", ".join(f"{k} {n}" for k, n in outcomes.most_common()))
        reasons: Counter[str] = Counter()
        for key in keys:
            answer = _answered(kind, key, by_request, by_visit)
            if answer is not None and answer.kind in ("rejected", "parked"):
                reasons[f"{answer.kind}: [{answer.reason_code}] {(answer.reason or '')[:90]}"] += 1
        for reason, n in reasons.most_common(5):
            print(f"      {n:3} × {reason}")

    metrics: dict[str, float] = {}
    for worker in bridge.workers.values():
        metrics.update(worker.metrics())
    resolved = Counter()
    for name, value in metrics.items():
        if name.startswith("yibao_unknown_outcomes_total{") and value:
            resolution = name.split('resolution="')[1].split('"')[0]
            resolved[resolution] += int(value)
    if resolved:
        print("unknown outcomes (lost answers) and how they were resolved: "
              + ", ".join(f"{k} {v}" for k, v in resolved.most_common()))
    parked: Counter[str] = Counter()
    for name, value in metrics.items():
        if name.startswith("yibao_dead_letters_total{") and value:
            parked[name.split('reason_code="')[1].split('"')[0]] += int(value)
    print(f"parked on the dead-letter topic: {sum(parked.values())} "
          + ", ".join(f"[{code}] {n}" for code, n in parked.most_common()))

    latencies = sorted(_chain_latency(results, by_visit))
    chains = sum(1 for r in results if r.kind in ("settled",))
    if latencies:
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"throughput: {chains} settlements in {elapsed:.1f}s ({chains / elapsed:.1f}/s); "
              f"visit latency, first HIS result to settlement: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")

    report = audit(results, bridge.admin("settlements"))
    print("platform ledger vs HIS: " + ("they agree; nothing settled twice" if report.ok else
                                        f"{len(report.problems)} PROBLEM(S)"))
    for problem in report.problems[:20]:
        print(f"  - {problem}")
    return 0 if report.ok and unanswered == 0 else 1


def _chain_latency(results: list, by_visit: dict) -> list[float]:
    """Per settled visit: from its first result (registration answered) to its settlement answer, seconds."""
    out = []
    for visit_results in by_visit.values():
        stamps = [r.__dict__.get("_ts") for r in visit_results]
        settled = [r.__dict__.get("_ts") for r in visit_results if r.kind == "settled"]
        if settled and stamps and stamps[0] is not None:
            out.append(max(0.0, settled[0] - stamps[0]))
    return out


async def _produce(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


