"""What each incoming message does to a visit (the ``absorb`` half of the chain).

Two topics feed settlement, both keyed by the HIS visit id:

* ``his_events`` — charge lines (added / reversed) go to ``fee_lines``; settlement and refund requests are
  queued on the visit in HIS order, and so are — as placeholders, ``expected`` — the discharges and
  cancellations registration serves, so nothing later in HIS order overtakes them before registration asks.
  Every other event type belongs to registration and is skipped;
* ``visits`` — registration's VisitFacts: the person and mdtrt_id, 2203 done, admitted/discharged, cancelled,
  failed for good, and its unwind requests.

Nothing here calls the platform or decides a step: ``next_action`` does that from the state this leaves. A message
that cannot be read raises :class:`~yibao.core.errors.InputError` (the runtime parks it with its reason). Inbox
keys are prefixed by origin (``his:`` event id, ``fact:`` message id) so the two id spaces never collide.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from pydantic import ValidationError

from yibao.chains.model import Absorption, Effects
from yibao.core.errors import InputError
from yibao.core.results import VisitFact
from yibao.hisevents.models import (
    Cancellation,
    ChargeLineAdded,
    ChargeLineReversed,
    Discharge,
    RefundRequested,
    SettlementRequested,
    parse_event,
    validation_reason,
)
from yibao.settlement import hemodialysis
from yibao.settlement.state import DischargeRequest, RefundRequest, SettlementState, SettleRequest, UnwindRequest

__all__ = ["route", "absorb_his_event", "absorb_visit_fact"]

Apply = Callable[[SettlementState, Effects], None]


def route(topic_id: str, value: bytes) -> Absorption[SettlementState] | None:
    """The runtime's router: what one message of ``topic_id`` does to which visit (None: not ours)."""
    if topic_id == "his_events":
        return absorb_his_event(value)
    if topic_id == "visits":
        return absorb_visit_fact(value)
    return None


# --- HIS events ---------------------------------------------------------------------------------------------------


def absorb_his_event(value: bytes) -> Absorption[SettlementState] | None:
    event = parse_event(value)  # DecodeError (an InputError) names what is wrong
    if isinstance(event, (ChargeLineAdded, ChargeLineReversed)):
        apply = _line(event)
    elif isinstance(event, SettlementRequested):
        apply = _settle_request(event)
    elif isinstance(event, RefundRequested):
        apply = _refund_request(event)
    elif isinstance(event, (Discharge, Cancellation)):
        apply = _expected(event)
    else:
        return None
    return Absorption(message_id=f"his:{event.event_id}", visit_key=event.his_visit_id,
                      visit_kind=event.visit_kind, apply=apply)


def _line(event: ChargeLineAdded | ChargeLineReversed) -> Apply:
    def apply(st: SettlementState, fx: Effects) -> None:
        st.lines.store(event, frozen=st.upload.sns if st.upload else ())

    return apply


def _settle_request(event: SettlementRequested) -> Apply:
    def apply(st: SettlementState, fx: Effects) -> None:
        earlier = st.request("settle", event.his_request_id)
        if earlier is not None and earlier.phase != "rejected":
            return  # the same request again (a CDC update of its row): it is in progress or done
        st.add_request(SettleRequest(
            id=event.his_request_id, message_id=event.event_id, occurred_at=event.occurred_at, received_at=fx.now,
            medfee_sumamt=event.medfee_sumamt, acct_used_flag=event.acct_used_flag, psn_setlway=event.psn_setlway,
            mid_setl_flag=event.mid_setl_flag, invono=event.invono, chrg_bchno=event.chrg_bchno,
            mdtrt_cert_type=event.mdtrt_cert_type, mdtrt_cert_no=event.mdtrt_cert_no, insutype=event.insutype,
            sheet_of=hemodialysis.sheet_of(event)))

    return apply


def _refund_request(event: RefundRequested) -> Apply:
    def apply(st: SettlementState, fx: Effects) -> None:
        earlier = st.request("refund", event.his_request_id)
        if earlier is not None and earlier.phase != "rejected":
            return
        st.add_request(RefundRequest(
            id=event.his_request_id, message_id=event.event_id, occurred_at=event.occurred_at, received_at=fx.now,
            settlement_request_id=event.settlement_request_id, setl_id=event.setl_id))

    return apply


def _expected(event: Discharge | Cancellation) -> Apply:
    """A HIS request registration serves (出院, 退号/取消入院/取消出院): its place in HIS order is kept from now on,
    so a later settlement or refund request waits for it — registration asks (discharge_requested /
    unwind_requested) when it gets to it, or says it is finished (request_closed)."""

    def apply(st: SettlementState, fx: Effects) -> None:
        request_id = event.event_id if isinstance(event, Discharge) else event.his_request_id
        if request_id in st.closed_requests:
            return  # registration finished it before this event reached us (the two topics race)
        kind = "discharge" if isinstance(event, Discharge) else "unwind"
        if _read_after_asked(st, kind, request_id, fx.now):
            return
        if isinstance(event, Discharge):
            st.add_request(DischargeRequest(id=event.event_id, message_id=f"his:{event.event_id}",
                                            occurred_at=event.occurred_at, received_at=fx.now, phase="expected"))
        else:
            st.add_request(UnwindRequest(id=event.his_request_id, message_id=f"his:{event.event_id}",
                                         occurred_at=event.occurred_at, received_at=fx.now, target=event.target,
                                         phase="expected"))

    return apply


def _read_after_asked(st: SettlementState, kind: str, request_id: str, now: _dt.datetime) -> bool:
    """The HIS request was known already (read before, or asked for by registration): True. If registration asked
    before this read it, the request is answerable from now on — every HIS event committed before it has been read
    by now — and its waits count from now."""
    known = [r for r in st.requests if r.kind == kind and r.id == request_id]
    for r in known:
        if isinstance(r, (UnwindRequest, DischargeRequest)) and not r.his_read:
            r.his_read, r.received_at = True, now
    return bool(known)


def _asked(st: SettlementState, request: UnwindRequest | DischargeRequest, *, on_his_events: bool) -> None:
    """Registration's request: takes the place of the HIS request it serves, else queued in HIS order. One that
    serves a HIS request on the HIS events (``on_his_events``) settlement has not read there yet waits for it."""
    known = st.request(request.kind, request.id)
    if known is not None and known.phase == "expected":
        st.requests[st.requests.index(known)] = request.model_copy(update={"occurred_at": known.occurred_at})
    else:
        request.his_read = known is not None or not on_his_events
        st.add_request(request)


def _closed(st: SettlementState, fact: VisitFact) -> None:
    """Registration finished a HIS discharge or cancellation (``reason``: refused or rejected)."""
    if fact.his_request_id and fact.his_request_id not in st.closed_requests:
        st.closed_requests.append(fact.his_request_id)
    for r in st.requests:
        if r.id != fact.his_request_id or not isinstance(r, (UnwindRequest, DischargeRequest)):
            continue
        if r.phase in ("expected", "waiting"):
            r.phase = "closed"  # type: ignore[assignment]
        elif isinstance(r, UnwindRequest) and r.phase == "unwound" and fact.reason and r.target != "discharge":
            st.closing = False  # the rollback did not happen: the visit goes on
    if st.discharge_pending == fact.his_request_id:
        st.discharge_pending = None
    if st.discharge_unwinding == fact.his_request_id and fact.reason:
        # refused or rejected: the discharge was not cancelled after all. A cancellation that succeeded is closed
        # too, but the stay is discharged no more: only its discharge_cancelled ends the hold — closing it here
        # would let a final settlement go between the two facts, to a platform that holds the stay in the ward
        st.discharge_unwinding = None


def _discharged_again(st: SettlementState, fact: VisitFact) -> None:
    """Registration's 2402 took effect: the reopening it ends is done (its discharge names the settlement request),
    a final settlement the platform refused for want of a discharge may be tried again, and a 中途结算 it refused
    for a discharge settlement had not heard of is decided from the discharge now known."""
    for r in st.requests:
        if not isinstance(r, SettleRequest) or not r.open:
            continue
        if r.reopen == "asked" and r.id == fact.his_request_id:
            r.reopen = "done"
        r.not_discharged_at = None
        r.discharged_on_platform_at = None  # the discharge it was refused for is known now: decided from it


# --- VisitFacts (registration) -------------------------------------------------------------------------------------


def absorb_visit_fact(value: bytes) -> Absorption[SettlementState]:
    try:
        fact = VisitFact.model_validate_json(value)
    except ValidationError as exc:
        raise InputError(f"not a VisitFact: {validation_reason(exc)}") from None
    return Absorption(message_id=f"fact:{fact.message_id}", visit_key=fact.his_visit_id, visit_kind=fact.visit_kind,
                      apply=_fact(fact))


_PERSON_FIELDS = ("psn_no", "insutype", "insuplc_admdvs", "psn_cert_type", "mdtrt_cert_type", "mdtrt_cert_no",
                  "med_type", "mdtrt_id", "ipt_otp_no", "begntime")
#: facts that show the visit going on (an unwind registration then gave up, e.g. a refused 2202)
_CONTINUING = frozenset({"registered", "admitted", "visit_info_uploaded", "admission_changed", "discharged",
                         "discharge_cancelled"})


def _fact(fact: VisitFact) -> Apply:
    def apply(st: SettlementState, fx: Effects) -> None:
        kind = fact.kind
        if kind in ("registered", "admitted", "admission_changed", "visit_info_uploaded"):
            updates = {f: getattr(fact, f) for f in _PERSON_FIELDS if getattr(fact, f) is not None}
            st.person = st.person.model_copy(update=updates)
        if kind in ("registered", "admitted"):
            st.registered = True
            st.self_pay = fact.self_pay
            st.cancelled = None
            st.failed = None
        if kind == "visit_info_uploaded":
            st.visit_info_uploaded = True
        elif kind == "discharged":
            st.discharged = True
            st.endtime = fact.endtime
            st.discharge_pending = None
            st.platform_discharged_at = None  # a 2301 refused for this discharge: its lines wait for a reopening
            _discharged_again(st, fact)
        elif kind == "discharge_cancelled":
            st.discharged = False
            st.endtime = None
            st.discharge_pending = None
            st.discharge_unwinding = None  # done: "not discharged" holds the final settlement back from here
            st.platform_discharged_at = None  # in the ward again: lines refused for a discharge go up now
        elif kind == "request_closed":
            _closed(st, fact)
        elif kind == "discharge_requested":  # queued in HIS order (occurred_at: the HIS discharge's own time)
            _asked(st, DischargeRequest(id=fact.his_request_id or fact.message_id, message_id=fact.message_id,
                                        occurred_at=fact.occurred_at, received_at=fx.now),
                   on_his_events=fact.on_his_events)
        elif kind == "reopen_failed":
            if st.discharge_pending == fact.his_request_id:
                st.discharge_pending = None
            for r in st.requests:
                if isinstance(r, SettleRequest) and r.id == fact.his_request_id and r.reopen == "asked":
                    r.reopen, r.reopen_reason = "failed", fact.reason or "registration could not reopen the stay"
        elif kind == "reopen_not_needed":
            # the stay is not discharged on the platform (a 取消出院 got there first): its lines go up as usual and
            # the settlement waits for the discharge — asked again should it be needed after that
            for r in st.requests:
                if isinstance(r, SettleRequest) and r.id == fact.his_request_id and r.reopen == "asked":
                    r.reopen = None
        elif kind in ("registration_cancelled", "admission_cancelled"):
            st.cancelled = "退号" if kind == "registration_cancelled" else "取消入院"
        elif kind == "registration_failed":
            st.failed = fact.reason or "registration refused"
        elif kind == "unwind_requested":
            # occurred_at is the HIS cancellation's own time: queued behind the HIS settlement and refund
            # requests that came before it, never ahead of them
            _asked(st, UnwindRequest(
                id=fact.his_request_id or fact.message_id, message_id=fact.message_id,
                occurred_at=fact.occurred_at, received_at=fx.now, self_pay=fact.self_pay, target=fact.unwind or (
                    "registration" if fx.kind == "outpatient" else "admission")), on_his_events=fact.on_his_events)
        if kind in _CONTINUING:
            st.closing = False

    return apply
