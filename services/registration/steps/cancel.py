"""退号 / 取消入院 (2202 挂号撤销, 2404 入院撤销) and 医保 → 自费 for one visit (the same calls, then a self-pay visit).

The rollback order is the platform's: settlement is asked first (``unwind_requested``: it refunds nothing itself,
but withdraws the visit's details and refuses while a settlement stands); on its ``unwound`` the call goes. Lost
answer (catalog): 5201 — the visit listed with vali_flag 0 means the cancellation took effect (a visit missing from
the answer is *not* taken as cancelled: a platform listing valid visits only would make that ambiguous).

A visit the platform never registered (refused, or self-pay) is cancelled or switched locally: nothing to call.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Change, Effects, Reply
from yibao.hisevents.models import PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.results import ON_HIS_EVENTS, close_request, emit_fact, emit_result
from yibao.registration.state import RegistrationState, Request
from yibao.registration.steps.common import fee_detail, lookup_5201, request_label, request_refused, visit_row

__all__ = ["ask_settlement", "cancel_call", "cancel_locally", "switch_locally", "found_cancelled"]


def ask_settlement(request: Request, target: str | None) -> Change[RegistrationState]:
    """Ask settlement whether it stands in the way of the rollback (and to withdraw the details). The HIS
    cancellation's own time and id go with it: settlement serves it after the HIS settlement and refund requests
    that came before it, never ahead of them."""
    request_id, kind = request.id, request.kind

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or current.phase != "new":
            return
        current.phase = "unwinding"
        person = s.person
        emit_fact(fx, "unwind_requested", (current.kind, current.id), his_request_id=current.id,
                  occurred_at=current.occurred_at, unwind=target, mdtrt_id=s.mdtrt_id,
                  psn_no=person.psn_no if person else None, self_pay=current.kind == "self_pay_switch",
                  on_his_events=current.kind in ON_HIS_EVENTS)

    return Change(f"unwind:{request.tag}", apply)


def cancel_call(cfg: ChainConfig, state: RegistrationState, request: Request) -> Call[RegistrationState]:
    """2202 (outpatient) / 2404 (inpatient), once settlement unwound."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    reg = state.registration_event()
    if state.kind == "outpatient":
        assert isinstance(reg, PatientRegistered)
        infno = "2202"
        body = {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": reg.ipt_otp_no}}
    else:
        infno = "2404"
        body = {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}
    request_id, kind = request.id, request.kind

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or not current.active:
            return
        current.phase = "done"
        close_request(fx, current.kind, current.id, current.occurred_at)
        ident = (current.kind, current.id)
        common = {"his_request_id": current.id, "psn_no": person.psn_no, "mdtrt_id": s.mdtrt_id}
        emit_fact(fx, "registration_cancelled" if infno == "2202" else "admission_cancelled", ident, **common)
        if current.kind == "self_pay_switch":
            s.status, s.self_pay = "self_pay", True
            emit_result(fx, "self_pay", ident, request=request_label(s, current), since=current.received_at,
                        step_infno=infno, msgid=reply.msgid, his_request_id=current.id,
                        detail={"switched_from": "insurance", **fee_detail(cfg, reg, None)})
            emit_fact(fx, "registered", ident, self_pay=True, med_type=reg.med_type, begntime=reg.begntime,
                      his_request_id=current.id)
            return
        s.status = "cancelled"
        emit_result(fx, "cancelled", ident, request=request_label(s, current), since=current.received_at,
                    step_infno=infno, msgid=reply.msgid, target=current.target, **common)

    return Call(f"{infno}:{request.tag}", infno, body, on_ok=on_ok, on_refused=request_refused(request_id, kind, infno),
                lookup=lookup_5201(cfg, person, reg.begntime, found_cancelled(mdtrt_id), mdtrt_id=mdtrt_id),
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


def found_cancelled(mdtrt_id: str) -> Any:
    """5201 → 2202/2404 took effect: our visit is listed with vali_flag 0."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = visit_row(output, mdtrt_id)
        return {} if row is not None and str(row.get("vali_flag") or "") == "0" else None

    return found


def cancel_locally(request: Request) -> Change[RegistrationState]:
    """退号 of a visit the platform holds nothing of (refused, or self-pay)."""
    request_id = request.id

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, "cancel")
        if current is None or not current.active:
            return
        current.phase = "done"
        s.status = "cancelled"
        ident = (current.kind, current.id)
        emit_result(fx, "cancelled", ident, request=request_label(s, current), since=current.received_at,
                    his_request_id=current.id, target=current.target,
                    detail={"platform": "nothing to cancel: the visit has no 医保 registration"})
        emit_fact(fx, "registration_cancelled" if s.kind == "outpatient" else "admission_cancelled", ident,
                  his_request_id=current.id)
        close_request(fx, current.kind, current.id, current.occurred_at)

    return Change(f"cancel:{request.tag}", apply)


def switch_locally(cfg: ChainConfig, request: Request) -> Change[RegistrationState]:
    """医保 → 自费 of a visit the platform refused: nothing to cancel there."""
    request_id = request.id

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, "self_pay_switch")
        if current is None or not current.active:
            return
        current.phase = "done"
        s.status, s.self_pay = "self_pay", True
        reg = s.registration_event()
        ident = (current.kind, current.id)
        emit_result(fx, "self_pay", ident, request=request_label(s, current), since=current.received_at,
                    his_request_id=current.id, detail={"switched_from": "insurance", **fee_detail(cfg, reg, None)})
        emit_fact(fx, "registered", ident, self_pay=True, his_request_id=current.id,
                  med_type=getattr(reg, "med_type", None), begntime=getattr(reg, "begntime", None))

    return Change(f"self_pay:{request.tag}", apply)
