"""The worker runtime every service stands on: a faust app plus the things faust does not do for us.

* **Catch, classify, act.** An exception escaping a faust agent acks and drops the message. Every message is
  therefore handled through :meth:`ServiceRuntime.process`, which acts on the kind
  :func:`yibao.core.failures.classify` gives the failure: bad input is parked at once (retrying cannot fix it);
  an **outage** (the database or the broker unreachable) makes the consumer wait with a capped backoff — no
  attempt is spent, nothing is parked, ``/readyz`` says why, and the same message goes through once the
  resource is back; anything else is retried with exponential backoff and parked when the attempts are
  exhausted. Parking goes to the DLQ topic, else to the ``parked_work`` table, else it waits until one of them
  works — the message is not acknowledged before it is processed or parked.
* **Database as the state store.** Units of work are synchronous SQLAlchemy transactions run in a thread
  (:meth:`ServiceRuntime.db`), with the inbox (dedup) and the outbox (results) inside the same transaction. The
  engine is bound to the deployment (topic prefix, data cipher; :mod:`yibao.core.deployment`), so the inbox,
  the outbox and parked work of deployments sharing a database stay apart and personal data is sealed at rest.
* **Outbox relay** as a faust task, woken after every commit that wrote outbox rows; a row the broker refuses for
  good is parked and the rest flow.
* **Retention**: a timer purges what the retention policy says is old enough (:mod:`yibao.core.retention`).
* **/metrics, /healthz, /readyz** on the worker's web port (faust's aiohttp server).
* Topics and schema made sure of at start-up (both idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from urllib.parse import urlsplit
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import faust
from sqlalchemy import Connection, text

from yibao.core import metrics
from yibao.core.db import make_engine
from yibao.core.deployment import Deployment, bind
from yibao.core.errors import OutageError
from yibao.core.failures import BROKER, FailureKind, OutageWatch, classify
from yibao.core.kafka import TopicRequest, catalog_topics, create_topics, deliver_in_order
from yibao.core.messaging.deadletter import DeadLetter, park_in_table
from yibao.core.messaging.depth import dead_letter_topic_depth, parked_work_waiting
from yibao.core.messaging.outbox import WROTE_OUTBOX, OutboxMessage
from yibao.core.messaging.relay import BatchPartlySent, OutboxRelay
from yibao.core.privacy import mask_text
from yibao.core.settings import CommonSettings
from yibao.core.topics import topic
from yibao.core.web import error_middleware

__all__ = ["ServiceRuntime", "MessageContext", "arrived_batches"]

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


async def arrived_batches(stream: Any, max_: int) -> AsyncIterator[list[Any]]:
    """The events of a faust stream in batches of what has already arrived: a batch is handed on as soon as its
    first event is here, with every event queued behind it (at most ``max_``) — it never waits for more. One message
    at a time goes on at once; a burst queues up while a batch is handled and is taken in batches.

    Events are acknowledged only after the caller has handled their batch (the loop body ran without raising), so an
    offset is never committed for a message that was not processed."""
    manual = stream.noack()
    queue = manual.channel.queue
    batch: list[Any] = []
    async for event in manual.events():
        batch.append(event)
        if len(batch) < max_ and not queue.empty():
            continue
        taken, batch = batch, []
        yield taken
        for handled in taken:
            await manual.ack(handled)


class ServiceRuntime:
    def __init__(self, settings: CommonSettings, *, name: str, extra_topics: list[TopicRequest] | None = None,
                 migrate: bool = True) -> None:
        self.settings = settings
        self.name = name
        self.deployment = Deployment.from_settings(settings)
        #: bound to the deployment: inbox/outbox names scoped by the topic prefix, payloads sealed at rest
        self.engine = bind(make_engine(settings.database_url), self.deployment)
        self.extra_topics = extra_topics or []
        self.migrate = migrate
        self.dlq_topic = topic("dlq", settings.topic_prefix)
        self._ready = False
        self._readiness_checks = 0  # numbers each readiness check, so a slow one cannot overwrite a newer verdict
        self._readiness_shown = 0
        #: what the worker is waiting for (database, broker), for /readyz and yibao_outage
        self.outages = OutageWatch(name, backoff_s=settings.outage_backoff_s,
                                   backoff_max_s=settings.outage_backoff_max_s)
        self._broker_probe: tuple[float, str | None] = (0.0, None)
        datadir = Path(tempfile.gettempdir()) / f"yibao-faust-{name}"
        self.app = faust.App(
            f"{settings.topic_prefix}yibao-{name}",  # the consumer group: hospitals sharing a cluster stay apart
            broker=[f"kafka://{b}" for b in settings.kafka_access.servers],
            broker_credentials=settings.kafka_access.security.faust_credentials(),
            value_serializer="raw",
            key_serializer="raw",
            web_host=settings.web_host,
            web_port=settings.port,
            web_in_thread=False,
            # only our endpoints: faust's /router and /table (cluster topology, table keys) are not served
            web_router_enabled=False,
            web_tables_enabled=False,
            web_stats_enabled=False,
            web_graph_enabled=False,
            # every error answered as JSON; input never gets a 500 (yibao.core.web)
            web_application_options={"middlewares": [error_middleware], "client_max_size": 1024 * 1024},
            topic_allow_declare=False,
            topic_disable_leader=True,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
            broker_rebalance_timeout=max(30.0, settings.session_timeout_s * 3),
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_request_timeout=settings.broker_request_timeout_s,
            store="memory://",
            datadir=str(datadir),
            broker_commit_interval=1.0,
        )
        self.relay = OutboxRelay(self.engine, name, self._publish_batch, outages=self.outages,
                                 stall_after_s=settings.broker_request_timeout_s)
        self._install_endpoints()
        self._install_lifecycle()

    # --- units of work ---------------------------------------------------------------------------------------

    async def db(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction, off the event loop. Wakes the relay once it committed outbox rows
        (only then: a relay looking for nothing would take a database trip beside the next unit of work)."""

        def unit() -> tuple[T, bool]:
            with self.engine.begin() as conn:
                conn.info.pop(WROTE_OUTBOX, None)  # left by an earlier transaction on this pooled connection
                result = fn(conn)
                wrote = conn.info.pop(WROTE_OUTBOX, False)
            return result, wrote

        result, wrote = await asyncio.to_thread(unit)
        if wrote:
            self.relay.wake()
        return result

    # --- catch, classify, act --------------------------------------------------------------------------------

    async def process(self, ctx: MessageContext, handle: Callable[[], Awaitable[str]]) -> str:
        """Handle one message; returns the outcome (processed/duplicate/skipped/parked). Never raises.

        Failures are classified once (:func:`yibao.core.failures.classify`): bad input and poison are parked at
        once; an outage waits (capped backoff, no attempt spent, nothing parked) and tries the same message again
        when the resource is back; anything else is retried ``retry_attempts`` times with exponential backoff,
        then parked. A cancelled worker (shutdown, rebalance) leaves the message unacknowledged."""
        metrics.EVENTS_CONSUMED.labels(self.name, metrics.bounded(ctx.topic)).inc()
        started = time.perf_counter()
        attempts = 0  # attempts spent: outages spend none
        waiter = f"consumer {ctx.topic}[{ctx.partition}]"
        outcome = "parked"
        try:
            while True:
                try:
                    outcome = await handle()
                    break
                except Exception as exc:
                    failure = classify(exc)
                    if failure.kind is FailureKind.OUTAGE:
                        await self.outages.wait(waiter, failure)
                        continue
                    attempts += 1
                    if failure.kind in (FailureKind.BAD_INPUT, FailureKind.POISON):
                        await self.park(ctx, reason_code=failure.code, reason=str(exc), attempts=attempts,
                                        dlq_key=getattr(exc, "dlq_key", None))
                        break
                    if attempts >= self.settings.retry_attempts:
                        await self.park(ctx, reason_code=failure.code,
                                        reason=f"gave up after {attempts} attempts: {failure.summary}",
                                        attempts=attempts)
                        break
                    metrics.RETRIES.labels(self.name, metrics.bounded(type(exc).__name__)).inc()
                    log.warning("transient failure, retrying", extra={"fields": {
                        "topic": ctx.topic, "partition": ctx.partition, "offset": ctx.offset,
                        "error": failure.summary, "attempt": attempts}})
                    await asyncio.sleep(self.settings.retry_backoff_s * 2 ** (attempts - 1))
        finally:
            self.outages.recovered(waiter)
            metrics.PROCESSING_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            metrics.EVENTS_HANDLED.labels(self.name, outcome).inc()
        return outcome

    async def process_batch(self, ctxs: list[MessageContext],
                            handle_batch: Callable[[list[MessageContext]], Awaitable[list[str]]],
                            handle_one: Callable[[MessageContext], Awaitable[str]]) -> list[str]:
        """Handle messages together, in one unit of work (``handle_batch``: an outcome per message); never raises.

        An outage waits (no attempt spent) and tries the batch again. Any other failure of the batch sends each of
        its messages alone through :meth:`process`, so the one at fault is retried and parked with its own
        reason while the others flow. Under a burst this makes one transaction of many messages; one message at a
        time it is :meth:`process` with nothing added."""
        if len(ctxs) == 1:
            return [await self.process(ctxs[0], lambda: handle_one(ctxs[0]))]
        waiter = "consumer batch"
        started = time.perf_counter()
        try:
            while True:
                try:
                    outcomes = await handle_batch(ctxs)
                    break
                except Exception as exc:
                    failure = classify(exc)
                    if failure.kind is not FailureKind.OUTAGE:
                        log.warning("a batch failed; its messages go one by one", extra={"fields": {
                            "messages": len(ctxs), "error": failure.summary}})
                        return [await self.process(ctx, lambda ctx=ctx: handle_one(ctx)) for ctx in ctxs]
                    await self.outages.wait(waiter, failure)
        finally:
            self.outages.recovered(waiter)
        per_message = (time.perf_counter() - started) / len(ctxs)
        for ctx, outcome in zip(ctxs, outcomes):
            metrics.EVENTS_CONSUMED.labels(self.name, metrics.bounded(ctx.topic)).inc()
            metrics.PROCESSING_SECONDS.labels(self.name).observe(per_message)
            metrics.EVENTS_HANDLED.labels(self.name, outcome).inc()
        return outcomes

    async def park(self, ctx: MessageContext, *, reason_code: str, reason: str, attempts: int = 1,
                   event_id: str | None = None, dlq_key: str | None = None) -> None:
        """Dead-letter a message. Does not return until the dead letter is stored somewhere durable: the DLQ
        topic, else the ``parked_work`` table (sealed), else it waits for one of them to come back. The dead
        letter keeps the original key; ``dlq_key`` (the HIS visit id, when known) keys the DLQ record."""
        letter = DeadLetter.of(service=self.name, reason_code=reason_code, reason=mask_text(reason),
                               topic=ctx.topic, partition=ctx.partition, offset=ctx.offset, key=ctx.key,
                               value=ctx.value, attempts=attempts, event_id=event_id)
        # a send the broker has not taken within the timeout stays queued in the producer (its batches never expire:
        # yibao.core.kafka.deliver_in_order) and may still reach the topic after the letter was parked in the table:
        # a dead letter is then in both stores, the same letter (a replay of either changes nothing twice)
        while True:
            try:
                key = dlq_key.encode() if dlq_key else ctx.key
                await asyncio.wait_for(
                    self.app.producer.send_and_wait(self.dlq_topic, key, letter.to_bytes(), None, None, None),
                    timeout=self.settings.broker_request_timeout_s)
                break
            except Exception as exc:
                failure = classify(exc)
                log.error("dead-letter topic unavailable, parking in the database", extra={"fields": {
                    "error": failure.summary}})
            try:
                await self.db(lambda conn: park_in_table(conn, letter))
                break
            except Exception as exc:
                failure = classify(exc)
                if failure.kind is not FailureKind.OUTAGE:  # neither store takes it: that is an outage of both
                    failure = classify(OutageError(f"cannot park a message anywhere: {failure.summary}",
                                                   resource="database"))
                await self.outages.wait("park", failure)
        self.outages.recovered("park")
        metrics.DEAD_LETTERS.labels(self.name, metrics.bounded(reason_code)).inc()
        log.warning("message parked", extra={"fields": {
            "reason_code": reason_code, "reason": letter.reason, "topic": ctx.topic, "partition": ctx.partition,
            "offset": ctx.offset}})

    # --- publishing -------------------------------------------------------------------------------------------

    async def _publish_batch(self, batch: list[OutboxMessage]) -> None:
        """Send in order; a message refused before it left (too large for the producer) stops the batch there,
        after the ones before it are acknowledged (:class:`BatchPartlySent` tells the relay how far it got)."""
        producer = self.app.producer
        if producer._producer is not None:  # faust's aiokafka producer (made when faust's producer started)
            deliver_in_order(producer._producer)
        futures = []
        for index, m in enumerate(batch):
            try:
                futures.append(await producer.send(m.topic, m.key, m.value, None, None, m.headers or None))
            except Exception as exc:
                await asyncio.gather(*futures)
                raise BatchPartlySent(index, exc) from exc
        await asyncio.gather(*futures)

    # --- lifecycle, endpoints ---------------------------------------------------------------------------------

    def _install_lifecycle(self) -> None:
        runtime = self

        @self.app.task
        async def _start() -> None:
            runtime._ready = True
            metrics.WORKER_READY.labels(runtime.name).set(1)
            log.info("worker started", extra={"fields": {
                "service": runtime.name, "data_at_rest": runtime.deployment.cipher.describe()}})
            if not runtime.deployment.cipher.enabled:
                log.warning("no data key configured: personal data in the outbox and parked work is stored "
                            "unencrypted (set YIBAO_DATA_KEYS or the secret file yibao_data_keys)",
                            extra={"fields": {"service": runtime.name}})

        @self.app.task
        async def _relay() -> None:
            await runtime.relay.run()

        @self.app.timer(interval=self.settings.readiness_interval_s)
        async def _readiness() -> None:
            await runtime.check_readiness()

        @self.app.timer(interval=self.settings.dlq_depth_interval_s)
        async def _dlq_depth() -> None:
            await runtime.measure_dlq_depth()

        if self.settings.retention_days > 0:
            @self.app.timer(interval=self.settings.retention_interval_s)
            async def _retention() -> None:
                await runtime.purge_old_data()

    async def purge_old_data(self) -> dict[str, int]:
        """Apply the retention policy once (the timer calls it); an unreachable database skips the round."""
        from yibao.core.retention import RetentionPolicy, purge

        policy = RetentionPolicy.from_settings(self.settings)
        try:
            return await asyncio.to_thread(purge, self.engine, policy)
        except Exception as exc:  # a purge must never stop the worker; the next round tries again
            log.warning("retention purge skipped", extra={"fields": {
                "service": self.name, "error": classify(exc).summary}})
            return {}

    async def measure_dlq_depth(self) -> None:
        """Set ``yibao_dlq_depth``; a broker or database that does not answer leaves the last figure standing."""
        try:
            on_topic = await dead_letter_topic_depth(self.settings.kafka_access, self.settings.topic_prefix)
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
        await create_topics(self.settings.kafka_access,
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
            problems = await runtime.check_readiness()
            ready = not problems
            return web.json({"ready": ready, "service": runtime.name, "problems": problems,
                             "data_at_rest": runtime.deployment.cipher.describe()},
                            status=200 if ready else 503)

    async def check_readiness(self) -> list[str]:
        """Check readiness now and show the verdict as ``yibao_worker_ready``. The timer calls this as well as
        /readyz, so the gauge follows the worker where no probe asks (a compose file, a VM) and recovers by itself
        after a transient "not ready"; a check that finishes after a newer one leaves the newer verdict standing."""
        self._readiness_checks += 1
        number = self._readiness_checks
        problems = await self.readiness_problems()
        if number > self._readiness_shown:
            self._readiness_shown = number
            metrics.WORKER_READY.labels(self.name).set(0 if problems else 1)
        return problems

    async def readiness_problems(self) -> list[str]:
        """Why the worker is not ready (empty: ready): not started, an outage it waits for, a blocked relay, a
        database that does not answer, a broker nobody can connect to."""
        problems: list[str] = []
        if not self._ready:
            problems.append("not started")
        problems += self.outages.problems()
        blocked = self.relay.blocked()
        if blocked and blocked not in problems:
            problems.append(blocked)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping_db), timeout=5)
        except Exception as exc:
            problems.append(f"database unreachable: {classify(exc).summary}")
        broker = await self._probe_broker()
        if broker:
            problems.append(broker)
        return problems

    async def _probe_broker(self, *, ttl_s: float = 3.0) -> str | None:
        """Whether any bootstrap server accepts a connection (cached ``ttl_s``)."""
        checked_at, verdict = self._broker_probe
        if time.monotonic() - checked_at < ttl_s:
            return verdict
        addresses = [b.strip() for b in self.settings.kafka_bootstrap.split(",") if b.strip()]
        verdict = f"{BROKER} unreachable: no bootstrap server accepts connections ({', '.join(addresses)})"
        for address in addresses:
            parts = urlsplit(f"//{address}")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 9092),
                                                   timeout=2)
            except (OSError, asyncio.TimeoutError, ValueError):
                continue
            writer.close()
            verdict = None
            break
        self._broker_probe = (time.monotonic(), verdict)
        return verdict

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
