"""Kafka plumbing shared by the workers and the CLI: how to reach the broker, topic creation, a plain producer.

How to reach the broker is one value, :class:`KafkaAccess`: the bootstrap servers and the security of the
connection (plain, or SASL SCRAM as the Strimzi ``KafkaUser`` of each service has it, optionally over TLS). Every
client the project makes — faust's, the admin clients, producers and consumers of the CLI — takes its options from
it (``client_options()``); a bare ``"host:port"`` string means a plain connection (the demo, the tests).

Topics are created up front and idempotently (an existing topic is left alone): the embedded broker would
otherwise auto-create them with 4 partitions, and production clusters usually forbid auto-creation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from yibao.core.errors import StackError
from yibao.core.topics import CATALOG, TopicSpec

__all__ = ["KafkaSecurity", "KafkaAccess", "Reach", "create_topics", "catalog_topics", "make_producer",
           "TopicRequest", "deliver_in_order"]

log = logging.getLogger(__name__)

Protocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
Mechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaSecurity:
    """The security of a connection to the broker. ``password`` never appears in repr, logs or errors."""

    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: CA bundle that signed the broker's certificate (SSL, SASL_SSL); unset: the system's
    cafile: str | None = None

    def __post_init__(self) -> None:
        if self.sasl and not (self.username and self.password):
            raise ValueError(f"kafka_security_protocol {self.protocol} needs kafka_sasl_username and "
                             "kafka_sasl_password (the service's Kafka user and its password)")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.cafile) if self.tls else None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def faust_credentials(self) -> Any:
        """The same for faust (its ``broker_credentials``), None for a plain connection."""
        import faust

        if self.sasl:
            return faust.SASLCredentials(username=self.username, password=self.password, mechanism=self.mechanism,
                                         ssl_context=self.ssl_context())
        if self.tls:
            return faust.SSLCredentials(self.ssl_context())
        return None

    def describe(self) -> str:
        return self.protocol + (f" {self.mechanism} as {self.username}" if self.sasl else "")


@dataclass(frozen=True)
class KafkaAccess:
    """Where the broker is and how to connect to it."""

    bootstrap: str
    security: KafkaSecurity = KafkaSecurity()

    @classmethod
    def of(cls, reach: "Reach") -> "KafkaAccess":
        return reach if isinstance(reach, KafkaAccess) else cls(reach)

    @property
    def servers(self) -> list[str]:
        return [b.strip() for b in self.bootstrap.split(",") if b.strip()]

    def client_options(self) -> dict[str, Any]:
        """``bootstrap_servers`` and the security options, for any aiokafka client."""
        return {"bootstrap_servers": self.bootstrap, **self.security.client_options()}

    def describe(self) -> str:
        return f"{self.bootstrap} ({self.security.describe()})"


#: a broker to reach: a KafkaAccess, or a bare "host:port[,host:port]" (a plain connection)
Reach = KafkaAccess | str

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


async def create_topics(reach: Reach, topics: Iterable[TopicRequest], *, timeout: float = 30,
                        replication_factor: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Safe to run again and again."""
    access = KafkaAccess.of(reach)
    wanted = list(topics)
    admin = AIOKafkaAdminClient(**access.client_options(), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaError, asyncio.TimeoutError, OSError) as exc:
        raise StackError(f"cannot reach Kafka at {access.describe()}: {type(exc).__name__}: {exc}") from exc
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


def make_producer(reach: Reach, *, idempotent: bool = False, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **KafkaAccess.of(reach).client_options(), acks="all", enable_idempotence=idempotent,
        **{"linger_ms": 5, "request_timeout_ms": 30000, **options},
    )


def deliver_in_order(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """Make ``producer`` keep every batch until the broker takes it: no send of it fails for taking too long.

    aiokafka fails a batch that has waited longer than ``request_timeout_ms`` (for a partition without a leader,
    or after a failed attempt) while the batches behind it still wait — so when the broker comes back between
    their deadlines, a later message of a partition is delivered and an earlier one is not. The outbox relay then
    sends the earlier one again, after the later one: a consumer reads one visit's changes out of order (a broker
    restart longer than the timeout did this to the canonical HIS events). Batches that never expire keep
    aiokafka's own order (one batch per partition in flight, a failed one retried before the next): everything
    arrives, in order, once the broker is back. The network timeout is untouched — an unanswered request is
    retried — and a relay waiting on the broker says so in readiness (``OutboxRelay.blocked``). Errors that are
    not retriable (a message too large) still fail at once.

    aiokafka has no option for this; it is the accumulator's batch lifetime. Checked when set: a release of
    aiokafka without it fails here, loudly, rather than silently reordering again."""
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is None or not hasattr(accumulator, "_batch_ttl"):
        raise StackError("this aiokafka release has no batch lifetime to lift (AIOKafkaProducer."
                         "_message_accumulator._batch_ttl): the outbox relay cannot keep messages in order")
    if accumulator._batch_ttl != math.inf:
        accumulator._batch_ttl = math.inf
    return producer
