"""How incoming messages change the counter's state — recording only, never deciding.

* ``his_events``: 备案 (``filing_requested``, ``filing_revoked``) go to the filing's chain visit (keyed by the HIS
  filing record); registrations and admissions keep the visit facts a settlement slip prints (:mod:`.slips`);
  the rest is not the counter's;
* ``his_results``: settled and refunded answers become slips (:mod:`.slips`); the answers to the 核酸 batch's own
  visits move their rows on (:mod:`.batch`).

A filing HIS repeats (a CDC update of its row: a new event id, the same request id) changes nothing.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Absorption, Effects
from yibao.counter.state import FilingState, Revocation
from yibao.hisevents.models import FilingRequested, FilingRevoked, event_object, parse_event

__all__ = ["FILING_EVENT_TYPES", "route", "filing_absorption", "apply_filing_event"]

FILING_EVENT_TYPES = frozenset({"filing_requested", "filing_revoked"})


def route(topic_id: str, value: bytes) -> Absorption[FilingState] | None:
    """The chain runtime's router: 备案 events to their filing's visit (None: not a filing event)."""
    if topic_id != "his_events":
        return None
    raw = event_object(value)
    if raw.get("type") not in FILING_EVENT_TYPES:
        return None
    return filing_absorption(parse_event(raw))


def filing_absorption(event: Any) -> Absorption[FilingState]:
    """A 备案 event (filing_requested, filing_revoked) absorbed into its filing's visit."""
    return Absorption(f"his:{event.event_id}", event.his_visit_id, event.visit_kind,
                      lambda state, fx: apply_filing_event(state, fx, event))


def apply_filing_event(state: FilingState, fx: Effects, event: Any) -> None:
    if isinstance(event, FilingRequested):
        if state.filing is None:
            state.filing = event.model_dump(mode="json")
            state.received_at = fx.now
        # a repeat of the filing (the same row again) or another request on the same record: the first stands
    elif isinstance(event, FilingRevoked):
        if state.revocation(event.his_request_id) is None:
            state.revocations.append(Revocation(id=event.his_request_id, event=event.model_dump(mode="json"),
                                                received_at=fx.now))
