"""The ingest worker: ``yibao worker ingest``."""

from __future__ import annotations

import logging

from yibao.core.failures import FailureKind, classify
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.topics import topic
from yibao.ingest.handler import release_held, store_events
from yibao.ingest.ordering import CommitOrder, FaustConsumerView
from yibao.ingest.settings import IngestSettings
from yibao.ingest.subscription import CdcSubscription

__all__ = ["build", "main"]

log = logging.getLogger(__name__)


def build(settings: IngestSettings | None = None) -> ServiceRuntime:
    from yibao.hisevents.ingest import Ingestor

    settings = settings or IngestSettings()
    mapping = settings.load_mapping()
    ingestor = Ingestor(mapping)
    # the connector creates the CDC topics (in its own spelling); the worker finds them, never creates them
    subscription = CdcSubscription.resolve(settings.kafka_access, mapping, settings.cdc_topics)
    runtime = ServiceRuntime(settings, name="ingest")
    if subscription.resolution.missing:  # consume a table's topic soon after the connector creates it
        runtime.app.conf.consumer_metadata_max_age_ms = int(settings.cdc_topic_check_s * 1000)
    out_topic = topic("his_events", settings.topic_prefix)
    source = runtime.app.topic(*subscription.topics, value_type=bytes, key_type=bytes)
    # HIS commit order across the CDC topics while working through a backlog (yibao.ingest.ordering)
    order = CommitOrder(subscription.topics, FaustConsumerView(runtime.app))

    @runtime.app.task
    async def _cdc_topics_at_start() -> None:
        subscription.report_start()

    @runtime.app.timer(interval=settings.cdc_topic_check_s)
    async def _cdc_topics() -> None:
        await subscription.check()

    @runtime.app.timer(interval=settings.order_check_s)
    async def _release_in_order() -> None:
        """Held events whose turn came while no message arrived: a lagging table caught up, or a quiet one."""
        try:
            async with order.lock:
                await order.refresh()
                await order.load(runtime.db)
                while True:
                    release, _ = order.releasable(order.bound())
                    if not release:
                        return
                    await order.commit(runtime.db, lambda conn: release_held(conn, release))
        except Exception as exc:  # the next tick tries again; an outage is waited out by the agent's messages
            failure = classify(exc)
            (log.debug if failure.kind is FailureKind.OUTAGE else log.warning)(
                "held events not released yet", extra={"fields": {"error": failure.summary}})

    @runtime.app.agent(source, name="ingest-cdc")
    async def ingest(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            ctx = MessageContext.of(event)

            async def handle() -> str:
                result = ingestor.ingest(ctx.topic, ctx.partition, ctx.offset, ctx.key, ctx.value)
                async with order.lock:
                    order.placed(ctx.topic, ctx.partition, result.commit_key)
                    await order.load(runtime.db)
                    release, bound = order.releasable(order.bound(own=(ctx.topic, ctx.partition)))
                    stored = await order.commit(runtime.db, lambda conn: store_events(
                        conn, result, out_topic=out_topic, bound=bound, release=release,
                        source=(ctx.topic, ctx.partition, ctx.offset)))
                return stored.outcome

            order.consuming(ctx.topic, ctx.partition, ctx.offset)
            try:
                await runtime.process(ctx, handle)
            finally:
                order.consumed()

    return runtime


def main() -> int:
    return build().run()
