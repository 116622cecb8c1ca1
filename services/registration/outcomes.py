"""What the registration chain tells others: HisResults to HIS, VisitFacts to settlement, and the chain metrics.

Every message gets a stable ``message_id`` built from the visit, the request it answers and its kind, so a unit
of work replayed after a crash emits the same ids (the consumers' inboxes drop the copy). Final results to HIS
also count in ``yibao_chain_outcomes_total`` and time the request in ``yibao_chain_seconds`` (from the moment the
HIS event reached this service to its final result).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.metrics import CHAIN_OUTCOMES, CHAIN_SECONDS
from yibao.chains.model import Visit
from yibao.core import clock
from yibao.core.results import HisResult, HisResultKind, VisitFact, VisitFactKind, stable_id

__all__ = ["SERVICE", "ANNOUNCED_KINDS", "emit_result", "emit_fact", "close_request", "observe"]

SERVICE = "registration"

#: request kinds settlement also reads from the HIS events and queues in HIS order, waiting for registration's
#: request (unwind_requested / discharge_requested) — so it must hear when one is finished, however it ended
ANNOUNCED_KINDS = frozenset({"cancel", "discharge"})


def observe(visit: Visit, outcome: str, request: str, since: _dt.datetime | None) -> None:
    """Count a final outcome and time its request. Labels are bounded vocabularies (never ids)."""
    CHAIN_OUTCOMES.labels(SERVICE, visit.kind, outcome).inc()
    if since is not None:
        CHAIN_SECONDS.labels(SERVICE, visit.kind, request).observe(
            max(0.0, (clock.now() - clock.as_shanghai(since)).total_seconds()))


def emit_result(visit: Visit, kind: HisResultKind, ident: tuple[object, ...], *, request: str,
                since: _dt.datetime | None = None, final: bool = True, **fields: Any) -> HisResult:
    """Queue a HisResult (published when the unit of work commits). ``ident`` names what it answers."""
    result = HisResult(message_id=stable_id(SERVICE, visit.key, *ident, "result", kind), his_visit_id=visit.key,
                       visit_kind=visit.kind, kind=kind, service=SERVICE, **fields)  # type: ignore[arg-type]
    visit.emit("his_results", result)
    if final:
        observe(visit, kind, request, since)
    return result


def emit_fact(visit: Visit, kind: VisitFactKind, ident: tuple[object, ...], **fields: Any) -> VisitFact:
    """Queue a VisitFact for settlement."""
    fact = VisitFact(message_id=stable_id(SERVICE, visit.key, *ident, "fact", kind), his_visit_id=visit.key,
                     visit_kind=visit.kind, kind=kind, **fields)  # type: ignore[arg-type]
    visit.emit("visits", fact)
    return fact


def close_request(visit: Visit, kind: str, request_id: str, occurred_at: _dt.datetime, *,
                  reason: str | None = None) -> None:
    """Tell settlement a discharge or cancellation is finished (``reason``: why it was refused or rejected), so
    the requests it queued behind it in HIS order may go on. Other request kinds are registration's alone."""
    if kind in ANNOUNCED_KINDS:
        emit_fact(visit, "request_closed", (kind, request_id, "closed"), his_request_id=request_id,
                  occurred_at=occurred_at, reason=reason)
