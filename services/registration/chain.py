"""The registration chain: from a visit's state alone, what to do next (:class:`RegistrationChain`).

The order of :meth:`RegistrationChain.next_action` is the business order, and it matters for safety too:

1. nothing can happen before the registration/admission event (events of other HIS tables may arrive first);
   requests waiting for one are refused after ``orphan_timeout``;
2. the registration runs to its end — self-pay (no call), or 1101 → (2001) → 2201/2401 — before any request is
   looked at. While a platform step's outcome is unknown the engine asks ``next_action`` again and resolves the
   call only if the *same* step is still chosen; keeping the registration first guarantees that a lost 2201/2401
   is always resolved by query, never forgotten because a cancellation arrived meanwhile;
3. HIS requests (退号, 取消入院/出院, 出院, 入院变更, 改自费) are served one at a time in HIS order; the head keeps
   its step until that step succeeded or was refused. Rollbacks ask settlement first (``unwind_requested``) and
   go on only on its ``unwound``; a request that would skip a step back is refused (``out_of_order``). A
   discharge asks settlement first too (``discharge_requested``: it uploads the stay's lines, 2301 being refused
   after 2402) and goes on on its ``ready_for_discharge`` or after ``discharge_wait``. Settlement's own request
   to reopen a discharged stay for late lines (``reopen_requested``) is queued like HIS's: 2405, then 2402 again;
4. outpatient 就诊信息 (2203) whenever the merged diagnoses changed since the last upload — before a request
   that has not reached its platform step yet (the diagnosis came before the cashier's requests).

Requests to settlement carry the HIS request's own time (``occurred_at``) and id, so settlement serves them in
HIS order among the settlement and refund requests it received directly.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import Any

from sqlalchemy import Connection

from yibao.chains.model import Action, Idle, LocalChange, Visit, Wait
from yibao.core import clock
from yibao.core.privacy import mask_text
from yibao.hisevents.models import Discharge, PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.outcomes import SERVICE, close_request, emit_fact, emit_result
from yibao.registration.state import Failure, RegistrationState, Request, load_state, save_state
from yibao.registration.steps import (
    admission_change_step,
    discharge_step,
    fail_registration,
    fee_detail,
    person_step,
    register_step,
    reopen_step,
    request_label,
    rollback_step,
    treatment_step,
    visit_info_step,
)

__all__ = ["RegistrationChain", "OUT_OF_ORDER"]

log = logging.getLogger(__name__)

#: reason_code of a request that would skip a step of the rollback order
OUT_OF_ORDER = "out_of_order"


class RegistrationChain:
    """The :class:`~yibao.chains.model.ChainDefinition` of the registration service."""

    service = SERVICE

    def __init__(self, config: ChainConfig) -> None:
        self.config = config

    def new_state(self, visit_kind: str) -> dict[str, Any]:
        return RegistrationState(kind=visit_kind).model_dump(mode="json")  # type: ignore[arg-type]

    # --- deciding ----------------------------------------------------------------------------------------------

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime) -> Action:
        state = load_state(visit)
        if state.registration is None:
            return self._before_registration(state, now)
        if state.status == "pending":
            return self._registering(visit, state)
        head = state.head()
        info_due = (state.status == "registered" and state.kind == "outpatient" and state.visit_info.due)
        info_ready = info_due and (state.visit_info.has_valid_diagnosis
                                   or bool(state.visit_info.diagnoses and state.visit_info.uploaded_version > 0))
        if head is not None:
            # the doctor's diagnosis came before the cashier's requests, and settlement's settlement requests wait
            # for 2203: it goes first — unless the head has reached its own platform step (whose lost answer must
            # be resolved by that very step, never superseded)
            if info_ready and head.phase in ("new", "unwinding"):
                return visit_info_step(self.config, visit, state)
            return self._serve(visit, state, head, now)
        if info_ready:
            return visit_info_step(self.config, visit, state)
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

        def orphans(conn: Connection, visit: Visit) -> None:
            fresh = load_state(visit)
            for request in [r for r in fresh.requests if r.active]:
                _reject(visit, fresh, request, "no_registration",
                        f"no registration/admission event of this visit arrived within {seconds} s")
            save_state(visit, fresh)

        return LocalChange("orphans", orphans)

    def _registering(self, visit: Visit, state: RegistrationState) -> Action:
        reg = state.registration_event()
        if state.self_pay:
            return LocalChange("self_pay", self._self_pay_from_start)
        if not getattr(reg, "mdtrt_cert_no", None):
            def no_credential(conn: Connection, visit: Visit) -> None:
                fresh = load_state(visit)
                if fresh.status == "pending":
                    fail_registration(visit, fresh, Failure(
                        reason_code="invalid_input", step_infno="1101",
                        reason="mdtrt_cert_no: required to identify the person (1101); register as self-pay "
                               "without a 医保 credential"))
                    save_state(visit, fresh)

            return LocalChange("no_credential", no_credential)
        if state.person is None:
            return person_step(self.config, visit, state)
        if self.config.treatment_check and not state.treatment_checked:
            return treatment_step(self.config, visit, state)
        return register_step(self.config, visit, state)

    def _serve(self, visit: Visit, state: RegistrationState, request: Request, now: _dt.datetime) -> Action:
        status, kind = state.status, request.kind
        if kind == "identity_refused":
            return _rejection(request, "identity_change_refused",
                              "a self-pay (自费) registration cannot become 医保 (自费不允许改医保); register again")
        if status == "cancelled":
            return _rejection(request, "cancelled", "the visit's registration was cancelled")
        if status == "rejected":
            return self._serve_unregistered(request)
        if status == "self_pay":
            return self._serve_self_pay(request)
        if kind in ("cancel", "self_pay_switch"):
            return self._serve_rollback(visit, state, request)
        if kind == "discharge":
            if state.discharged and request.phase == "new":
                return _rejection(request, OUT_OF_ORDER,
                                  "already discharged (2402 done); cancel the discharge first (2405)")
            return self._serve_discharge(visit, state, request, now)
        if kind == "reopen":
            return self._serve_reopen(visit, state, request, now)
        if state.discharged or request.phase in ("unwinding", "refused"):  # admission_change
            return self._serve_late_change(visit, state, request)
        return admission_change_step(self.config, visit, state, request)

    def _serve_late_change(self, visit: Visit, state: RegistrationState, request: Request) -> Action:
        """An admission change HIS made before the discharge that arrived after it (another CDC table): the platform
        takes 2403 only in the ward, so the discharge is cancelled (2405, once settlement agreed: no final
        settlement stands), the change sent (2403) and the stay discharged again (2402). A change dated after the
        discharge is refused: HIS cancels the discharge itself first."""
        if request.phase == "new":
            if not _dated_before_discharge(state, request):
                return _rejection(request, OUT_OF_ORDER, "admission information cannot change after the discharge; "
                                                         "cancel the discharge first (2405)")
            return LocalChange(f"late_change:{request.tag}", _ask_settlement(request.id, request.kind, "discharge"))
        if request.phase == "unwinding":
            return Wait("settlement has not answered whether the discharge may be cancelled for a late change")
        if request.phase == "refused":
            return _rejection(request, OUT_OF_ORDER, "the change is dated before the discharge but arrived after it, "
                                                     "and the discharge cannot be cancelled to send it: "
                                                     f"{request.reason or 'settlement refused'}")
        return reopen_step(self.config, visit, state, request)

    def _serve_rollback(self, visit: Visit, state: RegistrationState, request: Request) -> Action:
        target = _target(state, request)
        if request.phase == "new":
            if target == "discharge" and not state.discharged:
                return _rejection(request, OUT_OF_ORDER, "the visit is not discharged: no discharge to cancel (2405)")
            if target == "admission" and state.discharged:
                return _rejection(request, OUT_OF_ORDER, "cancel the discharge first: 2405")
            return LocalChange(f"unwind:{request.tag}", _ask_settlement(request.id, request.kind, target))
        if request.phase == "unwinding":
            return Wait("settlement has not answered the unwind request yet")
        if request.phase == "refused":
            return _rejection(request, OUT_OF_ORDER, f"settlement refused: {request.reason or 'no reason given'}")
        return rollback_step(self.config, visit, state, request)

    def _serve_discharge(self, visit: Visit, state: RegistrationState, request: Request,
                         now: _dt.datetime) -> Action:
        """出院: settlement first uploads every charge line of the stay that has arrived (2301 is refused after
        2402), then answers ``ready_for_discharge``; 2402 follows. Settlement's silence past ``discharge_wait``
        (a stopped worker) does not hold the discharge back: 2402 goes, the reason is kept in the result, and
        lines still arriving later are uploaded by reopening the stay (``reopen_requested``)."""
        if request.phase in ("new", "unwound"):
            return LocalChange(f"discharge:{request.tag}", _ask_discharge(request.id, request.kind))
        if request.phase == "settling":
            deadline = (request.asked_at or request.received_at) + self.config.discharge_wait
            if now < deadline:
                return Wait("settlement is uploading the stay's charge lines before the discharge", until=deadline)
            seconds = int(self.config.discharge_wait.total_seconds())
            return LocalChange(f"discharge_anyway:{request.tag}", _discharge_anyway(
                request.id, request.kind, f"settlement did not confirm within {seconds} s that the stay's charge "
                                          "lines are uploaded; discharged without its confirmation"))
        return discharge_step(self.config, visit, state, request)

    def _serve_reopen(self, visit: Visit, state: RegistrationState, request: Request, now: _dt.datetime) -> Action:
        """Settlement's request: 2405, then the discharge again (as :meth:`_serve_discharge`)."""
        if request.phase == "new":
            if not state.discharged or request.event is None:
                return LocalChange(f"reopen_refused:{request.tag}", _reopen_refused(
                    request.id, "the stay is not discharged on the platform: there is no discharge to reopen"))
            return reopen_step(self.config, visit, state, request)
        return self._serve_discharge(visit, state, request, now)

    def _serve_unregistered(self, request: Request) -> Action:
        """The platform refused the registration: nothing of it exists there."""
        if request.kind == "cancel":
            if request.target == "discharge":
                return _rejection(request, OUT_OF_ORDER, "the visit was never admitted: no discharge to cancel")
            return LocalChange(f"cancel:{request.tag}", _cancel_locally(request.id))
        if request.kind == "self_pay_switch":
            return LocalChange(f"self_pay:{request.tag}", _switch_locally(request.id, self.config))
        return _rejection(request, "not_registered",
                          "the platform refused the registration/admission: nothing to discharge or change")

    def _serve_self_pay(self, request: Request) -> Action:
        if request.kind == "cancel" and request.target != "discharge":
            return LocalChange(f"cancel:{request.tag}", _cancel_locally(request.id))
        return LocalChange(f"noop:{request.tag}", _close_silently(request.id))

    # --- local changes -----------------------------------------------------------------------------------------

    def _self_pay_from_start(self, conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        if fresh.status != "pending":
            return
        reg = fresh.registration_event()
        fresh.status = "self_pay"
        emit_result(visit, "self_pay", (reg.event_id,), request=request_label(fresh),
                    since=fresh.registration_received_at, med_type=getattr(reg, "med_type", None),
                    detail=fee_detail(self.config, reg, None) or None)  # type: ignore[arg-type]
        emit_fact(visit, "registered", (reg.event_id,), self_pay=True, med_type=getattr(reg, "med_type", None),
                  begntime=getattr(reg, "begntime", None),
                  ipt_otp_no=reg.ipt_otp_no if isinstance(reg, PatientRegistered) else getattr(reg, "ipt_no", None))
        save_state(visit, fresh)

    # --- parking -----------------------------------------------------------------------------------------------

    def on_parked(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        state = load_state(visit)
        state.parked = Failure(reason_code=reason_code, reason=mask_text(reason))
        head = state.head() if state.status != "pending" else None
        label = request_label(state, head)
        emit_result(visit, "parked", ("parked", visit.version), request=label,
                    his_request_id=head.id if head else None, mdtrt_id=state.mdtrt_id,
                    target=_target(state, head) if head else None, reason_code=reason_code,
                    reason=mask_text(reason))
        if state.status == "pending" and state.registration is not None:
            # settlement must not wait for a registration that may never come (a replay may still bring it)
            emit_fact(visit, "registration_failed", ("parked", visit.version), reason=mask_text(reason))
        save_state(visit, state)


def _dated_before_discharge(state: RegistrationState, request: Request) -> bool:
    last = state.last_discharge()
    return last is not None and request.occurred_at < last.occurred_at


# --- helpers building LocalChanges (each re-reads the fresh visit it is applied to) -----------------------------

def _target(state: RegistrationState, request: Request) -> str | None:
    if request.kind == "self_pay_switch":
        return "registration" if state.kind == "outpatient" else "admission"
    return request.target


def _reject(visit: Visit, state: RegistrationState, request: Request, code: str, reason: str) -> None:
    request.phase = "rejected"
    emit_result(visit, "rejected", (request.kind, request.id), request=request_label(state, request),
                since=request.received_at, his_request_id=request.id, mdtrt_id=state.mdtrt_id,
                target=_target(state, request), reason_code=code, reason=reason)
    close_request(visit, request.kind, request.id, request.occurred_at, reason=f"rejected [{code}]: {reason}")


def _rejection(request: Request, code: str, reason: str) -> LocalChange:
    request_id, kind = request.id, request.kind

    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)
        if current is not None and current.active:
            _reject(visit, fresh, current, code, reason)
            save_state(visit, fresh)

    return LocalChange(f"reject:{request.tag}", apply)


def _ask_settlement(request_id: str, kind: str, target: str | None) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)  # type: ignore[arg-type]
        if current is None or current.phase != "new":
            return
        current.phase = "unwinding"
        person = fresh.person
        # the HIS cancellation's own time and id: settlement serves it after the HIS settlement and refund
        # requests that came before it, never ahead of them
        emit_fact(visit, "unwind_requested", (current.kind, current.id), his_request_id=current.id,
                  occurred_at=current.occurred_at, unwind=target, mdtrt_id=fresh.mdtrt_id,
                  psn_no=person.psn_no if person else None, self_pay=current.kind == "self_pay_switch")
        save_state(visit, fresh)

    return apply


def _ask_discharge(request_id: str, kind: str) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)  # type: ignore[arg-type]
        if current is None or current.phase not in ("new", "unwound"):
            return
        event = current.parsed()
        assert isinstance(event, Discharge)
        current.phase, current.asked_at = "settling", clock.now()
        person = fresh.person
        # the HIS discharge's own time: settlement queues it among the HIS requests it got directly
        emit_fact(visit, "discharge_requested", (current.kind, current.id, "asked"), his_request_id=current.id,
                  occurred_at=current.occurred_at, endtime=event.endtime, mdtrt_id=fresh.mdtrt_id,
                  psn_no=person.psn_no if person else None)
        save_state(visit, fresh)

    return apply


def _discharge_anyway(request_id: str, kind: str, reason: str) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)  # type: ignore[arg-type]
        if current is None or current.phase != "settling":
            return
        current.phase, current.reason = "ready", reason
        log.warning("discharge sent without settlement's confirmation", extra={"fields": {
            "service": SERVICE, "reason": reason}})
        save_state(visit, fresh)

    return apply


def _reopen_refused(request_id: str, reason: str) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, "reopen")
        if current is None or not current.active:
            return
        current.phase = "rejected"
        emit_fact(visit, "reopen_failed", ("reopen", request_id), his_request_id=request_id, reason=reason)
        save_state(visit, fresh)

    return apply


def _cancel_locally(request_id: str) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, "cancel")
        if current is None or not current.active:
            return
        current.phase = "done"
        fresh.status = "cancelled"
        ident = (current.kind, current.id)
        fact = "registration_cancelled" if fresh.kind == "outpatient" else "admission_cancelled"
        emit_result(visit, "cancelled", ident, request=request_label(fresh, current), since=current.received_at,
                    his_request_id=current.id, target=current.target,
                    detail={"platform": "nothing to cancel: the visit has no 医保 registration"})
        emit_fact(visit, fact, ident, his_request_id=current.id)
        close_request(visit, current.kind, current.id, current.occurred_at)
        save_state(visit, fresh)

    return apply


def _switch_locally(request_id: str, config: ChainConfig) -> Any:
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, "self_pay_switch")
        if current is None or not current.active:
            return
        current.phase = "done"
        fresh.status, fresh.self_pay = "self_pay", True
        reg = fresh.registration_event()
        ident = (current.kind, current.id)
        emit_result(visit, "self_pay", ident, request=request_label(fresh, current), since=current.received_at,
                    his_request_id=current.id, detail={"switched_from": "insurance", **fee_detail(config, reg, None)})
        emit_fact(visit, "registered", ident, self_pay=True, his_request_id=current.id,
                  med_type=getattr(reg, "med_type", None), begntime=getattr(reg, "begntime", None))
        save_state(visit, fresh)

    return apply


def _close_silently(request_id: str) -> Any:
    """A self-pay visit's discharge or change: nothing to do on the platform and nothing HIS waits for."""
    def apply(conn: Connection, visit: Visit) -> None:
        fresh = load_state(visit)
        for current in fresh.requests:
            if current.id == request_id and current.active:
                current.phase = "done"
                close_request(visit, current.kind, current.id, current.occurred_at)
        save_state(visit, fresh)

    return apply
