"""Kafka plumbing shared by the workers and the CLI: topic creation and a plain producer.

Topics are created up front and idempotently (an existing topic is left alone): the embedded broker would
otherwise auto-create them with 4 partitions, and production clusters usually forbid auto-creation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from yibao.core.errors import StackError
from yibao.core.topics import CATALOG, TopicSpec

__all__ = ["create_topics", "catalog_topics", "make_producer", "TopicRequest"]

log = logging.getLogger(__name__)

TopicRequest = tuple[str, int, dict[str, str]]


def catalog_topics(prefix: str = "", specs: Iterable[TopicSpec] = CATALOG) -> list[TopicRequest]:
    requests: list[TopicRequest] = []
    for spec in specs:
        config: dict[str, str] = {}
        if spec.retention_ms is not None:
            config["retention.ms"] = str(spec.retention_ms)
        if spec.compacted:
            config["cleanup.policy"] = "compact"
        requests.append((spec.full_name(prefix), spec.partitions, config))
    return requests


async def create_topics(bootstrap: str, topics: Iterable[TopicRequest], *, timeout: float = 30,
                        replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Safe to run again and again."""
    wanted = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaError, asyncio.TimeoutError, OSError) as exc:
        raise StackError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        for name, partitions, config in wanted:
            if name in existing:
                continue
            try:
                await admin.create_topics([NewTopic(name, partitions, replication_factor,
                                                    topic_configs=config or None)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        # wait until metadata shows them, so consumers started right after see every partition
        for _ in range(100):
            if set(n for n, _, _ in wanted) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return created


def make_producer(bootstrap: str, *, idempotent: bool = False) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=idempotent, linger_ms=5,
        request_timeout_ms=30000,
    )
