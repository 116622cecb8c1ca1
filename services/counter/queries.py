"""Answering a query (HTTP or the request topic): check it, ask the platform within the budget, say what came back.

Every request is checked before anything is sent, in this order, and a bad one is answered ``invalid`` naming
the field: the transaction must be one the counter serves (``infno``), the request's deadline must not have passed
(``expired``), the input must satisfy the catalog's field list (``input.data.psn_no: required`` …), and a psn_no
needs the person's 参保地 (``insuplc_admdvs``). Then 1901 / 1201 come from the reference port (cached), every other
query from the platform, each within its budget (the asker's ``timeout_s``, capped by ``query_timeout_max_s``;
``query_timeout_s`` by default): ``timeout`` when the answer did not come in time, ``rejected`` with the
platform's err_msg, ``failed`` when the platform could not be reached. Nothing a query returns is logged or put in
a metric label.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from yibao.core import clock
from yibao.core.privacy import mask_text
from yibao.counter import metrics
from yibao.counter.models import CACHED, SERVED, CounterAnswer, CounterRequest
from yibao.counter.reference import ReferenceSource
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, TransportError, UnknownOutcome
from yibao.envelope.national.envelope import has_psn_no

__all__ = ["QueryService", "budget_of"]

log = logging.getLogger(__name__)


def budget_of(request: CounterRequest, default_s: float, max_s: float) -> float:
    return min(request.timeout_s or default_s, max_s)


class QueryService:
    """``client()`` gives the national client (shared with the 备案 chains); ``reference`` the 1901/1201 source."""

    def __init__(self, client: Callable[[], Any], catalog: Any, reference: ReferenceSource, *,
                 default_timeout_s: float = 10.0, max_timeout_s: float = 30.0) -> None:
        self.client, self.catalog, self.reference = client, catalog, reference
        self.default_timeout_s, self.max_timeout_s = default_timeout_s, max_timeout_s

    def check(self, request: CounterRequest) -> CounterAnswer | None:
        """The ``invalid`` / ``expired`` answer of a request that must not be sent; None when it may be."""
        rid, infno = request.correlation_id, request.infno
        if infno not in SERVED:
            return CounterAnswer.of(rid, infno, "invalid", field="infno",
                                    reason=f"infno: {infno} is not a query the counter serves ({', '.join(SERVED)})")
        if request.expires_at is not None and clock.now() >= request.expires_at:
            return CounterAnswer.of(rid, infno, "expired", reason="the request's expires_at had passed when it was read")
        try:
            if infno in self.catalog and self.catalog.has_schema(infno):
                self.catalog.validate_input(infno, request.input)
        except EnvelopeValidationError as exc:
            return CounterAnswer.of(rid, infno, "invalid", field=f"input.{exc.path}",
                                    reason=f"input.{exc.path}: {exc.rule}")
        if has_psn_no(request.input) and not request.insuplc_admdvs:
            return CounterAnswer.of(rid, infno, "invalid", field="insuplc_admdvs",
                                    reason="insuplc_admdvs: required when the input carries psn_no (the person's "
                                           "参保地, from 1101 insuinfo)")
        return None

    async def answer(self, request: CounterRequest) -> CounterAnswer:
        started = time.perf_counter()
        answer = self.check(request)
        source = "check"
        if answer is None:
            source = "cache" if request.infno in CACHED else "platform"
            answer = await self._ask(request, budget_of(request, self.default_timeout_s, self.max_timeout_s))
            if answer.cached:
                source = "cache"
        metrics.QUERIES.labels(request.infno if request.infno in SERVED else "other", request.channel,
                               answer.status).inc()
        metrics.QUERY_SECONDS.labels(request.infno if request.infno in SERVED else "other", source).observe(
            time.perf_counter() - started)
        return answer

    async def _ask(self, request: CounterRequest, budget_s: float) -> CounterAnswer:
        rid, infno = request.correlation_id, request.infno
        try:
            async with asyncio.timeout(budget_s):
                if infno in CACHED:
                    cached = getattr(self.reference, "cached", None)
                    hit = cached(infno, request.input) if cached is not None else None
                    if hit is not None:
                        return CounterAnswer.of(rid, infno, "ok", output=hit, cached=True)
                    output = await self.reference.answer(infno, request.input)
                    if output is None:
                        return CounterAnswer.of(rid, infno, "failed", reason=f"{infno}: no source has an answer")
                    return CounterAnswer.of(rid, infno, "ok", output=output)
                reply = await self.client().call(infno, request.input, insuplc_admdvs=request.insuplc_admdvs,
                                                 read_timeout_s=budget_s)
                output = reply.output if isinstance(reply.output, dict) else {}
                return CounterAnswer.of(rid, infno, "ok", output=output, msgid=getattr(reply, "msgid", None))
        except TimeoutError:
            return CounterAnswer.of(rid, infno, "timeout", reason=f"no answer within {budget_s:g} s")
        except BusinessRejection as exc:
            return CounterAnswer.of(rid, infno, "rejected", reason=mask_text(exc.err_msg or "refused")[:500])
        except EnvelopeValidationError as exc:
            return CounterAnswer.of(rid, infno, "invalid", field=exc.path, reason=f"{exc.path}: {exc.rule}")
        except UnknownOutcome as exc:
            return CounterAnswer.of(rid, infno, "timeout", reason=f"the platform's answer was lost: "
                                                                  f"{type(exc).__name__}")
        except TransportError as exc:
            return CounterAnswer.of(rid, infno, "failed", reason=f"the platform could not be reached: "
                                                                 f"{type(exc).__name__}")
        except Exception as exc:  # noqa: BLE001 - an answer is owed whatever happened; the cause is logged masked
            log.warning("query failed", extra={"fields": {"infno": infno, "error": type(exc).__name__}})
            return CounterAnswer.of(rid, infno, "failed", reason=f"{type(exc).__name__}")
