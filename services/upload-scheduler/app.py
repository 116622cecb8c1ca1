"""The upload-scheduler worker: ``yibao worker upload-scheduler``.

One faust app: an agent absorbing ``upload_sources`` (HIS's records) and ``his_results`` (settlements opening
their 清单) into lanes, the chain engine's scheduler driving each lane against its platform (see
:mod:`yibao.upload_scheduler.chain`), the catalog sync and its publication, the gauges of backlog and deadlines,
the outbox relay, and the web endpoints (/metrics, /healthz, /readyz, /uploads/…, /catalog/…, and POST
/national/inbound where the platform posts its feedback on uploaded prescriptions: :mod:`.inbound`).
"""

from __future__ import annotations

import asyncio
import logging

from yibao.chains.runtime import ChainRuntime
from yibao.core.runtime import ServiceRuntime
from yibao.core.topics import topic
from yibao.upload_scheduler import http, inbound
from yibao.upload_scheduler.absorb import make_router
from yibao.upload_scheduler.catalog.layouts import load_layouts
from yibao.upload_scheduler.catalog.publish import CatalogPublisher
from yibao.upload_scheduler.catalog.sync import CatalogSync
from yibao.upload_scheduler.chain import UploadChain
from yibao.upload_scheduler.config import UploadConfig
from yibao.upload_scheduler.gauges import measure
from yibao.upload_scheduler.settings import UploadSchedulerSettings
from yibao.upload_scheduler.store import SERVICE
from yibao.upload_scheduler.targets import build_catalog, build_client
from yibao.upload_scheduler.targets.catalog import load_targets

__all__ = ["build", "main"]

log = logging.getLogger(__name__)


def build(settings: UploadSchedulerSettings | None = None) -> ServiceRuntime:
    from yibao.envelope.catalog import Catalog
    from yibao.envelope.settings import PlatformSettings

    settings = settings or UploadSchedulerSettings()
    platform = PlatformSettings()
    config = UploadConfig.from_settings(settings, fixmedins_code=platform.fixmedins_code)  # lanes validated here
    national = Catalog.load(platform.province)
    catalog = build_catalog(national, load_targets(settings.targets_file))
    layouts = load_layouts(settings.catalogs_file)
    runtime = ServiceRuntime(settings, name=SERVICE)
    chains = ChainRuntime(runtime, UploadChain(config, catalog=catalog), settings, catalog=catalog,
                          client_factory=lambda: build_client(runtime, settings, platform, catalog))
    chains.subscribe(["upload_sources", "his_results"], make_router(config), name="upload-scheduler-absorb")
    http.install(runtime.app, runtime.db)
    inbound.install(runtime.app, inbound.Receiver(
        runtime.db, national, inbound.Gate.from_settings(settings), fixmedins_code=platform.fixmedins_code,
        topic_prefix=settings.topic_prefix, max_bytes=settings.inbound_max_body_bytes))

    catalog_topic = topic("catalog", settings.topic_prefix)

    async def produce(messages: list[tuple[bytes, bytes]]) -> None:
        producer = runtime.app.producer
        futures = [await producer.send(catalog_topic, key, value, None, None, None) for key, value in messages]
        await asyncio.gather(*futures)

    publisher = CatalogPublisher(db=runtime.db, produce=produce, batch=settings.catalog_publish_batch)
    sync = CatalogSync(db=runtime.db, client=lambda: chains.engine.client, layouts=layouts, settings=settings,
                       fixmedins_code=platform.fixmedins_code, on_applied=publisher.wake)

    if settings.catalog_sync_enabled:
        @runtime.app.task
        async def _catalogs() -> None:
            await sync.run()

    if settings.catalog_publish:
        @runtime.app.task
        async def _publish() -> None:
            await publisher.run()

    @runtime.app.timer(interval=settings.gauges_interval_s)
    async def _gauges() -> None:
        await measure(runtime.db, config)

    runtime.upload_sync = sync  # type: ignore[attr-defined]
    runtime.upload_publisher = publisher  # type: ignore[attr-defined]
    return runtime


def main() -> int:
    return build().run()


