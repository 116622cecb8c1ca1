"""Wiring a chain definition into a worker: the agent that absorbs messages, the scheduler task that drives
visits, the national client's lifetime (9001 on first use, 9002 on shutdown), and ``yibao replay`` support.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Connection

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.chains.model import ChainDefinition, Visit
from yibao.core.errors import InputError
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.settings import CommonSettings
from yibao.core.topics import CATALOG

__all__ = ["ChainSettings", "ChainRuntime", "Absorption"]

log = logging.getLogger(__name__)


class ChainSettings(CommonSettings):
    """Settings every chain service has, on top of the common ones."""

    chain_concurrency: int = Field(16, description="visits one worker drives at once")
    chain_lease_s: float = Field(30.0, description="a visit's lease; another worker takes over after it lapses")
    chain_max_attempts: int = Field(8, description="transient failures before a visit is parked")
    chain_backoff_s: float = Field(0.5, description="first retry delay of a visit; doubles each attempt")
    chain_backoff_max_s: float = Field(300.0, description="longest retry delay of a visit")

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(concurrency=self.chain_concurrency, lease_s=self.chain_lease_s,
                              max_attempts=self.chain_max_attempts, retry_backoff_s=self.chain_backoff_s,
                              retry_backoff_max_s=self.chain_backoff_max_s)


@dataclass(frozen=True)
class Absorption:
    """How one incoming message applies to one visit."""

    message_id: str
    visit_key: str
    visit_kind: str
    apply: Callable[[Connection, Visit], None]


#: topic id → function turning the raw value into an Absorption (None: not for this service)
Router = Callable[[str, bytes], Absorption | None]


class ChainRuntime:
    def __init__(self, runtime: ServiceRuntime, definition: ChainDefinition, settings: ChainSettings, *,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self.runtime = runtime
        self.definition = definition
        self.settings = settings
        self.client_factory = client_factory or self._national_client
        self.engine = ChainEngine(definition, db=runtime.db, client=None, settings=settings.engine_settings(),
                                  topic_prefix=settings.topic_prefix)
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

    def _national_client(self) -> Any:
        from yibao.envelope.client import NationalClient
        from yibao.envelope.settings import PlatformSettings

        return NationalClient(PlatformSettings(), engine=self.runtime.engine, service=self.runtime.name)

    def subscribe(self, topic_ids: list[str], router: Router, *, name: str) -> None:
        """An agent on the catalog topics ``topic_ids`` absorbing what ``router`` makes of each message."""
        names = [spec.full_name(self.settings.topic_prefix) for spec in CATALOG if spec.id in topic_ids]
        source = self.runtime.app.topic(*names, value_type=bytes, key_type=bytes)
        runtime, engine = self.runtime, self.engine

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
        fresh = await self.runtime.db(lambda conn: self.engine.absorb(
            conn, message_id=absorption.message_id, visit_key=absorption.visit_key,
            visit_kind=absorption.visit_kind, apply=absorption.apply))
        self.engine.wake()
        return "processed" if fresh else "duplicate"
