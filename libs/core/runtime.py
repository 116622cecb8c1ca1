"""The worker runtime every service stands on: a faust app plus the things faust does not do for us.

* **Catch, retry, park.** An exception escaping a faust agent acks and drops the message. Every message is
  therefore handled through :meth:`ServiceRuntime.process`: an :class:`~yibao.core.errors.InputError` is parked
  at once (retrying cannot fix bad input); anything else is retried with exponential backoff and parked when the
  attempts are exhausted. Parking goes to the DLQ topic, else to the ``parked_work`` table, else it is retried
  until one of them works — the message is not acknowledged before it is processed or parked.
* **Database as the state store.** Units of work are synchronous SQLAlchemy transactions run in a thread
  (:meth:`ServiceRuntime.db`), with the inbox (dedup) and the outbox (results) inside the same transaction.
* **Outbox relay** as a faust task, woken after every commit.
* **/metrics, /healthz, /readyz** on the worker's web port (faust's aiohttp server).
* Topics and schema made sure of at start-up (both idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import faust
from sqlalchemy import Connection, text

from yibao.core import metrics
from yibao.core.db import make_engine
from yibao.core.db.schema import parked_work
from yibao.core.errors import InputError, YibaoError
from yibao.core.kafka import TopicRequest, catalog_topics, create_topics
from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.messaging.depth import dead_letter_topic_depth, parked_work_waiting
from yibao.core.messaging.outbox import OutboxMessage
from yibao.core.messaging.relay import OutboxRelay
from yibao.core.privacy import mask_text
from yibao.core.settings import CommonSettings
from yibao.core.topics import topic

__all__ = ["ServiceRuntime", "MessageContext"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class MessageContext:
    """Where a message came from: enough to park it byte for byte."""

    __slots__ = ("topic", "partition", "offset", "key", "value")

    def __init__(self, topic: str, partition: int | None, offset: int | None, key: bytes | None,
                 value: bytes | None) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value

    @classmethod
    def of(cls, event: Any) -> "MessageContext":
        m = event.message
        return cls(m.topic, m.partition, m.offset, m.key, m.value)


class ServiceRuntime:
    def __init__(self, settings: CommonSettings, *, name: str, extra_topics: list[TopicRequest] | None = None,
                 migrate: bool = True) -> None:
        self.settings = settings
        self.name = name
        self.engine = make_engine(settings.database_url)
        self.extra_topics = extra_topics or []
        self.migrate = migrate
        self.dlq_topic = topic("dlq", settings.topic_prefix)
        self._ready = False
        self._park_blocked = False
        datadir = Path(tempfile.gettempdir()) / f"yibao-faust-{name}"
        self.app = faust.App(
            f"{settings.topic_prefix}yibao-{name}",  # the consumer group: hospitals sharing a cluster stay apart
            broker=[f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(",")],
            value_serializer="raw",
            key_serializer="raw",
            web_host=settings.web_host,
            web_port=settings.port,
            web_in_thread=False,
            topic_allow_declare=False,
            topic_disable_leader=True,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
            broker_rebalance_timeout=max(30.0, settings.session_timeout_s * 3),
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            store="memory://",
            datadir=str(datadir),
            broker_commit_interval=1.0,
        )
        self.relay = OutboxRelay(self.engine, name, self._publish_batch)
        self._install_endpoints()
        self._install_lifecycle()

    # --- units of work ---------------------------------------------------------------------------------------

    async def db(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction, off the event loop. Wakes the relay afterwards."""

        def unit() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        result = await asyncio.to_thread(unit)
        self.relay.wake()
        return result

    # --- catch, retry, park -----------------------------------------------------------------------------------

    async def process(self, ctx: MessageContext, handle: Callable[[], Awaitable[str]]) -> str:
        """Handle one message; returns the outcome (processed/duplicate/skipped/parked). Never raises."""
        metrics.EVENTS_CONSUMED.labels(self.name, ctx.topic).inc()
        started = time.perf_counter()
        attempts = 0
        outcome = "parked"
        try:
            while True:
                attempts += 1
                try:
                    outcome = await handle()
                    break
                except InputError as exc:
                    await self.park(ctx, reason_code=exc.code, reason=str(exc), attempts=attempts,
                                    dlq_key=exc.dlq_key)
                    break
                except Exception as exc:  # transient until proven otherwise
                    kind = type(exc).__name__
                    if attempts >= self.settings.retry_attempts:
                        code = exc.code if isinstance(exc, YibaoError) else "exhausted"
                        await self.park(ctx, reason_code=code,
                                        reason=f"gave up after {attempts} attempts: {kind}: {mask_text(str(exc))}",
                                        attempts=attempts)
                        break
                    metrics.RETRIES.labels(self.name, kind).inc()
                    log.warning("transient failure, retrying", extra={"fields": {
                        "topic": ctx.topic, "partition": ctx.partition, "offset": ctx.offset, "error": kind,
                        "attempt": attempts}})
                    await asyncio.sleep(self.settings.retry_backoff_s * 2 ** (attempts - 1))
        finally:
            metrics.PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            metrics.EVENTS_HANDLED.labels(self.name, outcome).inc()
        return outcome

    async def park(self, ctx: MessageContext, *, reason_code: str, reason: str, attempts: int = 1,
                   event_id: str | None = None, dlq_key: str | None = None) -> None:
        """Dead-letter a message. Does not return until the dead letter is stored somewhere durable. The dead
        letter keeps the original key; ``dlq_key`` (the HIS visit id, when known) keys the DLQ record."""
        letter = DeadLetter.of(service=self.name, reason_code=reason_code, reason=mask_text(reason),
                               topic=ctx.topic, partition=ctx.partition, offset=ctx.offset, key=ctx.key,
                               value=ctx.value, attempts=attempts, event_id=event_id)
        delay = 0.5
        while True:
            try:
                key = dlq_key.encode() if dlq_key else ctx.key
                await self.app.producer.send_and_wait(self.dlq_topic, key, letter.to_bytes(), None, None, None)
                break
            except Exception as exc:
                log.error("dead-letter topic unavailable, parking in the database", extra={"fields": {"error": type(exc).__name__}})
            try:
                await self.db(lambda conn: conn.execute(parked_work.insert().values(
                    service=self.name, reason_code=reason_code, reason=letter.reason, source_topic=ctx.topic,
                    source_partition=ctx.partition, source_offset=ctx.offset,
                    msg_key=ctx.key.decode(errors="replace") if ctx.key else None,
                    payload=letter.model_dump_json(), created_at=letter.failed_at)))
                break
            except Exception as exc:
                self._park_blocked = True
                log.critical("cannot park a message anywhere; holding it and retrying",
                             extra={"fields": {"error": type(exc).__name__}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
        self._park_blocked = False
        metrics.DEAD_LETTERS.labels(self.name, reason_code).inc()
        log.warning("message parked", extra={"fields": {
            "reason_code": reason_code, "reason": letter.reason, "topic": ctx.topic, "partition": ctx.partition,
            "offset": ctx.offset}})

    # --- publishing -------------------------------------------------------------------------------------------

    async def _publish_batch(self, batch: list[OutboxMessage]) -> None:
        producer = self.app.producer
        futures = [await producer.send(m.topic, m.key, m.value, None, None, m.headers or None) for m in batch]
        await asyncio.gather(*futures)

    # --- lifecycle, endpoints ---------------------------------------------------------------------------------

    def _install_lifecycle(self) -> None:
        runtime = self

        @self.app.task
        async def _start() -> None:
            runtime._ready = True
            metrics.WORKER_READY.labels(runtime.name).set(1)
            log.info("worker started", extra={"fields": {"service": runtime.name}})

        @self.app.task
        async def _relay() -> None:
            await runtime.relay.run()

        @self.app.timer(interval=self.settings.dlq_depth_interval_s)
        async def _dlq_depth() -> None:
            await runtime.measure_dlq_depth()

    async def measure_dlq_depth(self) -> None:
        """Set ``yibao_dlq_depth``; a broker or database that does not answer leaves the last figure standing."""
        try:
            on_topic = await dead_letter_topic_depth(self.settings.kafka_bootstrap, self.settings.topic_prefix)
            in_table = await asyncio.to_thread(self._parked_waiting)
        except Exception as exc:  # a metric must never stop the worker
            log.warning("dead-letter depth not measured", extra={"fields": {
                "service": self.name, "error": type(exc).__name__}})
            return
        metrics.DLQ_DEPTH.labels("topic").set(on_topic)
        metrics.DLQ_DEPTH.labels("table").set(in_table)

    def _parked_waiting(self) -> int:
        with self.engine.connect() as conn:
            return parked_work_waiting(conn)

    async def prepare(self) -> None:
        """Before the faust app starts: schema and topics exist (both idempotent)."""
        if self.migrate:
            from yibao.core.db.migrations import upgrade

            await asyncio.to_thread(upgrade, self.settings.database_url)
        await create_topics(self.settings.kafka_bootstrap,
                            catalog_topics(self.settings.topic_prefix) + self.extra_topics,
                            replication_factor=self.settings.topic_replication_factor)

    def _install_endpoints(self) -> None:
        runtime = self

        @self.app.page("/metrics")
        async def _metrics(web: Any, request: Any) -> Any:
            return web.bytes(metrics.render(), content_type="text/plain")

        @self.app.page("/healthz")
        async def _health(web: Any, request: Any) -> Any:
            return web.json({"status": "ok", "service": runtime.name})

        @self.app.page("/readyz")
        async def _ready(web: Any, request: Any) -> Any:
            problems = []
            if not runtime._ready:
                problems.append("not started")
            if runtime._park_blocked:
                problems.append("cannot park messages")
            try:
                await asyncio.to_thread(runtime._ping_db)
            except Exception as exc:
                problems.append(f"database: {type(exc).__name__}")
            ready = not problems
            metrics.WORKER_READY.labels(runtime.name).set(1 if ready else 0)
            return web.json({"ready": ready, "service": runtime.name, "problems": problems},
                            status=200 if ready else 503)

    def _ping_db(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (blocking). Logging is ours, not faust's."""
        from faust.worker import Worker

        from yibao.core.logs import configure_logging

        configure_logging(self.name, level=self.settings.log_level, json_lines=self.settings.log_json)
        asyncio.run(self.prepare())
        worker = Worker(self.app, loglevel=self.settings.log_level, override_logging=False,
                        redirect_stdouts=False, quiet=True, daemon=True)
        worker.execute_from_commandline()
        return 0
