"""The registration chain: from a visit's state alone, what to do next (:meth:`RegistrationChain.next_action`).

The order is the business order, and it matters for safety too:

1. nothing can happen before the registration/admission event (events of other HIS tables may arrive first);
   requests waiting for one are refused after ``orphan_timeout``;
2. the registration runs to its end — self-pay (no call), or 1101 → (2001) → 2201/2401 — before any request is
   looked at. While a call's outcome is unknown the engine asks again and resolves it only if the *same* call is
   still chosen; keeping the registration first guarantees that a lost 2201/2401 is always looked up, never
   forgotten because a cancellation arrived meanwhile;
3. HIS requests (退号, 取消入院/出院, 出院, 入院变更, 改自费) are served one at a time in HIS order; the head keeps its
   call until that call succeeded or was refused. Rollbacks ask settlement first and go on only on its
   ``unwound``; a request that would skip a step back is refused (``out_of_order``). A discharge asks settlement
   first too (it uploads the stay's lines, 2301 being refused after 2402). Settlement's own request to reopen a
   discharged stay for late lines is queued like HIS's: 2405, then 2402 again;
4. outpatient 就诊信息 (2203) whenever the merged diagnoses changed since the last upload — before a request that
   has not reached its platform call yet (the diagnosis came before the cashier's requests).

What each call sends and what its answer changes lives in its family's module under :mod:`yibao.registration.steps`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from yibao.chains.model import Action, Change, Effects, Idle, Wait
from yibao.chains.state import JsonStateStore
from yibao.core.privacy import mask_text
from yibao.hisevents.models import PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.results import SERVICE, close_request, emit_fact, emit_result
from yibao.registration.state import Failure, RegistrationState, Request
from yibao.registration.steps import admission_change, cancel, discharge, person, register, visit_info
from yibao.registration.steps.common import (
    fail_registration,
    fee_detail,
    reject,
    rejection,
    request_label,
    target_of,
)

__all__ = ["RegistrationChain", "OUT_OF_ORDER"]

#: reason_code of a request that would skip a step of the rollback order
OUT_OF_ORDER = "out_of_order"


class RegistrationChain:
    """The :class:`~yibao.chains.model.Chain` of ``yibao worker registration``."""

    service = SERVICE
    store = JsonStateStore(RegistrationState)

    def __init__(self, config: ChainConfig) -> None:
        self.config = config

    def new_state(self, key: str, kind: str) -> RegistrationState:
        return RegistrationState(kind="inpatient" if kind == "inpatient" else "outpatient")

    # --- the decision -------------------------------------------------------------------------------------------

    def next_action(self, state: RegistrationState, now: _dt.datetime) -> Action:
        if state.registration is None:
            return self._before_registration(state, now)
        if state.status == "pending":
            return self._registering(state)
        head = state.head()
        info_due = state.status == "registered" and state.kind == "outpatient" and state.visit_info.due
        info_ready = info_due and (state.visit_info.has_valid_diagnosis
                                   or bool(state.visit_info.diagnoses and state.visit_info.uploaded_version > 0))
        if head is not None:
            # the doctor's diagnosis came before the cashier's requests, and settlement waits for 2203: it goes
            # first — unless the head has reached its own platform call (whose lost answer must be resolved by
            # that very call, never superseded)
            if info_ready and head.phase in ("new", "unwinding"):
                return visit_info.visit_info_call(self.config, state)
            return self._serve(state, head, now)
        if info_ready:
            return visit_info.visit_info_call(self.config, state)
        if info_due:
            return Wait("visit information without a diagnosis yet (2203 needs one)")
        return Idle()

    def _before_registration(self, state: RegistrationState, now: _dt.datetime) -> Action:
        waiting = [r for r in state.requests if r.active]
        if not waiting:
            return Wait("no registration/admission event yet")
        deadline = min(r.received_at for r in waiting) + self.config.orphan_timeout
        if now < deadline:
            return Wait("requests wait for the registration/admission event", until=deadline)
        seconds = int(self.config.orphan_timeout.total_seconds())

        def orphans(s: RegistrationState, fx: Effects) -> None:
            for request in [r for r in s.requests if r.active]:
                reject(s, fx, request, "no_registration",
                       f"no registration/admission event of this visit arrived within {seconds} s")

        return Change("orphans", orphans)

    def _registering(self, state: RegistrationState) -> Action:
        reg = state.registration_event()
        if state.self_pay:
            return Change("self_pay", self._self_pay_from_start)
        if not getattr(reg, "mdtrt_cert_no", None):
            return Change("no_credential", _no_credential)
        if state.person is None:
            return person.person_call(self.config, state)
        if self.config.treatment_check and not state.treatment_checked:
            return person.treatment_call(self.config, state)
        return register.register_call(self.config, state)

    def _serve(self, state: RegistrationState, request: Request, now: _dt.datetime) -> Action:
        status, kind = state.status, request.kind
        if kind == "identity_refused":
            return rejection(request, "identity_change_refused",
                             "a self-pay (自费) registration cannot become 医保 (自费不允许改医保); register again")
        if status == "cancelled":
            return rejection(request, "cancelled", "the visit's registration was cancelled")
        if status == "rejected":
            return self._serve_unregistered(request)
        if status == "self_pay":
            return self._serve_self_pay(request)
        if kind in ("cancel", "self_pay_switch"):
            return self._serve_rollback(state, request)
        if kind == "discharge":
            if state.discharged and request.phase == "new":
                return rejection(request, OUT_OF_ORDER, "already discharged (2402 done); cancel the discharge "
                                                        "first (2405)")
            return self._serve_discharge(state, request, now)
        if kind == "reopen":
            if request.phase == "new":
                if not state.discharged or request.event is None:
                    return discharge.reopen_refused(request, "the stay is not discharged on the platform: there is "
                                                             "no discharge to reopen")
                return discharge.reopen_call(self.config, state, request)
            return self._serve_discharge(state, request, now)
        if state.discharged or request.phase in ("unwinding", "refused"):  # an admission change
            return self._serve_late_change(state, request)
        return admission_change.admission_change_call(self.config, state, request)

    def _serve_rollback(self, state: RegistrationState, request: Request) -> Action:
        target = target_of(state, request)
        if request.phase == "new":
            if target == "discharge" and not state.discharged:
                return rejection(request, OUT_OF_ORDER, "the visit is not discharged: no discharge to cancel (2405)")
            if target == "admission" and state.discharged:
                return rejection(request, OUT_OF_ORDER, "cancel the discharge first: 2405")
            return cancel.ask_settlement(request, target)
        if request.phase == "unwinding":
            return Wait("settlement has not answered the unwind request yet")
        if request.phase == "refused":
            return rejection(request, OUT_OF_ORDER, f"settlement refused: {request.reason or 'no reason given'}")
        if target == "discharge":
            return discharge.cancel_discharge_call(self.config, state, request)
        return cancel.cancel_call(self.config, state, request)

    def _serve_discharge(self, state: RegistrationState, request: Request, now: _dt.datetime) -> Action:
        """出院 (or the end of a reopening): settlement uploads the stay's lines first, then 2402 — or after
        ``discharge_wait`` without its answer."""
        if request.phase in ("new", "unwound"):
            return discharge.ask_discharge(request)
        if request.phase == "settling":
            deadline = (request.asked_at or request.received_at) + self.config.discharge_wait
            if now < deadline:
                return Wait("settlement is uploading the stay's charge lines before the discharge", until=deadline)
            seconds = int(self.config.discharge_wait.total_seconds())
            return discharge.discharge_anyway(request, f"settlement did not confirm within {seconds} s that the "
                                                       "stay's charge lines are uploaded; discharged without its "
                                                       "confirmation")
        return discharge.discharge_call(self.config, state, request)

    def _serve_late_change(self, state: RegistrationState, request: Request) -> Action:
        """An admission change HIS made before the discharge that arrived after it (another CDC table): the platform
        takes 2403 only in the ward, so the discharge is cancelled (2405, once settlement agreed: no final
        settlement stands), the change sent (2403) and the stay discharged again (2402). A change dated after the
        discharge is refused: HIS cancels the discharge itself first."""
        if request.phase == "new":
            last = state.last_discharge()
            if last is None or not request.occurred_at < last.occurred_at:
                return rejection(request, OUT_OF_ORDER, "admission information cannot change after the discharge; "
                                                        "cancel the discharge first (2405)")
            return cancel.ask_settlement(request, "discharge")
        if request.phase == "unwinding":
            return Wait("settlement has not answered whether the discharge may be cancelled for a late change")
        if request.phase == "refused":
            return rejection(request, OUT_OF_ORDER, "the change is dated before the discharge but arrived after it, "
                                                    "and the discharge cannot be cancelled to send it: "
                                                    f"{request.reason or 'settlement refused'}")
        return discharge.reopen_call(self.config, state, request)

    def _serve_unregistered(self, request: Request) -> Action:
        """The platform refused the registration: nothing of it exists there."""
        if request.kind == "cancel":
            if request.target == "discharge":
                return rejection(request, OUT_OF_ORDER, "the visit was never admitted: no discharge to cancel")
            return cancel.cancel_locally(request)
        if request.kind == "self_pay_switch":
            return cancel.switch_locally(self.config, request)
        return rejection(request, "not_registered",
                         "the platform refused the registration/admission: nothing to discharge or change")

    def _serve_self_pay(self, request: Request) -> Action:
        if request.kind == "cancel" and request.target != "discharge":
            return cancel.cancel_locally(request)
        return Change(f"noop:{request.tag}", _close_silently(request.id))

    # --- a self-pay visit ---------------------------------------------------------------------------------------

    def _self_pay_from_start(self, s: RegistrationState, fx: Effects) -> None:
        if s.status != "pending":
            return
        reg = s.registration_event()
        s.status = "self_pay"
        emit_result(fx, "self_pay", (reg.event_id,), request=request_label(s), since=s.registration_received_at,
                    med_type=getattr(reg, "med_type", None), detail=fee_detail(self.config, reg, None) or None)
        emit_fact(fx, "registered", (reg.event_id,), self_pay=True, med_type=getattr(reg, "med_type", None),
                  begntime=getattr(reg, "begntime", None),
                  ipt_otp_no=reg.ipt_otp_no if isinstance(reg, PatientRegistered) else getattr(reg, "ipt_no", None))

    # --- parking ------------------------------------------------------------------------------------------------

    def on_parked(self, s: RegistrationState, fx: Effects, reason_code: str, reason: str) -> None:
        s.parked = Failure(reason_code=reason_code, reason=mask_text(reason))
        head = s.head() if s.status != "pending" else None
        emit_result(fx, "parked", ("parked", fx.version), request=request_label(s, head),
                    his_request_id=head.id if head else None, mdtrt_id=s.mdtrt_id,
                    target=target_of(s, head) if head else None, reason_code=reason_code, reason=mask_text(reason))
        if s.status == "pending" and s.registration is not None:
            # settlement must not wait for a registration that may never come (a replay may still bring it)
            emit_fact(fx, "registration_failed", ("parked", fx.version), reason=mask_text(reason))


def _no_credential(s: RegistrationState, fx: Effects) -> None:
    if s.status == "pending":
        fail_registration(s, fx, Failure(
            reason_code="invalid_input", step_infno="1101",
            reason="mdtrt_cert_no: required to identify the person (1101); register as self-pay without a 医保 "
                   "credential"))


def _close_silently(request_id: str) -> Callable[[RegistrationState, Effects], None]:
    """A self-pay visit's discharge or change: nothing to do on the platform and nothing HIS waits for."""
    def apply(s: RegistrationState, fx: Effects) -> None:
        for current in s.requests:
            if current.id == request_id and current.active:
                current.phase = "done"
                close_request(fx, current.kind, current.id, current.occurred_at)

    return apply
