"""Which CDC topics the ingest worker consumes, and saying so when they are not there.

The connector names the topics (``<topic.prefix>.<schema>.<table>``, in the database's own case: Oracle upper,
PostgreSQL lower unless quoted), not the mapping file. At start the worker lists the broker's topics and matches
the mapping's (or ``YIBAO_INGEST_CDC_TOPICS``') names against them case-insensitively
(:func:`yibao.hisevents.mapping.resolve_topics`). The worker never creates a CDC topic itself: a table whose
topic does not exist yet (the connector creates it with the table's first row) is subscribed under its wanted
name, logged as a warning and counted in ``yibao_ingest_cdc_topics_missing``; the check runs again every
``cdc_topic_check_s`` and says (ERROR) when a topic turned up under another spelling than the one subscribed,
which needs a restart of the worker to be consumed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

from yibao.core.errors import StackError
from yibao.core.kafka import KafkaAccess, Reach
from yibao.hisevents.mapping import HisMapping, TopicResolution, resolve_topics

__all__ = ["CDC_TOPICS_MISSING", "CdcSubscription", "list_topics"]

log = logging.getLogger(__name__)

CDC_TOPICS_MISSING = Gauge(
    "yibao_ingest_cdc_topics_missing",
    "CDC topics the ingest worker is subscribed to that the broker does not have (yet), plus topics that turned "
    "up under another spelling than the one subscribed (restart the worker to consume them)",
)


async def list_topics(reach: Reach, *, timeout: float = 30) -> set[str]:
    access = KafkaAccess.of(reach)
    admin = AIOKafkaAdminClient(**access.client_options(), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except Exception as exc:
        raise StackError(f"cannot reach Kafka at {access.describe()} to list the CDC topics: "
                         f"{type(exc).__name__}") from exc
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@dataclass
class CdcSubscription:
    """The resolved subscription of one ingest worker (fixed for its lifetime) and its periodic check."""

    bootstrap: Reach
    wanted: tuple[str, ...]
    resolution: TopicResolution
    _reported: set[str] = field(default_factory=set)
    _problems: int = 0

    @classmethod
    def resolve(cls, bootstrap: Reach, mapping: HisMapping, explicit: list[str] | None = None) -> CdcSubscription:
        wanted = tuple(explicit) if explicit else tuple(mapping.topics())
        try:
            existing = _run(list_topics(bootstrap))
        except StackError:
            # the broker does not answer yet: consume the names as given; the periodic check will tell
            return cls(bootstrap, wanted, TopicResolution(tuple(sorted(set(wanted)))))
        return cls(bootstrap, wanted, resolve_topics(wanted, existing))

    @property
    def topics(self) -> tuple[str, ...]:
        return self.resolution.topics

    def report_start(self) -> None:
        """Log what was resolved at start (once logging is set up) and publish the gauge."""
        logging.getLogger("aiokafka.cluster").addFilter(_MissingTopicFilter(self))
        for wanted, actual in self.resolution.respelled:
            log.info("CDC topic found under the connector's spelling", extra={"fields": {
                "wanted": wanted, "topic": actual}})
        for name in self.resolution.missing:
            log.warning("CDC topic does not exist (yet): subscribed under the mapping's name and waiting for the "
                        "connector to create it; if the connector spells it differently, fix the table name in the "
                        "mapping (or YIBAO_INGEST_CDC_TOPICS) and restart", extra={"fields": {"topic": name}})
        self._problems = len(self.resolution.missing)
        CDC_TOPICS_MISSING.set(self._problems)

    async def check(self) -> int:
        """List the broker's topics again; returns (and publishes) how many subscribed topics are unusable."""
        try:
            existing = await list_topics(self.bootstrap)
        except StackError as exc:
            log.warning("CDC topics not checked", extra={"fields": {"error": str(exc)}})
            return self._problems  # the last figure stands
        now = resolve_topics(self.wanted, existing)
        subscribed = set(self.topics)
        problems = 0
        for name in now.missing:
            problems += 1
            if name not in self._reported:
                log.warning("CDC topic still does not exist", extra={"fields": {"topic": name}})
                self._reported.add(name)
        for wanted, actual in now.respelled:
            if actual in subscribed:
                continue
            problems += 1
            if actual not in self._reported:
                log.error("CDC topic exists under another spelling than the one this worker subscribed to; its "
                          "records are NOT consumed until the worker restarts", extra={"fields": {
                              "wanted": wanted, "topic": actual}})
                self._reported.add(actual)
        self._problems = problems
        CDC_TOPICS_MISSING.set(problems)
        return problems


class _MissingTopicFilter(logging.Filter):
    """aiokafka logs an ERROR for a subscribed topic missing from the metadata at every metadata refresh; the
    worker reports its missing CDC topics itself (warning once, the gauge always), so those lines are dropped."""

    def __init__(self, subscription: CdcSubscription) -> None:
        super().__init__()
        self.topics = frozenset(subscription.topics)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "Topic %s not found in cluster metadata" and record.args
                    and record.args[0] in self.topics)  # type: ignore[index]


def _run(coro):  # type: ignore[no-untyped-def]
    """Run a coroutine from synchronous start-up code, also when an event loop is already running (tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
