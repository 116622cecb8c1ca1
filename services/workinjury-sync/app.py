"""The workinjury-sync worker: ``yibao worker workinjury-sync``.

One faust app: an agent absorbing HIS's requests and the worker's own downloaded filings and revocations into
cases, the chain engine's scheduler driving each case (and each download stream) against the work-injury platform
(:mod:`yibao.workinjury_sync.chain`), the outbox relay, a timer publishing the deadline and lag gauges, and the web
endpoints (/metrics, /healthz, /readyz and the realtime checks of :mod:`yibao.workinjury_sync.http`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from yibao.chains.runtime import ChainRuntime
from yibao.core import clock
from yibao.core.runtime import ServiceRuntime
from yibao.workinjury_sync import deadlines, http
from yibao.workinjury_sync.absorb import make_router, stream_starts
from yibao.workinjury_sync.chain import WorkInjuryChain
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.engine import WorkInjuryEngine
from yibao.workinjury_sync.results import SERVICE
from yibao.workinjury_sync.settings import WorkInjurySyncSettings

__all__ = ["build", "main"]

log = logging.getLogger(__name__)


class _Client:
    """One platform client per worker, shared by the chains and the realtime checks (built on first use)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.client: Any = None

    def __call__(self) -> Any:
        if self.client is None:
            self.client = self.factory()
        return self.client


def build(settings: WorkInjurySyncSettings | None = None) -> ServiceRuntime:
    from yibao.envelope.catalog import Catalog
    from yibao.envelope.workinjury import WorkInjuryClient, WorkInjuryPlatformSettings

    settings = settings or WorkInjurySyncSettings()
    platform = WorkInjuryPlatformSettings()
    catalog = Catalog.load(platform.province, platform="workinjury")
    config = ChainConfig.from_settings(settings, platform, catalog)
    runtime = ServiceRuntime(settings, name=SERVICE)
    chain = WorkInjuryChain(config)
    client = _Client(lambda: WorkInjuryClient(platform, engine=runtime.engine, service=SERVICE, catalog=catalog))
    chains = ChainRuntime(runtime, chain, settings, client_factory=client, catalog=catalog)
    chains.engine = WorkInjuryEngine(chain, db=runtime.db, client=None, catalog=catalog,
                                     settings=settings.engine_settings(), topic_prefix=settings.topic_prefix,
                                     outages=runtime.outages)
    chains.subscribe(["workinjury_requests", "workinjury_filings", "workinjury_revocations", "workinjury_visits"],
                     make_router(platform.org_code), name="workinjury-absorb")
    limits = deadlines.upload_deadlines(catalog)

    @runtime.app.task
    async def _start_streams() -> None:
        problem = client().missing_configuration()
        if problem:
            log.warning("work-injury platform not configured: nothing is sent until it is", extra={"fields": {
                "service": SERVICE, "problem": problem}})
        deadlines.publish(deadlines.Watch(), limits, config.streams, config.poll_interval.total_seconds())
        await chains.engine.absorb(stream_starts(config.streams))

    @runtime.app.timer(interval=settings.watch_interval_s)
    async def _deadline_gauges() -> None:
        try:
            watch = await runtime.db(lambda conn: deadlines.read_watch(conn, clock.now(), limits,
                                                                        settings.deadline_warning_ratio))
        except Exception as exc:  # a gauge must never stop the worker; the next round tries again
            log.warning("deadline gauges not read", extra={"fields": {"service": SERVICE,
                                                                       "error": type(exc).__name__}})
            return
        deadlines.publish(watch, limits, config.streams, config.poll_interval.total_seconds())

    http.install(runtime.app, client, lambda: chains.engine, config, settings.realtime_timeout_s)
    return runtime


def main() -> int:
    return build().run()


