"""What each incoming message records in a visit's state (the ``absorb`` half of the chain; never decides).

Three sources, all keyed by the HIS visit id:

* ``his_events`` — an outpatient visit's registration (the patient, the settlement type chosen, the department),
  its charge lines (added, reversed), its cancellation (退号) and the counter's settlement requests (the counter
  is settling the visit: its lines are not for mobile pay any more). Inpatient events and everything else are
  skipped unparsed;
* ``visits`` — registration's VisitFacts: the person on the platform (psn_no, insutype, 参保地) and the mdtrt_id of
  its 2201, a registration that failed, a cancelled registration;
* the channel API and the platform's callback (:mod:`yibao.mobilepay.http`): an order asked, its payment confirmed,
  withdrawn or refunded, and a verified settlement-result notification.

Inbox keys are prefixed by origin (``his:`` event id, ``fact:`` message id, ``order:``/``pay:``/``cancel:``/
``refund:`` the request, ``cb:`` the notification's payOrdId + ordStas + traceTime — one event, however often
the platform sends it), so the id spaces never collide and a retry of any of them changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from yibao.chains.model import Absorption, Effects
from yibao.core.errors import InputError
from yibao.core.results import VisitFact, stable_id
from yibao.hisevents.models import (
    Cancellation,
    ChargeLineAdded,
    ChargeLineReversed,
    PatientRegistered,
    SettlementRequested,
    parse_event,
    validation_reason,
)
from yibao.mobilepay.models import CallbackReceived
from yibao.mobilepay.state import Callback, Line, MobilePayState, Order, Refund, WeChatNotice

__all__ = ["route", "absorb_his_event", "absorb_visit_fact", "order_requested", "pay_requested",
           "cancel_requested", "refund_requested", "callback_received", "callback_message_id", "wechat_notified"]

Apply = Callable[[MobilePayState, Effects], None]
KIND = "outpatient"


def route(topic_id: str, value: bytes) -> Absorption[MobilePayState] | None:
    """The runtime's router: what one message of ``topic_id`` does to which visit (None: not ours)."""
    if topic_id == "his_events":
        return absorb_his_event(value)
    if topic_id == "visits":
        return absorb_visit_fact(value)
    return None


# --- HIS events ---------------------------------------------------------------------------------------------------


def absorb_his_event(value: bytes) -> Absorption[MobilePayState] | None:
    event = parse_event(value)  # DecodeError (an InputError) names what is wrong
    if event.visit_kind != "outpatient":
        return None  # mobile pay pays outpatient fees
    if isinstance(event, PatientRegistered):
        apply = _registered(event)
    elif isinstance(event, (ChargeLineAdded, ChargeLineReversed)):
        apply = _line(event)
    elif isinstance(event, Cancellation):
        apply = _cancelled
    elif isinstance(event, SettlementRequested):
        apply = _counter(event.his_request_id)
    else:
        return None
    return Absorption(message_id=f"his:{event.event_id}", visit_key=event.his_visit_id, visit_kind=KIND, apply=apply)


def _registered(event: PatientRegistered) -> Apply:
    def apply(st: MobilePayState, fx: Effects) -> None:
        st.known = True
        st.patient = st.patient.model_copy(update={
            "his_patient_id": event.his_patient_id, "channel": event.channel, "settle_choice": event.settle_choice,
            "med_type": event.med_type, "begntime": event.begntime, "ipt_otp_no": event.ipt_otp_no,
            "dept_code": event.dept_code, "dept_name": event.dept_name, "caty": event.caty,
            "certno": event.certno, "psn_name": event.psn_name, "psn_cert_type": event.psn_cert_type,
            "insutype": st.patient.insutype or event.insutype})

    return apply


def _line(event: ChargeLineAdded | ChargeLineReversed) -> Apply:
    def apply(st: MobilePayState, fx: Effects) -> None:
        known = st.lines.get(event.feedetl_sn)
        if known is not None:
            return  # the same line again (a CDC update of its row): lines are immutable in HIS
        st.seq += 1
        reverses = event.init_feedetl_sn if isinstance(event, ChargeLineReversed) else None
        st.lines[event.feedetl_sn] = Line(
            feedetl_sn=event.feedetl_sn, seq=st.seq, amount=event.det_item_fee_sumamt, cnt=event.cnt,
            pric=event.pric, med_list_codg=event.med_list_codg, medins_list_codg=event.medins_list_codg,
            medins_list_name=event.medins_list_name, fee_ocur_time=event.fee_ocur_time, med_type=event.med_type,
            chrg_bchno=event.chrg_bchno, bilg_dept_codg=event.bilg_dept_codg, bilg_dept_name=event.bilg_dept_name,
            init_feedetl_sn=reverses, status="reversed" if reverses else "pending")
        if reverses:
            original = st.lines.get(reverses)
            if original is not None:
                original.reversed_by = event.feedetl_sn  # the chain decides what that means for its order

    return apply


def _cancelled(st: MobilePayState, fx: Effects) -> None:
    st.cancelled = True


def _counter(request_id: str) -> Apply:
    def apply(st: MobilePayState, fx: Effects) -> None:
        if request_id not in st.counter_requests:
            st.counter_requests.append(request_id)

    return apply


# --- VisitFacts (registration) -------------------------------------------------------------------------------------


def absorb_visit_fact(value: bytes) -> Absorption[MobilePayState] | None:
    try:
        fact = VisitFact.model_validate_json(value)
    except ValidationError as exc:
        raise InputError(f"not a VisitFact: {validation_reason(exc)}") from None
    if fact.visit_kind != "outpatient" or fact.kind not in ("registered", "registration_failed",
                                                             "registration_cancelled"):
        return None
    return Absorption(message_id=f"fact:{fact.message_id}", visit_key=fact.his_visit_id, visit_kind=KIND,
                      apply=_fact(fact))


def _fact(fact: VisitFact) -> Apply:
    def apply(st: MobilePayState, fx: Effects) -> None:
        p = st.patient
        if fact.kind == "registered":
            updates = {k: getattr(fact, k) for k in ("psn_no", "insutype", "insuplc_admdvs", "mdtrt_id")
                       if getattr(fact, k) is not None}
            st.patient = p.model_copy(update={**updates, "registered": True, "self_pay": fact.self_pay,
                                              "failed": None})
        elif fact.kind == "registration_failed":
            st.patient = p.model_copy(update={"failed": fact.reason or "registration refused"})
        else:
            st.cancelled = True

    return apply


# --- the channel API (yibao.mobilepay.http) -----------------------------------------------------------------------


def order_requested(*, visit_key: str, order: Order) -> Absorption[MobilePayState]:
    """A channel asks for an order. The same channel order again is the same order (its id derives from the
    channel's id), so a retry creates nothing; the chain accepts it (claims its lines) or refuses it."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        if st.order(order.id) is None:
            st.orders.append(order.model_copy(update={"created_at": fx.now, "updated_at": fx.now}))

    return Absorption(message_id=f"order:{order.id}", visit_key=visit_key, visit_kind=KIND, apply=apply)


def pay_requested(*, visit_key: str, order_id: str, request_id: str, acct_used_flag: str | None,
                  pay_auth_no: str | None, operator: str | None) -> Absorption[MobilePayState]:
    """The patient confirmed: pay the uploaded order (6202). Recorded on an order that can take it."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order(order_id)
        if o is None or o.final or o.pay_requested or o.cancel_requested:
            return
        o.pay_requested = True
        if acct_used_flag in ("0", "1"):
            o.acct_used_flag = acct_used_flag  # type: ignore[assignment]
        if pay_auth_no:
            o.pay_auth_no = pay_auth_no
        o.operator = operator or o.operator
        o.updated_at = fx.now

    return Absorption(message_id=f"pay:{order_id}:{request_id}", visit_key=visit_key, visit_kind=KIND, apply=apply)


def cancel_requested(*, visit_key: str, order_id: str) -> Absorption[MobilePayState]:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order(order_id)
        if o is not None and not o.final and not o.pay_requested:
            o.cancel_requested = True
            o.updated_at = fx.now

    return Absorption(message_id=f"cancel:{order_id}", visit_key=visit_key, visit_kind=KIND, apply=apply)


def refund_requested(*, visit_key: str, order_id: str, refund: Refund) -> Absorption[MobilePayState]:
    """A refund of a paid order; the chain checks it against what remains refundable."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order(order_id)
        if o is not None and o.refund(refund.id) is None:
            o.refunds.append(refund.model_copy(update={"asked_at": fx.now}))
            o.updated_at = fx.now

    return Absorption(message_id=f"refund:{refund.id}", visit_key=visit_key, visit_kind=KIND, apply=apply)


# --- WeChat Pay's notification --------------------------------------------------------------------------------------


def wechat_notified(*, visit_key: str, order_id: str, notification_id: str, mix_pay_status: str | None,
                    self_pay_status: str | None) -> Absorption[MobilePayState]:
    """A verified WeChat Pay notification (one event per notification id, however often WeChat sends it)."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order(order_id)
        if o is not None and o.wechat is not None:
            o.wechat.notices.append(WeChatNotice(mix_pay_status=mix_pay_status, self_pay_status=self_pay_status,
                                                 received_at=fx.now, applied=o.final))

    return Absorption(message_id="wx:" + stable_id("wechat-notification", notification_id)[:40], visit_key=visit_key,
                      visit_kind=KIND, apply=apply)


# --- the platform's callback ----------------------------------------------------------------------------------------


def callback_message_id(pay_ord_id: str, ord_stas: str, trace_time: str) -> str:
    """One event per payOrdId + ordStas + traceTime, however often it is delivered."""
    return "cb:" + stable_id("mobilepay-callback", pay_ord_id, ord_stas, trace_time)


def _amount(value: Any) -> Decimal | None:
    return value if isinstance(value, Decimal) else (Decimal(str(value)) if value not in (None, "") else None)


def callback_received(*, visit_key: str, notice: CallbackReceived) -> Absorption[MobilePayState]:
    """A verified notification: recorded on its order (the chain settles the order from it, or asks 6301), and
    passed on to the callbacks topic."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = st.order_by_pay_ord_id(notice.pay_ord_id)
        if o is None:
            return
        o.callbacks.append(Callback(
            ord_stas=notice.ord_stas, trace_time=notice.trace_time, received_at=fx.now,
            fee_sumamt=_amount(notice.fee_sumamt), own_pay_amt=_amount(notice.ownpay_amt),
            psn_acct_pay=_amount(notice.psn_acct_pay), fund_pay=_amount(notice.fund_pay), hi_doc_sn=notice.hi_doc_sn,
            hi_rgst_sn=notice.hi_rgst_sn, hi_chrg_time=notice.hi_chrg_time, applied=o.final))
        fx.emit("mobilepay_callbacks", notice, key=notice.pay_ord_id)

    return Absorption(message_id=callback_message_id(notice.pay_ord_id, notice.ord_stas, notice.trace_time),
                      visit_key=visit_key, visit_kind=KIND, apply=apply)
