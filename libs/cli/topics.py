"""``yibao topics create``: create every catalog topic (and the HIS mapping's CDC topics) — idempotent."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from yibao.core.kafka import catalog_topics, create_topics
from yibao.core.settings import CommonSettings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="Kafka bootstrap (default: KAFKA_BOOTSTRAP)")
    parser.add_argument("--with-cdc", action="store_true",
                        help="also create the CDC source topics named by the ingest service's HIS mapping, spelled "
                             "as the mapping spells them (normally the connector creates them, in its own spelling; "
                             "use this only where it cannot)")


def run(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    access = settings.kafka_access
    if args.bootstrap:
        access = dataclasses.replace(access, bootstrap=args.bootstrap)
    wanted = catalog_topics(settings.topic_prefix)
    if args.with_cdc:
        from yibao.ingest.settings import IngestSettings

        wanted += IngestSettings().cdc_topic_requests()
    created = asyncio.run(create_topics(access, wanted, replication_factor=settings.topic_replication_factor))
    for name, partitions, _ in wanted:
        state = "created" if name in created else "exists"
        print(f"{state:8} {name} ({partitions} partitions)")
    return 0
