"""How incoming messages change a visit's state — recording only, never deciding (that is ``next_action``'s job).

Two sources:

* canonical HIS events (``his_events``): the registration/admission, 就诊信息, admission changes, discharges and
  cancellations. Events of other types (charge lines, settlement and refund requests) belong to settlement and
  are skipped without being parsed. A message that is not a canonical event raises
  :class:`~yibao.core.errors.DecodeError` (parked on the DLQ with its reason by the runtime).
* settlement's facts (``settlement_facts``): its answers to an unwind or a discharge request, its request to
  reopen a discharged stay (``reopen_requested``), and what it holds on the platform.

Each message is applied once (the engine's inbox keys on its id, prefixed by origin — ``his:`` event id,
``fact:`` message id — so the two id spaces never meet). A request HIS repeats under a new event id (a
CDC update of the same row) is recognised by its request id and changes nothing either.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from decimal import Decimal

from pydantic import ValidationError

from yibao.chains.model import Absorption, Effects
from yibao.core import clock
from yibao.core.errors import DecodeError
from yibao.core.results import SettlementFact
from yibao.hisevents.models import (
    Admission,
    AdmissionChanged,
    Cancellation,
    Discharge,
    HisEventBase,
    PatientRegistered,
    VisitInfo,
    parse_event,
    validation_reason,
)
from yibao.registration.identity import choice_change
from yibao.registration.state import (
    RegistrationState,
    Request,
    VisitInfoFields,
    diagnosis_key,
)

__all__ = ["HIS_EVENT_TYPES", "route", "absorb_event", "absorb_fact", "apply_event", "apply_fact"]

log = logging.getLogger(__name__)

#: the canonical event types registration acts on
HIS_EVENT_TYPES = frozenset({"patient_registered", "visit_info", "admission", "admission_changed", "discharge",
                             "cancellation"})
_VISIT_INFO_FIELDS = tuple(VisitInfoFields.model_fields)


# --- routing ----------------------------------------------------------------------------------------------------

def route(topic_id: str, value: bytes) -> Absorption[RegistrationState] | None:
    """The runtime's router: what one message of ``topic_id`` does to which visit (None: not ours)."""
    if topic_id == "his_events":
        try:
            raw = json.loads(value, parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(f"canonical event is not valid JSON: {type(exc).__name__}") from None
        if not isinstance(raw, dict):
            raise DecodeError("canonical event is not a JSON object")
        if raw.get("type") not in HIS_EVENT_TYPES:
            return None
        event = parse_event(raw)
        return Absorption(f"his:{event.event_id}", event.his_visit_id, event.visit_kind,
                          lambda state, fx: absorb_event(state, fx, event))
    if topic_id == "settlement_facts":
        try:
            fact = SettlementFact.model_validate_json(value)
        except ValidationError as exc:
            raise DecodeError(f"not a SettlementFact: {validation_reason(exc)}") from None
        return Absorption(f"fact:{fact.message_id}", fact.his_visit_id, fact.visit_kind,
                          lambda state, fx: absorb_fact(state, fx, fact))
    return None


def absorb_event(state: RegistrationState, fx: Effects, event: HisEventBase) -> None:
    if event.visit_kind != state.kind:
        # one HIS id names one visit kind; an event of the other kind cannot be this visit's
        log.warning("event of another visit kind ignored", extra={"fields": {
            "service": "registration", "event_type": event.type, "visit_kind": state.kind}})
        return
    apply_event(state, event, fx.now)


def absorb_fact(state: RegistrationState, fx: Effects, fact: SettlementFact) -> None:
    apply_fact(state, fact, fx.now)


# --- HIS events -------------------------------------------------------------------------------------------------

def apply_event(state: RegistrationState, event: HisEventBase, now: _dt.datetime) -> None:
    """Record one canonical HIS event in the state (pure: no I/O)."""
    if isinstance(event, (PatientRegistered, Admission)):
        _registration(state, event, now)
    elif isinstance(event, VisitInfo):
        _visit_info(state, event, now)
    elif isinstance(event, Cancellation):
        if state.request(event.his_request_id, "cancel") is None:
            state.add_request(Request(id=event.his_request_id, kind="cancel", target=event.target,
                                      occurred_at=event.occurred_at, received_at=now, seq=state.next_seq()))
    elif isinstance(event, Discharge):
        _event_request(state, event, "discharge", now)
    elif isinstance(event, AdmissionChanged):
        _event_request(state, event, "admission_change", now)


def _event_request(state: RegistrationState, event: HisEventBase, kind: str, now: _dt.datetime) -> None:
    if state.request(event.event_id) is None:
        state.add_request(Request(id=event.event_id, kind=kind, event=event.model_dump(mode="json"),  # type: ignore[arg-type]
                                  occurred_at=event.occurred_at, received_at=now, seq=state.next_seq()))


def _registration(state: RegistrationState, event: PatientRegistered | Admission, now: _dt.datetime) -> None:
    if state.registration is None:
        state.registration = event.model_dump(mode="json")
        state.registration_received_at = now
        state.self_pay = event.settle_choice == "self_pay"
        return
    if event.event_id == state.registration.get("event_id"):
        return
    # a later version of the registration row: only the settlement choice may change (seed 003)
    change = choice_change(state.self_pay, event.settle_choice)
    if change == "refused":
        if state.request(event.event_id) is None:
            state.add_request(Request(id=event.event_id, kind="identity_refused", occurred_at=event.occurred_at,
                                      received_at=now, seq=state.next_seq()))
    elif change == "to_self_pay":
        if not any(r.kind == "self_pay_switch" and r.active for r in state.requests):
            state.add_request(Request(id=event.event_id, kind="self_pay_switch", occurred_at=event.occurred_at,
                                      received_at=now, seq=state.next_seq()))
    elif state.status == "rejected" and not state.self_pay:
        # HIS corrected a registration the platform refused (e.g. a mistyped credential): try again with it
        state.registration = event.model_dump(mode="json")
        state.registration_received_at = now
        state.status, state.failure, state.parked = "pending", None, None
        state.person, state.treatment_checked, state.treatment = None, False, []
    # otherwise: the platform has no 挂号变更; changing a registered visit's data takes 退号 and a new registration


def _visit_info(state: RegistrationState, event: VisitInfo, now: _dt.datetime) -> None:
    info = state.visit_info
    given = {k: getattr(event, k) for k in _VISIT_INFO_FIELDS if getattr(event, k) is not None}
    fields = info.fields.model_copy(update=given)
    diagnoses = dict(info.diagnoses)
    for d in event.diagnoses:
        key = diagnosis_key(d)
        if d.diag_time is None:  # when the HIS row has no time of its own, the event's is the diagnosis time
            known = diagnoses.get(key)
            if known is not None and known.model_copy(update={"diag_time": None}) == d:
                continue  # the same diagnosis again
            d = d.model_copy(update={"diag_time": event.occurred_at})
        diagnoses[key] = d
    info.last_event_id = event.event_id
    if info.first_received_at is None:
        info.first_received_at = now
    if fields == info.fields and diagnoses == info.diagnoses:
        return  # nothing new for the platform
    info.fields, info.diagnoses = fields, diagnoses
    info.version += 1
    info.last_changed_at = now


# --- settlement facts -------------------------------------------------------------------------------------------

def apply_fact(state: RegistrationState, fact: SettlementFact, now: _dt.datetime | None = None) -> None:
    """Record settlement's answer or fact (pure)."""
    if fact.kind in ("unwound", "unwind_refused"):
        for request in state.requests:
            if request.phase == "unwinding" and (fact.his_request_id in (None, request.id)):
                request.phase = "unwound" if fact.kind == "unwound" else "refused"
                request.reason = fact.reason
                return
        return
    if fact.kind == "ready_for_discharge":
        for request in state.requests:
            if (request.phase == "settling" and request.kind in ("discharge", "reopen")
                    and fact.his_request_id in (None, request.id)):
                request.phase = "ready"
                request.reason = fact.reason or request.reason
                return
        return
    if fact.kind == "reopen_requested":
        _reopen_request(state, fact, now or clock.now())
        return
    view = state.settlement
    if fact.kind == "details_uploaded":
        view.details_uploaded = True
    elif fact.kind == "settled" and fact.setl_id and fact.setl_id not in view.active_settlements:
        view.active_settlements.append(fact.setl_id)
    elif fact.kind == "settlement_cancelled" and fact.setl_id in view.active_settlements:
        view.active_settlements.remove(fact.setl_id)


def _reopen_request(state: RegistrationState, fact: SettlementFact, now: _dt.datetime) -> None:
    """Settlement needs the discharged stay reopened (2405 → its late lines → 2402 again) for a final settlement:
    queued in HIS order as the settlement request's own, carrying the discharge to send again."""
    request_id = fact.his_request_id or fact.message_id
    known = state.request(request_id, "reopen")
    if known is not None and known.active:
        return  # in progress
    last = state.last_discharge()
    if known is not None:
        # asked again (a copy of an ask never gets here: the inbox drops it, and each ask has an id of its own):
        # the earlier reopening ended — not needed, or done and more lines came after the discharge it sent again
        state.requests.remove(known)
    state.add_request(Request(id=request_id, kind="reopen", event=last.event if last else None,
                              occurred_at=fact.occurred_at, received_at=now, seq=state.next_seq(),
                              reason=fact.reason, round=known.round + 1 if known is not None else 0))
