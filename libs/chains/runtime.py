"""Wiring a chain into a worker: the agent that absorbs messages, the scheduler task that drives visits, the
platform client's lifetime (9001 on first use, 9002 on shutdown), and the catalog both share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic import Field

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.chains.model import Absorption, Chain
from yibao.chains.ports import PlatformClient
from yibao.core.errors import InputError
from yibao.core.runtime import MessageContext, ServiceRuntime
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
            async for event in stream.events():
                ctx = MessageContext.of(event)
                await runtime.process(ctx, lambda ctx=ctx: self._absorb(ctx, router))

    async def _absorb(self, ctx: MessageContext, router: Router) -> str:
        if ctx.value is None:
            return "skipped"
        topic_id = self._topics_by_name.get(ctx.topic)
        if topic_id is None:
            raise InputError(f"topic {ctx.topic} is not one this service reads")
        absorption = router(topic_id, ctx.value)
        if absorption is None:
            return "skipped"
        fresh = await self.engine.absorb([absorption])
        return "processed" if fresh[0] else "duplicate"
