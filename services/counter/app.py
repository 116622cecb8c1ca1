"""The counter worker: ``yibao worker counter``.

One faust app:

* an agent on ``his_events``: 备案 events absorbed into their filing's chain (:mod:`yibao.counter.chain`), and the
  registrations / admissions a settlement slip prints (:mod:`yibao.counter.slips`) — one transaction per batch;
* an agent on ``his_results``: settled / refunded answers become slips; answers to the 核酸 batch's visits move
  their rows on (:mod:`yibao.counter.batch`);
* an agent on ``counter_requests``: queries answered within their budget, the answers put on
  ``counter_results`` through the outbox (:mod:`yibao.counter.queries`);
* the chain engine's scheduler driving the 备案 chains, the outbox relay, and the web endpoints
  (:mod:`yibao.counter.http`, beside /metrics, /healthz, /readyz).

One national client serves the chains and the queries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pydantic import ValidationError

from yibao.chains.model import Absorption
from yibao.chains.runtime import ChainRuntime
from yibao.core.access import Authenticator
from yibao.core.errors import DecodeError
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import enqueue_many
from yibao.core.results import HisResult
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.topics import CATALOG, topic
from yibao.counter import access, batch, http, slips
from yibao.counter.absorb import FILING_EVENT_TYPES, filing_absorption
from yibao.counter.chain import FilingChain
from yibao.counter.config import CounterConfig
from yibao.counter.models import CounterAnswer, CounterRequest
from yibao.counter.queries import QueryService
from yibao.counter.reference import CachedReference, PlatformReference
from yibao.counter.results import SERVICE
from yibao.counter.settings import CounterSettings
from yibao.hisevents.models import event_object, parse_event, validation_reason

__all__ = ["build", "main", "CounterWorker"]

log = logging.getLogger(__name__)
_VISIT_TYPES = frozenset({"patient_registered", "admission"})


class CounterWorker:
    """The wiring, kept as an object so tests can reach its parts."""

    def __init__(self, settings: CounterSettings | None = None) -> None:
        from yibao.envelope.catalog import Catalog
        from yibao.envelope.settings import PlatformSettings

        self.settings = settings = settings or CounterSettings()
        self.platform = PlatformSettings()
        self.catalog = Catalog.load(self.platform.province)
        self.config = CounterConfig.from_settings(settings, self.platform)
        self.runtime = runtime = ServiceRuntime(settings, name=SERVICE)
        self._client: Any = None
        self.chains = ChainRuntime(runtime, FilingChain(self.config), settings, client_factory=self.client,
                                   catalog=self.catalog)
        self.reference = CachedReference(PlatformReference(self._reference_call), {
            "1901": settings.dictionary_cache_s, "1201": settings.institution_cache_s})
        self.queries = QueryService(self.client, self.catalog, self.reference,
                                    default_timeout_s=settings.query_timeout_s,
                                    max_timeout_s=settings.query_timeout_max_s)
        self.api = http.CounterApi(runtime.db, self.queries, self.config,
                                   Authenticator.from_settings(settings, access.POLICY),
                                   topic_prefix=settings.topic_prefix)
        http.install(runtime.app, self.api, max_batch_bytes=settings.batch_max_bytes)
        self._names = {spec.full_name(settings.topic_prefix): spec.id for spec in CATALOG}
        self._limit = asyncio.Semaphore(settings.query_concurrency)
        self._agents()

    def client(self) -> Any:
        """The one national client of this worker (made on first use)."""
        if self._client is None:
            from yibao.envelope.client import NationalClient

            self._client = NationalClient(self.platform, engine=self.runtime.engine, service=self.runtime.name,
                                          catalog=self.catalog)
        return self._client

    async def _reference_call(self, infno: str, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        reply = await self.client().call(infno, input)
        return reply.output if isinstance(reply.output, dict) else {}

    # --- agents ---------------------------------------------------------------------------------------------
    def _agents(self) -> None:
        runtime, s = self.runtime, self.settings

        def source(topic_id: str) -> Any:
            return runtime.app.topic(topic(topic_id, s.topic_prefix), value_type=bytes, key_type=bytes)

        def agent(topic_id: str, name: str, handle: Any) -> None:
            @runtime.app.agent(source(topic_id), name=name)
            async def consume(stream):  # type: ignore[no-untyped-def]
                async for events in s.batches(stream):
                    ctxs = [MessageContext.of(e) for e in events]
                    await runtime.process_batch(ctxs, handle, lambda ctx: self._one(handle, ctx))

        agent("his_events", "counter-his-events", self.his_events)
        agent("his_results", "counter-his-results", self.his_results)
        agent("counter_requests", "counter-requests", self.requests)

    async def _one(self, handle: Any, ctx: MessageContext) -> str:
        return (await handle([ctx]))[0]

    async def his_events(self, ctxs: list[MessageContext]) -> list[str]:
        """备案 into their chains, registrations/admissions into the slips' visit headers: one transaction."""
        absorptions: list[Absorption[Any] | None] = []
        visits: list[Any] = []
        for ctx in ctxs:
            raw = event_object(ctx.value) if ctx.value is not None else {}
            kind = raw.get("type")
            if kind in FILING_EVENT_TYPES:
                absorptions.append(filing_absorption(parse_event(raw)))
                visits.append(None)
            elif kind in _VISIT_TYPES:
                absorptions.append(None)
                visits.append(parse_event(raw))
            else:
                absorptions.append(None)
                visits.append(None)
        engine = self.chains.engine

        def unit(conn: Any) -> tuple[list[str], list[Any]]:
            wanted = [a for a in absorptions if a is not None]
            flags, after = engine.absorb_in(conn, wanted) if wanted else ([], [])
            fresh = iter(flags)
            outcomes = []
            for a, v in zip(absorptions, visits):
                if a is not None:
                    outcomes.append("processed" if next(fresh) else "duplicate")
                elif v is not None:
                    if first_time(conn, f"{SERVICE}-visits", f"visit:{v.event_id}"):
                        slips.absorb_visit(conn, v)
                        outcomes.append("processed")
                    else:
                        outcomes.append("duplicate")
                else:
                    outcomes.append("skipped")
            return outcomes, after

        outcomes, after = await self.runtime.db(unit)
        for fn in after:
            fn()
        return outcomes

    async def his_results(self, ctxs: list[MessageContext]) -> list[str]:
        results: list[HisResult | None] = []
        for ctx in ctxs:
            if ctx.value is None:
                results.append(None)
                continue
            try:
                results.append(HisResult.model_validate_json(ctx.value))
            except ValidationError as exc:
                raise DecodeError(f"not a HisResult: {validation_reason(exc)}") from None

        def unit(conn: Any) -> list[str]:
            outcomes = []
            for r in results:
                if r is None or r.service == SERVICE:
                    outcomes.append("skipped")
                    continue
                slips.absorb_result(conn, r)
                batch.absorb_result(conn, r)
                outcomes.append("processed")
            return outcomes

        if not any(r is not None and r.kind in ("settled", "refunded", "registered", "rejected", "parked")
                   for r in results):
            return ["skipped"] * len(results)
        return await self.runtime.db(unit)

    async def requests(self, ctxs: list[MessageContext]) -> list[str]:
        """Answer each request (concurrently, within its budget), then publish every answer in one transaction."""
        async def answer(ctx: MessageContext) -> CounterAnswer | None:
            if ctx.value is None:
                return None
            try:
                request = CounterRequest.model_validate_json(ctx.value)
            except ValidationError as exc:
                rid = _correlation_id(ctx.value)
                if rid is None:
                    raise DecodeError(f"not a CounterRequest (no correlation_id): {validation_reason(exc)}") from None
                first = exc.errors(include_url=False, include_input=False)[0]
                return CounterAnswer.of(rid, _infno(ctx.value), "invalid", reason=validation_reason(exc),
                                        field=".".join(str(p) for p in first["loc"]) or None)
            async with self._limit:
                return await self.queries.answer(request)

        answers = await asyncio.gather(*(answer(ctx) for ctx in ctxs))
        prefix = self.settings.topic_prefix

        def unit(conn: Any) -> list[str]:
            outcomes = []
            for ctx, a in zip(ctxs, answers):
                if a is None:
                    outcomes.append("skipped")
                    continue
                if not first_time(conn, f"{SERVICE}-requests", f"req:{ctx.topic}:{ctx.partition}:{ctx.offset}"):
                    outcomes.append("duplicate")
                    continue
                enqueue_many(conn, SERVICE, [(topic("counter_results", prefix), a.correlation_id, a.to_json(),
                                              {"message_id": a.message_id, "type": "CounterAnswer"})])
                outcomes.append("processed")
            return outcomes

        return await self.runtime.db(unit)


def _correlation_id(value: bytes) -> str | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    rid = data.get("correlation_id") if isinstance(data, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= 64 else None


def _infno(value: bytes) -> str:
    try:
        data = json.loads(value)
    except ValueError:
        return "?"
    infno = data.get("infno") if isinstance(data, dict) else None
    return infno if isinstance(infno, str) and len(infno) <= 6 else "?"


def build(settings: CounterSettings | None = None) -> ServiceRuntime:
    return CounterWorker(settings).runtime


def main() -> int:
    return build().run()
