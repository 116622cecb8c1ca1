"""What each incoming message does to a visit (the ``absorb`` half of the chain).

Two topics feed settlement, both keyed by the HIS visit id:

* ``his_events`` — charge lines (added / reversed) go to ``fee_lines``; settlement and refund requests are
  queued on the visit in HIS order. Every other event type belongs to registration and is skipped;
* ``visits`` — registration's VisitFacts: the person and mdtrt_id, 2203 done, admitted/discharged, cancelled,
  failed for good, and its unwind requests.

Nothing here calls the platform or decides a step: ``next_action`` does that from the state this leaves. A message
that cannot be read raises :class:`~yibao.core.errors.InputError` (the runtime parks it with its reason). Inbox
keys are prefixed by origin (``his:`` event id, ``fact:`` message id) so the two id spaces never collide.
"""

from __future__ import annotations

from collections.abc import Callable
import datetime as _dt

from pydantic import ValidationError
from sqlalchemy import Connection

from yibao.chains.model import Visit
from yibao.chains.runtime import Absorption
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.core.results import VisitFact
from yibao.hisevents.models import (
    ChargeLineAdded,
    ChargeLineReversed,
    RefundRequested,
    SettlementRequested,
    parse_event,
    validation_reason,
)
from yibao.settlement import hemodialysis
from yibao.settlement.lines import store_line
from yibao.settlement.state import (
    RefundRequest,
    SettleRequest,
    UnwindRequest,
    load_state,
    save_state,
)

__all__ = ["make_router", "absorb_his_event", "absorb_visit_fact"]

Apply = Callable[[Connection, Visit], None]
Now = Callable[[], _dt.datetime]


def make_router(now: Now = clock.now) -> Callable[[str, bytes], Absorption | None]:
    """The router :meth:`yibao.chains.runtime.ChainRuntime.subscribe` wants."""

    def route(topic_id: str, value: bytes) -> Absorption | None:
        if topic_id == "his_events":
            return absorb_his_event(value, now=now)
        if topic_id == "visits":
            return absorb_visit_fact(value, now=now)
        return None

    return route


# --- HIS events ---------------------------------------------------------------------------------------------------


def absorb_his_event(value: bytes, *, now: Now = clock.now) -> Absorption | None:
    event = parse_event(value)  # DecodeError (an InputError) names what is wrong
    if isinstance(event, (ChargeLineAdded, ChargeLineReversed)):
        apply = _line(event)
    elif isinstance(event, SettlementRequested):
        apply = _settle_request(event, now)
    elif isinstance(event, RefundRequested):
        apply = _refund_request(event, now)
    else:
        return None
    return Absorption(message_id=f"his:{event.event_id}", visit_key=event.his_visit_id,
                      visit_kind=event.visit_kind, apply=apply)


def _line(event: ChargeLineAdded | ChargeLineReversed) -> Apply:
    def apply(conn: Connection, visit: Visit) -> None:
        st = load_state(visit)
        store_line(conn, visit.key, event, frozen=st.upload.sns if st.upload else ())

    return apply


def _settle_request(event: SettlementRequested, now: Now) -> Apply:
    def apply(conn: Connection, visit: Visit) -> None:
        st = load_state(visit)
        earlier = st.request("settle", event.his_request_id)
        if earlier is not None and earlier.phase != "rejected":
            return  # the same request again (a CDC update of its row): it is in progress or done
        st.add_request(SettleRequest(
            id=event.his_request_id, message_id=event.event_id, occurred_at=event.occurred_at, received_at=now(),
            medfee_sumamt=event.medfee_sumamt, acct_used_flag=event.acct_used_flag, psn_setlway=event.psn_setlway,
            mid_setl_flag=event.mid_setl_flag, invono=event.invono, chrg_bchno=event.chrg_bchno,
            mdtrt_cert_type=event.mdtrt_cert_type, mdtrt_cert_no=event.mdtrt_cert_no, insutype=event.insutype, sheet_of=hemodialysis.sheet_of(event.his_request_id)))
        save_state(visit, st)

    return apply


def _refund_request(event: RefundRequested, now: Now) -> Apply:
    def apply(conn: Connection, visit: Visit) -> None:
        st = load_state(visit)
        earlier = st.request("refund", event.his_request_id)
        if earlier is not None and earlier.phase != "rejected":
            return
        st.add_request(RefundRequest(
            id=event.his_request_id, message_id=event.event_id, occurred_at=event.occurred_at, received_at=now(),
            settlement_request_id=event.settlement_request_id, setl_id=event.setl_id))
        save_state(visit, st)

    return apply


# --- VisitFacts (registration) -------------------------------------------------------------------------------------


def absorb_visit_fact(value: bytes, *, now: Now = clock.now) -> Absorption:
    try:
        fact = VisitFact.model_validate_json(value)
    except ValidationError as exc:
        raise InputError(f"not a VisitFact: {validation_reason(exc)}") from None
    return Absorption(message_id=f"fact:{fact.message_id}", visit_key=fact.his_visit_id, visit_kind=fact.visit_kind,
                      apply=_fact(fact, now))


_PERSON_FIELDS = ("psn_no", "insutype", "insuplc_admdvs", "psn_cert_type", "mdtrt_cert_type", "mdtrt_cert_no",
                  "med_type", "mdtrt_id", "ipt_otp_no", "begntime")
#: facts that show the visit going on (an unwind registration then gave up, e.g. a refused 2202)
_CONTINUING = frozenset({"registered", "admitted", "visit_info_uploaded", "admission_changed", "discharged",
                         "discharge_cancelled"})


def _fact(fact: VisitFact, now: Now) -> Apply:
    def apply(conn: Connection, visit: Visit) -> None:
        st = load_state(visit)
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
        elif kind == "discharge_cancelled":
            st.discharged = False
            st.endtime = None
        elif kind in ("registration_cancelled", "admission_cancelled"):
            st.cancelled = "退号" if kind == "registration_cancelled" else "取消入院"
        elif kind == "registration_failed":
            st.failed = fact.reason or "registration refused"
        elif kind == "unwind_requested":
            st.add_request(UnwindRequest(
                id=fact.his_request_id or fact.message_id, message_id=fact.message_id,
                occurred_at=fact.occurred_at, received_at=now(), target=fact.unwind or (
                    "registration" if visit.kind == "outpatient" else "admission")))
        if kind in _CONTINUING:
            st.closing = False
        save_state(visit, st)

    return apply
