"""``yibao demo``: the whole bridge on the embedded default, fed a generated day of HIS activity.

Starts the embedded broker (Tansu) and SQLite — or whatever KAFKA_BOOTSTRAP / DATABASE_URL name, or a real
Kafka and PostgreSQL with ``--prefer real`` — the platform simulator and the workers (ingest, registration,
settlement) as real processes; produces a generated day of Debezium change events (outpatient visits and
inpatient stays with their charges, settlements, refunds and cancellations; a few malformed events and CDC
duplicates mixed in, as real connectors deliver them); waits until every HIS request has its answer; prints
what HIS got back, the simulator's faults (``--fault``) and how each lost answer was resolved, what was parked and
why, throughput and chain latency, and checks the platform's ledger against what HIS was told. Then mobile pay
(yibao.cli.mobilepay_demo: channels paying through the mobilepay worker) and the uploads (yibao.cli.uploads_demo:
the upload-scheduler sends what HIS owes the national platform and the other targets, per record; the daily
summary ops read, refusals by reason, the catalogs in force). ``--workinjury`` then plays a month of cross-province
work-injury stays through the workinjury-sync worker and prints its SLA figures (services/workinjury-sync/demo.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import shutil
import tempfile
import time
import unicodedata
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
    parser.add_argument("--workinjury", action="store_true",
                        help="then a month of cross-province work-injury stays (工伤) through the workinjury-sync "
                             "worker, with its SLA figures (adds a few minutes)")


def run(args: argparse.Namespace) -> int:
    from yibao.core.db.migrations import upgrade
    from yibao.fakedata.cdc import CdcShape
    from yibao.fakedata.his import generate_day
    from yibao.hisevents import Ingestor, load_mapping
    from yibao.stack import start_stack
    from yibao.cli import mobilepay_demo, uploads_demo
    from yibao.stack.bridge import CHAIN_SERVICES, LocalBridge

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
        # a lost reply is held 5 s (not the platform's 30-60 s) so that a demo with faults stays short
        bridge = LocalBridge(info, workdir, sim_seed=args.seed, sim_faults=args.fault,
                             services=(*CHAIN_SERVICES, "mobilepay", uploads_demo.SERVICE),
                             env={"YIBAO_SIM_HOLD_S": "5"})
        mobilepay_demo.prepare(bridge, workdir)  # its keys, channels and callback address, before it starts
        uploads_demo.prepare(bridge, workdir)  # the targets, their credentials, every lane realtime
        bridge.start()
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
        status = _report(bridge, requests, results, elapsed, malformed=sum(1 for m in messages if m.expect_error))
        print("\nmobile pay (医保移动支付): the hospital's channels pay through the mobilepay worker")
        for line in asyncio.run(mobilepay_demo.run(bridge, seed=args.seed)):
            print(line)
        print("\nuploads (数据上传): what HIS owes the platforms after the day, sent per record by the upload-scheduler")
        for line in asyncio.run(uploads_demo.run(bridge, seed=args.seed)):
            print(line)
        if args.workinjury:
            bridge.stop()  # the national day's workers make room for the work-injury month's
            bridge = None
            print()
            status = max(status, _workinjury(info, workdir, args))
        return status
    finally:
        if bridge is not None:
            bridge.stop()
        stack.stop()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _workinjury(info: Any, workdir: Path, args: argparse.Namespace) -> int:
    """``--workinjury``: a generated month of cross-province work-injury stays through its own simulator and the
    workinjury-sync worker (services/workinjury-sync/demo.py), on the same broker and database; its SLA figures."""
    from yibao.workinjury_sync import demo as workinjury_demo

    where = workdir / "workinjury"
    where.mkdir(exist_ok=True)
    return workinjury_demo.run(info, where, seed=args.seed, timeout=args.timeout)


def _requests(ingestor: Any, messages: list[Any]) -> dict[str, set[tuple[str, str | None]]]:
    """(visit, HIS request id) of every request in the day, by kind (registrations are keyed by visit)."""
    from yibao.stack.audit import his_requests

    return his_requests(ingestor, messages)


async def _wait_for_answers(bootstrap: str, requests: dict, started: float, timeout: float, *,
                            prefix: str = "", quiet: bool = False) -> tuple[list, float]:
    """Read HisResults until every request has its final answer (or ``timeout`` seconds since ``started``)."""
    from aiokafka import AIOKafkaConsumer

    from yibao.core.results import HisResult
    from yibao.stack.audit import Answers

    consumer = AIOKafkaConsumer(topic("his_results", prefix), bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    answers = Answers()
    total = sum(len(v) for v in requests.values())
    last_print = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    result = HisResult.model_validate_json(record.value)
                    result.__dict__["_ts"] = record.timestamp / 1000
                    answers.add(result)
            answered = total - len(answers.unanswered(requests))
            if not quiet and time.monotonic() - last_print > 5:
                last_print = time.monotonic()
                print(f"  … {answered}/{total} HIS requests answered, {len(answers.results)} results "
                      f"({time.monotonic() - started:.0f}s)", flush=True)
            if answered >= total:
                break
    finally:
        await consumer.stop()
    return answers.results, time.monotonic() - started


#: how a lost answer was resolved (yibao_unknown_outcomes_total{resolution}), in words for the hospital's IT team
_RESOLVED = {
    "adopted": "done by the platform, adopted",
    "absent": "not done by the platform, sent again",
    "reversed": "reversed by 2601 冲正, sent again",
    "nothing_done": "not done (2601 冲正 confirmed), sent again",
    "retried": "sent again (it changes nothing)",
    "manual": "parked for a person",
}
_KIND_WORDS = {"registration": "registrations", "admission": "admissions", "settlement": "settlements",
               "refund": "refunds", "cancellation": "cancellations"}


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (a CJK character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
    return text + " " * max(1, width - used)


def _labels(name: str) -> dict[str, str]:
    """The labels of one Prometheus sample name (``metric{a="x",b="y"}``)."""
    inside = name.split("{", 1)[1].rstrip("}") if "{" in name else ""
    out = {}
    for part in inside.split('",'):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip().strip('"')
    return out


def _metric_sums(bridge: Any, metric: str, *keys: str) -> Counter[tuple[str, ...]]:
    sums: Counter[tuple[str, ...]] = Counter()
    for worker in bridge.workers.values():
        for name, value in worker.metrics().items():
            if name.startswith(metric + "{") and value:
                labels = _labels(name)
                sums[tuple(labels.get(k, "") for k in keys)] += int(value)
    return sums


def _faults_report(bridge: Any) -> list[str]:
    """Per transaction: the faults the simulator threw, the answers lost and how each was resolved."""
    from yibao.envelope.catalog import Catalog

    try:
        injected = bridge.admin("counters").get("faults", {})
    except Exception:  # the simulator's counters are a nicety of the summary, not a result
        injected = {}
    lost = _metric_sums(bridge, "yibao_unknown_outcomes_total", "infno", "resolution")
    refused = _metric_sums(bridge, "yibao_platform_calls_total", "infno", "outcome")
    by_infno: dict[str, dict[str, Any]] = {}
    for key, n in injected.items():
        target, _, kind = key.partition(":")
        by_infno.setdefault(target, {}).setdefault("faults", Counter())[kind] += n
    for (infno, resolution), n in lost.items():
        by_infno.setdefault(infno, {}).setdefault("lost", Counter())[resolution] += n
    for (infno, outcome), n in refused.items():
        if outcome == "transport":
            by_infno.setdefault(infno, {}).setdefault("transport", 0)
            by_infno[infno]["transport"] += n
    catalog = Catalog.load(None)
    lines = []
    for infno in sorted(by_infno):
        entry = by_infno[infno]
        name = catalog.transaction(infno).name if infno in catalog else ""
        faults = ", ".join(f"{kind} ×{n}" for kind, n in sorted(entry.get("faults", Counter()).items()))
        parts = []
        outcomes = entry.get("lost", Counter())
        unknown = outcomes.pop("unresolved", 0)
        if unknown:
            done = "; ".join(f"{n} {_RESOLVED.get(r, r)}" for r, n in outcomes.most_common())
            parts.append(f"{unknown} answer{'s' if unknown > 1 else ''} lost: {done or 'still being resolved'}")
        if entry.get("transport"):
            n = entry["transport"]
            parts.append(f"{n} refused before reaching the platform: sent again")
        if faults or parts:
            lines.append(f"  {infno} {_pad(name, 22)}{faults or 'no fault injected'}")
            lines.append(f"  {'':27}→ {'; '.join(parts) or 'retried by the platform client; no chain affected'}")
    return lines


def _outcomes_line(bridge: Any, results: list, letters: int) -> str:
    """The day in one line: what the chains ended with, how many 2601 冲正 the bridge sent to resolve lost
    answers, and what was parked (``letters``: change events on the dead-letter topic)."""
    kinds = Counter(r.kind for r in results)
    lost = _metric_sums(bridge, "yibao_unknown_outcomes_total", "resolution")
    reversed_ = sum(n for (resolution,), n in lost.items() if resolution in ("reversed", "nothing_done"))
    return (f"outcomes: settled {kinds['settled']} · refunded {kinds['refunded']} · cancelled {kinds['cancelled']}"
            f" · rejected {kinds['rejected']} · reversed by 2601 冲正 {reversed_}"
            f" · parked {kinds['parked'] + letters} ({kinds['parked']} chains, {letters} change events)")


def _report(bridge: Any, requests: dict, results: list, elapsed: float, *, malformed: int = 0) -> int:
    from yibao.stack.audit import Answers, audit

    answers = Answers(results)
    by_visit: dict[str, list[Any]] = {}
    for r in results:
        by_visit.setdefault(r.his_visit_id, []).append(r)
    total = sum(len(keys) for keys in requests.values())
    unanswered = len(answers.unanswered(requests))
    print(f"\nall {total} HIS requests answered in {elapsed:.1f}s" if not unanswered
          else f"\n{unanswered} of {total} HIS requests NOT answered within {elapsed:.0f}s")
    print("\nwhat HIS asked → what HIS got back")
    refused = 0
    for kind, keys in requests.items():
        outcomes: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for key in keys:
            answer = answers.answer(kind, key)
            outcomes[answer.kind.replace("_", "-") if answer is not None else "no answer yet"] += 1
            if answer is not None and answer.kind in ("rejected", "parked"):
                refused += 1
                reasons[f"{answer.kind} [{answer.reason_code}] {(answer.reason or '')[:100]}"] += 1
        print(f"  {_KIND_WORDS.get(kind, kind):14} {len(keys):4}  "
              + " · ".join(f"{k} {n}" for k, n in outcomes.most_common()))
        for reason, n in reasons.most_common(5):
            print(f"        {n:3} × {reason}")

    letters = _metric_sums(bridge, "yibao_dead_letters_total", "reason_code")
    print("  " + _outcomes_line(bridge, results, sum(letters.values())))

    faults = _faults_report(bridge)
    if faults:
        print("\nplatform faults (simulator) → how the bridge resolved them (never a settlement sent twice)")
        for line in faults:
            print(line)
    if letters:
        print(f"\nparked on the dead-letter topic for a person: {sum(letters.values())} "
              f"({', '.join(f'{code} {n}' for (code,), n in letters.most_common())})"
              + (f" — the demo mixed {malformed} malformed change events in on purpose" if malformed else ""))

    latencies = sorted(_chain_latency(results, by_visit))
    chains = sum(1 for r in results if r.kind == "settled")
    if latencies:
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"throughput: {chains} settlements in {elapsed:.1f}s ({chains / elapsed:.1f}/s); chain latency "
              f"(first HIS result → settlement): p50 {p50:.1f} s, p99 {p99:.1f} s")

    twice = [(kind, key) for kind, keys in requests.items() for key in keys if answers.distinct_answers(kind, key) > 1]
    report = audit(results, bridge.admin("settlements"))
    report.problems += [f"{kind} {key[1] or key[0]} was answered {answers.distinct_answers(kind, key)} times"
                        for kind, key in twice]
    print("\nplatform ledger vs HIS: " + ("they agree; nothing settled twice" if report.ok else
                                          f"{len(report.problems)} PROBLEM(S)"))
    for problem in report.problems[:20]:
        print(f"  - {problem}")
    if refused:
        print(f"{refused} HIS requests were refused or parked: see the reasons above")
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


