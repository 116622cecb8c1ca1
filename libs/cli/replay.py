"""``yibao replay``: put parked work back once its cause is fixed.

* ``yibao replay dlq`` — dead letters of *messages* (bad CDC events, unreadable facts): the original key and
  value are produced again to their source topic. A consumer group remembers what was replayed, so running it
  twice does not replay twice; ``--dry-run`` only lists. Letters parked in the ``parked_work`` table (when the
  dead-letter topic itself was unreachable) are replayed too and marked.
* ``yibao replay chains --service settlement [--visit ID]`` — parked *visits* (a chain that gave up after
  repeated failures): made ready again; the running worker drives them from where they stood.
* ``yibao replay uploads [--kind 4101] [--key K]`` — upload *records* the platform rejected or the scheduler
  parked (the platform's catalog was fixed, the target enabled …): each is sent once more by the running
  upload-scheduler (a record already pending again, or accepted, is left alone). A record HIS corrected needs no
  replay: its new revision goes by itself.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter

from sqlalchemy import update

from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.schema import parked_work
from yibao.core.deployment import Deployment, bind
from yibao.core.messaging.deadletter import DeadLetter, parked_letters
from yibao.core.messaging.depth import replay_group
from yibao.core.settings import CommonSettings
from yibao.core.topics import topic

__all__ = ["add_arguments", "run"]

CHAIN_SERVICES = ("registration", "settlement", "workinjury-sync", "upload-scheduler", "mobilepay", "counter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["dlq", "chains", "uploads"],
                        help="dlq: parked messages; chains: parked visits; uploads: rejected or parked upload records")
    parser.add_argument("--service", help="only this service's work (required for chains)")
    parser.add_argument("--reason-code", help="dlq: only letters with this reason code")
    parser.add_argument("--visit", help="chains: only this HIS visit id")
    parser.add_argument("--kind", help="uploads: only records of this kind (a lane: 4101, 3503, drg.mrpage …)")
    parser.add_argument("--key", help="uploads: only the record with this business key")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed, change nothing")
    parser.add_argument("--timeout", type=float, default=10.0, help="dlq: stop reading after this many idle seconds")


def run(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    if args.what == "chains":
        return _replay_chains(settings, args)
    if args.what == "uploads":
        return _replay_uploads(settings, args)
    return asyncio.run(_replay_dlq(settings, args))


def _replay_chains(settings: CommonSettings, args: argparse.Namespace) -> int:
    from yibao.chains.store import ChainStore

    if args.service not in CHAIN_SERVICES:
        print(f"--service must be one of {', '.join(CHAIN_SERVICES)}")
        return 2
    from yibao.core.deployment import Deployment, bind

    engine = bind(make_engine(settings.database_url), Deployment.from_settings(settings))  # this deployment's visits
    store = ChainStore(args.service)
    try:
        with engine.begin() as conn:
            if args.dry_run:
                counts = store.count_by_status(conn)
                print(f"{args.service}: {counts.get('parked', 0)} parked visit(s)")
                return 0
            n = store.unpark(conn, args.visit)
    finally:
        engine.dispose()
    print(f"{args.service}: {n} parked visit(s) made ready again")
    return 0


def _replay_uploads(settings: CommonSettings, args: argparse.Namespace) -> int:
    from yibao.upload_scheduler.store import replayable, requeue

    engine = bind(make_engine(settings.database_url), Deployment.from_settings(settings))
    try:
        with engine.begin() as conn:
            if args.dry_run:
                found = replayable(conn, kind=args.kind, key=args.key)
                for kind, status, n in found:
                    print(f"{kind}: {n} {status} record(s)")
                print(f"would send {sum(n for _, _, n in found)} upload record(s) once more")
                return 0
            picked = requeue(conn, kind=args.kind, key=args.key)
    finally:
        engine.dispose()
    by_kind = Counter(lane.split(":")[1] for lane, _ in picked)
    print(f"upload-scheduler: {len(picked)} record(s) will be sent once more: {dict(by_kind) or '-'}")
    return 0


async def _replay_dlq(settings: CommonSettings, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    dlq = topic("dlq", settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        dlq, **settings.kafka_access.client_options(), group_id=replay_group(settings.topic_prefix),
        auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(**settings.kafka_access.client_options(), acks="all")
    await consumer.start()
    await producer.start()
    replayed: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    try:
        idle_since = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - idle_since < args.timeout:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                continue
            idle_since = asyncio.get_running_loop().time()
            for records in batch.values():
                for record in records:
                    letter = DeadLetter.model_validate_json(record.value)
                    if not _wanted(letter, args) or letter.source_topic is None:
                        skipped[letter.reason_code] += 1
                        continue
                    if not args.dry_run:
                        await producer.send_and_wait(letter.source_topic, letter.value, key=letter.key)
                    replayed[letter.reason_code] += 1
            if not args.dry_run:
                await consumer.commit()
        replayed_db = 0 if args.dry_run else await _replay_table(settings, args, producer)
    finally:
        await consumer.stop()
        await producer.stop()
    verb = "would replay" if args.dry_run else "replayed"
    print(f"{verb} {sum(replayed.values())} dead letter(s): {dict(replayed) or '-'}; "
          f"left {sum(skipped.values())}: {dict(skipped) or '-'}; from the parked_work table: {replayed_db}")
    return 0


def _wanted(letter: DeadLetter, args: argparse.Namespace) -> bool:
    if args.service and letter.service != args.service:
        return False
    return not (args.reason_code and letter.reason_code != args.reason_code)


async def _replay_table(settings: CommonSettings, args: argparse.Namespace, producer) -> int:  # type: ignore[no-untyped-def]
    """Letters the dead-letter topic could not take were parked in the table: produce them and mark them."""
    engine = bind(make_engine(settings.database_url), Deployment.from_settings(settings))
    try:
        def pending() -> list[tuple[int, DeadLetter]]:
            with engine.connect() as conn:
                letters, unreadable = parked_letters(conn)
            if unreadable:
                print(f"{unreadable} parked row(s) could not be opened: sealed with a data key not configured here")
            return [(i, letter) for i, letter in letters if _wanted(letter, args) and letter.source_topic]

        letters = await asyncio.to_thread(pending)
        for _, letter in letters:
            await producer.send_and_wait(letter.source_topic, letter.value, key=letter.key)

        def mark() -> None:
            with engine.begin() as conn:
                conn.execute(update(parked_work).where(parked_work.c.id.in_([i for i, _ in letters]))
                             .values(replayed_at=clock.now()))

        if letters:
            await asyncio.to_thread(mark)
        return len(letters)
    finally:
        engine.dispose()
