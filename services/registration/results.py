"""What the registration chain tells others: HisResults to HIS, VisitFacts to settlement, and the chain metrics.

Every message gets a stable ``message_id`` built from the visit, the request it answers and its kind, so a unit
of work run again after a crash emits the same ids (the consumers' inboxes drop the copy). Final results to HIS
also count in ``yibao_chain_outcomes_total`` and time the request in ``yibao_chain_seconds`` (from the moment the
HIS event reached this service to its final result) — once the unit of work committed.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.metrics import CHAIN_OUTCOMES, CHAIN_SECONDS
from yibao.chains.model import Effects
from yibao.core import clock
from yibao.core.results import HisResult, HisResultKind, VisitFact, VisitFactKind, stable_id

__all__ = ["SERVICE", "ANNOUNCED_KINDS", "ON_HIS_EVENTS", "emit_result", "emit_fact", "close_request"]

SERVICE = "registration"

#: request kinds settlement also reads from the HIS events and queues in HIS order, waiting for registration's
#: request (unwind_requested / discharge_requested) — so it must hear when one is finished, however it ended; and
#: an admission change that asked settlement to let the discharge be cancelled (settlement holds its final
#: settlement meanwhile)
ANNOUNCED_KINDS = frozenset({"cancel", "discharge", "admission_change"})
#: request kinds made by a HIS event settlement reads too (Cancellation, Discharge): its ask says so
#: (``on_his_events``), and settlement answers once it has read that event itself
ON_HIS_EVENTS = frozenset({"cancel", "discharge"})


def _observe(fx: Effects, outcome: str, request: str, since: _dt.datetime | None) -> None:
    kind = fx.kind

    def count() -> None:  # labels are bounded vocabularies (never ids)
        CHAIN_OUTCOMES.labels(SERVICE, kind, outcome).inc()
        if since is not None:
            CHAIN_SECONDS.labels(SERVICE, kind, request).observe(
                max(0.0, (clock.now() - clock.as_shanghai(since)).total_seconds()))

    fx.after_commit(count)


def emit_result(fx: Effects, kind: HisResultKind, ident: tuple[object, ...], *, request: str,
                since: _dt.datetime | None = None, final: bool = True, **fields: Any) -> HisResult:
    """Queue a HisResult for HIS. ``ident`` names what it answers."""
    result = HisResult(message_id=stable_id(SERVICE, fx.key, *ident, "result", kind), his_visit_id=fx.key,
                       visit_kind=fx.kind, kind=kind, service=SERVICE, **fields)  # type: ignore[arg-type]
    fx.emit("his_results", result)
    if final:
        _observe(fx, kind, request, since)
    return result


def emit_fact(fx: Effects, kind: VisitFactKind, ident: tuple[object, ...], **fields: Any) -> VisitFact:
    """Queue a VisitFact for settlement."""
    fact = VisitFact(message_id=stable_id(SERVICE, fx.key, *ident, "fact", kind), his_visit_id=fx.key,
                     visit_kind=fx.kind, kind=kind, **fields)  # type: ignore[arg-type]
    fx.emit("visits", fact)
    return fact


def close_request(fx: Effects, kind: str, request_id: str, occurred_at: _dt.datetime, *,
                  reason: str | None = None) -> None:
    """Tell settlement a discharge or cancellation is finished (``reason``: why it was refused or rejected), so
    the requests it queued behind it in HIS order may go on. Other request kinds are registration's alone."""
    if kind in ANNOUNCED_KINDS:
        emit_fact(fx, "request_closed", (kind, request_id, "closed"), his_request_id=request_id,
                  occurred_at=occurred_at, reason=reason)
