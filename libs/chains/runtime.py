"""Wiring a chain into a worker: the agent that absorbs messages, the scheduler task that drives visits, the
platform client's lifetime (9001 on first use, 9002 on shutdown), and the catalog both share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import Field

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.chains.model import Absorption, Chain
from yibao.chains.ports import PlatformClient
from yibao.core.errors import InputError
from yibao.core.runtime import MessageContext, ServiceRuntime, arrived_batches
from yibao.core.settings import CommonSettings
from yibao.core.topics import CATALOG

__all__ = ["ChainSettings", "ChainRuntime", "Router"]

log = logging.getLogger(__name__)

#: topic id, raw value → what the message does to which visit (None: not for this service)
Router = Callable[[str, bytes], "Absorption[Any] | None"]


class ChainSettings(CommonSettings):
    """Settings every chain service has, on top of the common ones."""

    chain_concurrency: int = Field(16, description="visits one worker drives at once (the in-flight limit; "
                                                   "yibao_chain_in_flight shows how many are)")
    chain_lease_s: float = Field(30.0, description="a visit's lease; another worker takes over after it lapses "
                                                   "(renewed every third of it while the worker lives)")
    chain_max_attempts: int = Field(8, description="transient failures before a visit is parked")
    chain_backoff_s: float = Field(0.5, description="first retry delay of a visit; doubles each attempt")
    chain_backoff_max_s: float = Field(300.0, description="longest retry delay of a visit")
    absorb_batch: int = Field(200, ge=1, description="messages absorbed in one transaction at most (a burst is taken "
                                                     "in batches; one message at a time adds no delay)")
    absorb_wait_s: float = Field(0.0, ge=0.0, description="how long a batch waits for more messages before it is "
                                                          "absorbed (0: never — a batch is what has already arrived)")

    def batches(self, stream: Any) -> AsyncIterator[Any]:
        """The agent's messages in batches of at most ``absorb_batch``: what has already arrived (``absorb_wait_s`` 0),
        else what arrives within ``absorb_wait_s``."""
        if self.absorb_wait_s > 0:
            return stream.take_events(self.absorb_batch, within=self.absorb_wait_s)
        return arrived_batches(stream, self.absorb_batch)

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(concurrency=self.chain_concurrency, lease_s=self.chain_lease_s,
                              max_attempts=self.chain_max_attempts, retry_backoff_s=self.chain_backoff_s,
                              retry_backoff_max_s=self.chain_backoff_max_s)


class ChainRuntime:
    def __init__(self, runtime: ServiceRuntime, chain: Chain[Any], settings: ChainSettings, *,
                 client_factory: Callable[[], PlatformClient] | None = None, catalog: Any = None) -> None:
        from yibao.envelope.catalog import Catalog
        from yibao.envelope.settings import PlatformSettings

        self.runtime = runtime
        self.settings = settings
        self.platform = PlatformSettings()
        self.catalog = catalog if catalog is not None else Catalog.load(self.platform.province)
        self.client_factory = client_factory or self._national_client
        self.engine: ChainEngine[Any] = ChainEngine(chain, db=runtime.db, client=None, catalog=self.catalog,
                                                    settings=settings.engine_settings(),
                                                    topic_prefix=settings.topic_prefix, outages=runtime.outages)
        self._topics_by_name = {spec.full_name(settings.topic_prefix): spec.id for spec in CATALOG}

        @runtime.app.task
        async def _drive() -> None:
            client = self.client_factory()
            self.engine.client = client
            try:
                await self.engine.run()
            finally:
                close = getattr(client, "aclose", None)
                if close is not None:
                    try:
                        await asyncio.shield(close())
                    except Exception:
                        log.exception("closing the platform client failed")

    def _national_client(self) -> PlatformClient:
        from yibao.envelope.client import NationalClient

        return NationalClient(self.platform, engine=self.runtime.engine, service=self.runtime.name,
                              catalog=self.catalog)

    def subscribe(self, topic_ids: list[str], router: Router, *, name: str) -> None:
        """An agent on the catalog topics ``topic_ids`` absorbing what ``router`` makes of each message."""
        names = [spec.full_name(self.settings.topic_prefix) for spec in CATALOG if spec.id in topic_ids]
        source = self.runtime.app.topic(*names, value_type=bytes, key_type=bytes)
        runtime = self.runtime

        @runtime.app.agent(source, name=name)
        async def absorb(stream):  # type: ignore[no-untyped-def]
            async for events in self.settings.batches(stream):
                ctxs = [MessageContext.of(event) for event in events]
                await runtime.process_batch(ctxs, lambda batch: self._absorb_many(batch, router),
                                            lambda ctx: self._absorb_many([ctx], router, single=True))

    def _route(self, ctx: MessageContext, router: Router) -> Absorption[Any] | None:
        if ctx.value is None:
            return None
        topic_id = self._topics_by_name.get(ctx.topic)
        if topic_id is None:
            raise InputError(f"topic {ctx.topic} is not one this service reads")
        return router(topic_id, ctx.value)

    async def _absorb_many(self, ctxs: list[MessageContext], router: Router, *, single: bool = False) -> Any:
        """Absorb messages in one transaction; an outcome per message (one when ``single``)."""
        routed = [self._route(ctx, router) for ctx in ctxs]
        absorptions = [a for a in routed if a is not None]
        fresh = iter(await self.engine.absorb(absorptions) if absorptions else [])
        outcomes = ["skipped" if a is None else ("processed" if next(fresh) else "duplicate") for a in routed]
        return outcomes[0] if single else outcomes
