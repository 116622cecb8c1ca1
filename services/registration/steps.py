"""The registration chain's platform steps: what each sends, what its answer changes, and how an unknown outcome
of it is resolved (:data:`UNKNOWN_POLICIES`, the documented policy).

Every ``on_ok`` / ``on_refused`` works on the visit as the engine reloaded it after the call (a message may have
been absorbed meanwhile), so each applies a *relative* change — set this mdtrt_id, mark this version uploaded,
finish this request — and each moves the state on so the same step is never chosen again after it succeeded or
was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from yibao.chains.model import QuerySpec, Step, UnknownPolicy, Visit
from yibao.core import clock
from yibao.core.privacy import mask_text
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError
from yibao.hisevents.models import Admission, AdmissionChanged, Discharge, PatientRegistered
from yibao.registration import inputs
from yibao.registration.config import ChainConfig
from yibao.registration.consultation_fee import QuoteInputError
from yibao.registration.identity import choose_insurance
from yibao.registration.outcomes import close_request, emit_fact, emit_result
from yibao.registration.state import Failure, RegistrationState, Request, diagnosis_key, load_state, save_state

__all__ = [
    "PolicyKind",
    "PolicyRow",
    "UNKNOWN_POLICIES",
    "policy_for",
    "refusal",
    "fail_registration",
    "fee_detail",
    "request_label",
    "person_step",
    "treatment_step",
    "register_step",
    "visit_info_step",
    "rollback_step",
    "discharge_step",
    "reopen_step",
    "admission_change_step",
    "found_registration",
    "found_admission",
    "found_discharged",
    "found_in_ward",
    "found_cancelled",
]

PolicyKind = Literal["retry", "query", "reverse", "query_then_reverse"]


@dataclass(frozen=True)
class PolicyRow:
    kind: PolicyKind
    query_infno: str | None
    reason: str


#: How an unknown outcome (lost answer, reset, 5xx after sending, a crash mid-call) of each step is resolved
#: before anything else happens to the visit. The engine journals and counts the resolution
#: (``yibao_unknown_outcomes_total{infno, resolution}``: retried, adopted, absent …).
UNKNOWN_POLICIES: dict[str, PolicyRow] = {
    "1101": PolicyRow("retry", None, "人员信息获取 reads; sending it again changes nothing"),
    "2001": PolicyRow("retry", None, "待遇检查 reads; sending it again changes nothing"),
    "2201": PolicyRow("query", "5201", "挂号 creates a visit and a repeat is refused (门诊号重复): ask 5201 for a valid "
                                       "visit with our ipt_otp_no and adopt its mdtrt_id; none → send again"),
    "2203": PolicyRow("retry", None, "就诊信息 is overwritten by the latest upload: sending it again is harmless"),
    "2202": PolicyRow("query", "5201", "挂号撤销: 5201 vali_flag 0 means it took effect → adopt; else send again"),
    "2401": PolicyRow("query", "5303", "入院 opens an admission and a repeat is refused (已在院): ask 5303 for an open "
                                       "admission with our ipt_no and adopt its mdtrt_id; none → send again"),
    "2403": PolicyRow("retry", None, "入院信息变更 is overwritten by the latest change: sending it again is harmless"),
    "2402": PolicyRow("query", "5201", "出院: 5201 shows the discharge (endtime) when it took effect → adopt; else "
                                       "send again"),
    "2405": PolicyRow("query", "5201", "出院撤销: 5201 shows the person in the ward again (no endtime) → adopt; else "
                                       "send again"),
    "2404": PolicyRow("query", "5201", "入院撤销: 5201 vali_flag 0 means it took effect → adopt; else send again"),
}


def policy_for(infno: str, query: Callable[[Visit, str], QuerySpec] | None = None) -> UnknownPolicy:
    row = UNKNOWN_POLICIES[infno]
    return UnknownPolicy(row.kind, query=query if row.kind != "retry" else None)


# --- shared transitions -----------------------------------------------------------------------------------------

def refusal(exc: BusinessRejection | EnvelopeValidationError) -> tuple[str, str]:
    """(reason_code, reason) of a refused step: the platform's err_msg, or which field broke which rule."""
    if isinstance(exc, BusinessRejection):
        return "rejected", mask_text(exc.err_msg or "refused without a message")
    return "invalid_input", str(exc)


def request_label(state: RegistrationState, request: Request | None = None) -> str:
    """The bounded ``request`` label of the chain metrics."""
    if request is None:
        return "registration" if state.kind == "outpatient" else "admission"
    if request.kind == "cancel":
        return f"cancel_{request.target}"
    return {"identity_refused": "identity_change"}.get(request.kind, request.kind)


def fee_detail(cfg: ChainConfig, reg: PatientRegistered | Admission, insutype: str | None) -> dict[str, Any]:
    """诊查费统筹 at the counter: the pooled and self-paid parts of the registration fee (outpatient only)."""
    if not isinstance(reg, PatientRegistered) or reg.reg_fee is None:
        return {}
    try:
        quote = cfg.fee_rules.quote(reg_fee=reg.reg_fee, reg_type=reg.reg_type, med_type=reg.med_type,
                                    insutype=insutype)
    except QuoteInputError as exc:
        return {"consultation_fee_error": str(exc)}
    return {"consultation_fee": quote.as_detail()}


def fail_registration(visit: Visit, state: RegistrationState, failure: Failure, msgid: str | None = None) -> None:
    """The registration will not happen: HIS is told why, settlement that the visit has no platform visit."""
    reg = state.registration_event()
    state.status, state.failure = "rejected", failure
    emit_result(visit, "rejected", (reg.event_id,), request=request_label(state),
                since=state.registration_received_at, step_infno=failure.step_infno, msgid=msgid,
                reason_code=failure.reason_code, reason=failure.reason)
    emit_fact(visit, "registration_failed", (reg.event_id,), reason=failure.reason)


def _refused_registration(infno: str) -> Callable[[Connection, Visit, Any], None]:
    def on_refused(conn: Connection, visit: Visit, exc: Any) -> None:
        state = load_state(visit)
        if state.status != "pending":
            return
        code, reason = refusal(exc)
        fail_registration(visit, state, Failure(reason_code=code, reason=reason, step_infno=infno))
        save_state(visit, state)

    return on_refused


def _reg_facts(state: RegistrationState, reg: PatientRegistered | Admission) -> dict[str, Any]:
    person = state.person
    assert person is not None
    return {"psn_no": person.psn_no, "insutype": person.insutype, "insuplc_admdvs": person.insuplc_admdvs,
            "psn_cert_type": person.psn_cert_type, "mdtrt_cert_type": reg.mdtrt_cert_type,
            "mdtrt_cert_no": reg.mdtrt_cert_no, "card_sn": reg.card_sn, "med_type": reg.med_type,
            "mdtrt_id": state.mdtrt_id, "begntime": reg.begntime,
            "ipt_otp_no": reg.ipt_otp_no if isinstance(reg, PatientRegistered) else reg.ipt_no}


# --- 1101, 2001 -------------------------------------------------------------------------------------------------

def person_step(cfg: ChainConfig, visit: Visit, state: RegistrationState) -> Step:
    reg = state.registration_event()
    assert isinstance(reg, (PatientRegistered, Admission))

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        if fresh.status != "pending" or fresh.person is not None:
            return
        chosen = choose_insurance(output, reg.insutype)
        if isinstance(chosen, Failure):
            fail_registration(visit, fresh, chosen, msgid)
        else:
            fresh.person = chosen
        save_state(visit, fresh)

    return Step("1101", "1101", inputs.in_1101(reg), on_ok=on_ok, on_refused=_refused_registration("1101"),
                unknown=policy_for("1101"))


def treatment_step(cfg: ChainConfig, visit: Visit, state: RegistrationState) -> Step:
    reg = state.registration_event()
    person = state.person
    assert person is not None and isinstance(reg, (PatientRegistered, Admission))

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        if fresh.status != "pending" or fresh.treatment_checked:
            return
        rows = [r for r in (output.get("trtinfo") or []) if isinstance(r, dict)]
        fresh.treatment = [{k: r.get(k) for k in ("fund_pay_type", "trt_enjymnt_flag", "trt_chk_rslt")}
                           for r in rows]
        fresh.treatment_checked = True
        denied = [r for r in fresh.treatment if str(r.get("trt_enjymnt_flag")) == "0"]
        if denied and cfg.treatment_check_blocks:
            why = "; ".join(f"{r.get('fund_pay_type')}: {r.get('trt_chk_rslt') or '不享受待遇'}" for r in denied)
            fail_registration(visit, fresh, Failure(reason_code="treatment_not_enjoyed", step_infno="2001",
                                                    reason=mask_text(f"2001 待遇检查: {why}")), msgid)
        save_state(visit, fresh)

    return Step("2001", "2001", inputs.in_2001(person, reg, fixmedins_code=cfg.fixmedins_code), on_ok=on_ok,
                on_refused=_refused_registration("2001"), unknown=policy_for("2001"), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)


# --- 2201 / 2401 ------------------------------------------------------------------------------------------------

def _registered_detail(cfg: ChainConfig, state: RegistrationState, reg: PatientRegistered | Admission,
                       number: str | None) -> dict[str, Any]:
    """The registered/admitted result's detail: HIS's number, the 诊查费 split, and the 2001 result when checked
    (with ``treatment_check_blocks`` off, a benefit not enjoyed is reported here instead of refusing)."""
    person = state.person
    detail: dict[str, Any] = {"ipt_otp_no": number, **fee_detail(cfg, reg, person.insutype if person else None)}
    if state.treatment:
        detail["treatment"] = state.treatment
    return detail


def _rows(output: dict[str, Any] | None, node: str) -> list[dict[str, Any]]:
    value = (output or {}).get(node)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def found_registration(ipt_otp_no: str) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """5201 → the 2201 answer the lost call would have given: a valid visit carrying our ipt_otp_no."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in _rows(output, "mdtrtinfo"):
            if str(row.get("ipt_otp_no") or "") == ipt_otp_no and str(row.get("vali_flag") or "1") != "0":
                return {"data": {"mdtrt_id": str(row["mdtrt_id"]), "psn_no": str(row.get("psn_no") or ""),
                                 "ipt_otp_no": ipt_otp_no}}
        return None

    return found


def found_admission(ipt_no: str) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """5303 → the 2401 answer: an open admission carrying our ipt_no."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in _rows(output, "data"):
            if str(row.get("ipt_otp_no") or "") == ipt_no and row.get("mdtrt_id"):
                return {"data": {"mdtrt_id": str(row["mdtrt_id"])}}
        return None

    return found


def _visit_row(output: dict[str, Any], mdtrt_id: str) -> dict[str, Any] | None:
    return next((r for r in _rows(output, "mdtrtinfo") if str(r.get("mdtrt_id") or "") == mdtrt_id), None)


def found_discharged(mdtrt_id: str) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """5201 → 2402 took effect: our visit shows a discharge time (or is no longer in the ward)."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = _visit_row(output, mdtrt_id)
        if row is None or str(row.get("vali_flag") or "1") == "0":
            return None
        return {} if not _blank(row.get("endtime")) else None

    return found


def found_in_ward(mdtrt_id: str) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """5201 → 2405 took effect: our visit is valid and has no discharge time any more."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = _visit_row(output, mdtrt_id)
        if row is None or str(row.get("vali_flag") or "1") == "0":
            return None
        return {} if _blank(row.get("endtime")) and str(row.get("inhosp_stas") or "1") != "0" else None

    return found


def found_cancelled(mdtrt_id: str) -> Callable[[dict[str, Any], str], dict[str, Any] | None]:
    """5201 → 2202/2404 took effect: our visit is listed with vali_flag 0. A visit missing from the answer is
    *not* taken as cancelled (a platform listing valid visits only would make that ambiguous): send again."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = _visit_row(output, mdtrt_id)
        return {} if row is not None and str(row.get("vali_flag") or "") == "0" else None

    return found


def register_step(cfg: ChainConfig, visit: Visit, state: RegistrationState) -> Step:
    """2201 挂号 (outpatient) or 2401 入院 (inpatient)."""
    reg = state.registration_event()
    person = state.person
    assert person is not None
    if isinstance(reg, PatientRegistered):
        infno, body = "2201", inputs.in_2201(person, reg)
        query = QuerySpec("5201", inputs.q_5201(person.psn_no, reg.begntime, cfg.query_window),
                          found=found_registration(reg.ipt_otp_no), insuplc_admdvs=person.insuplc_admdvs)
    else:
        assert isinstance(reg, Admission)
        infno, body = "2401", inputs.in_2401(person, reg, reg.diagnoses)
        query = QuerySpec("5303", inputs.q_5303(person.psn_no, reg.begntime, cfg.query_window),
                          found=found_admission(reg.ipt_no), insuplc_admdvs=person.insuplc_admdvs)

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        if fresh.status != "pending" or fresh.mdtrt_id is not None:
            return
        data = output.get("data") if isinstance(output.get("data"), dict) else {}
        mdtrt_id = str(data.get("mdtrt_id") or "")
        if not mdtrt_id:
            fail_registration(visit, fresh, Failure(reason_code="bad_platform_answer", step_infno=infno,
                                                    reason=f"{infno} answer carries no mdtrt_id"), msgid)
            save_state(visit, fresh)
            return
        fresh.mdtrt_id, fresh.status, fresh.registered_at = mdtrt_id, "registered", clock.now()
        fresh.parked = None
        if isinstance(reg, Admission):
            fresh.admission_diagnoses = {diagnosis_key(d): d for d in reg.diagnoses}
        facts = _reg_facts(fresh, reg)
        kind = "registered" if infno == "2201" else "admitted"
        emit_result(visit, kind, (reg.event_id,), request=request_label(fresh),
                    since=fresh.registration_received_at, step_infno=infno, msgid=msgid, psn_no=person.psn_no,
                    insutype=person.insutype, insuplc_admdvs=person.insuplc_admdvs, med_type=reg.med_type,
                    mdtrt_id=mdtrt_id, detail=_registered_detail(cfg, fresh, reg, facts["ipt_otp_no"]))
        # "registered" establishes person and platform visit for both kinds; inpatient visits add "admitted"
        emit_fact(visit, "registered", (reg.event_id,), **facts)
        if kind == "admitted":
            emit_fact(visit, "admitted", (reg.event_id,), **facts)
        save_state(visit, fresh)

    return Step(infno, infno, body, on_ok=on_ok, on_refused=_refused_registration(infno),
                unknown=policy_for(infno, lambda v, omsgid: query), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)


# --- 2203 -------------------------------------------------------------------------------------------------------

def visit_info_step(cfg: ChainConfig, visit: Visit, state: RegistrationState) -> Step:
    reg = state.registration_event()
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None and isinstance(reg, PatientRegistered)
    sent = state.visit_info.version
    body = inputs.in_2203(person, mdtrt_id, reg, state.visit_info)
    med_type = body["mdtrtinfo"].get("med_type")
    since = state.visit_info.last_changed_at

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        if fresh.visit_info.uploaded_version >= sent:
            return
        fresh.visit_info.uploaded_version = sent
        emit_result(visit, "visit_info_uploaded", ("2203", sent), request="visit_info", since=since,
                    step_infno="2203", msgid=msgid, psn_no=person.psn_no, mdtrt_id=mdtrt_id, med_type=med_type,
                    his_request_id=fresh.visit_info.last_event_id)
        emit_fact(visit, "visit_info_uploaded", ("2203", sent), psn_no=person.psn_no, mdtrt_id=mdtrt_id,
                  med_type=med_type, insutype=person.insutype, insuplc_admdvs=person.insuplc_admdvs)
        save_state(visit, fresh)

    def on_refused(conn: Connection, visit: Visit, exc: Any) -> None:
        fresh = load_state(visit)
        if fresh.visit_info.uploaded_version >= sent:
            return
        fresh.visit_info.uploaded_version = sent  # this version is answered; a later change is sent again
        code, reason = refusal(exc)
        emit_result(visit, "rejected", ("2203", sent), request="visit_info", since=since, step_infno="2203",
                    mdtrt_id=mdtrt_id, reason_code=code, reason=reason,
                    his_request_id=fresh.visit_info.last_event_id)
        save_state(visit, fresh)

    return Step("2203", "2203", body, on_ok=on_ok, on_refused=on_refused, unknown=policy_for("2203"),
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


# --- requests: rollbacks, discharge, admission changes ----------------------------------------------------------

def _request_refused(request_id: str, kind: str, infno: str) -> Callable[[Connection, Visit, Any], None]:
    def on_refused(conn: Connection, visit: Visit, exc: Any) -> None:
        fresh = load_state(visit)
        request = fresh.request(request_id, kind)  # type: ignore[arg-type]
        if request is None or not request.active:
            return
        request.phase = "rejected"
        code, reason = refusal(exc)
        emit_result(visit, "rejected", (request.kind, request.id), request=request_label(fresh, request),
                    since=request.received_at, his_request_id=request.id, step_infno=infno,
                    mdtrt_id=fresh.mdtrt_id, target=request.target, reason_code=code, reason=reason)
        close_request(visit, request.kind, request.id, request.occurred_at, reason=f"{infno} refused: {reason}")
        save_state(visit, fresh)

    return on_refused


def _finish_rollback(visit: Visit, state: RegistrationState, request: Request, infno: str, msgid: str,
                     cfg: ChainConfig) -> None:
    request.phase = "done"
    close_request(visit, request.kind, request.id, request.occurred_at)
    person = state.person
    ident = (request.kind, request.id)
    common = {"his_request_id": request.id, "psn_no": person.psn_no if person else None, "mdtrt_id": state.mdtrt_id}
    if infno == "2405":
        state.discharged, state.endtime = False, None
        emit_result(visit, "cancelled", ident, request=request_label(state, request), since=request.received_at,
                    step_infno=infno, msgid=msgid, target="discharge", **common)
        emit_fact(visit, "discharge_cancelled", ident, **common)
        return
    cancelled_fact = "registration_cancelled" if infno == "2202" else "admission_cancelled"
    emit_fact(visit, cancelled_fact, ident, **common)
    if request.kind == "self_pay_switch":
        reg = state.registration_event()
        state.status, state.self_pay = "self_pay", True
        emit_result(visit, "self_pay", ident, request=request_label(state, request), since=request.received_at,
                    step_infno=infno, msgid=msgid, his_request_id=request.id,
                    detail={"switched_from": "insurance", **fee_detail(cfg, reg, None)})
        emit_fact(visit, "registered", ident, self_pay=True, med_type=reg.med_type, begntime=reg.begntime,
                  his_request_id=request.id)
        return
    state.status = "cancelled"
    emit_result(visit, "cancelled", ident, request=request_label(state, request), since=request.received_at,
                step_infno=infno, msgid=msgid, target=request.target, **common)


def rollback_step(cfg: ChainConfig, visit: Visit, state: RegistrationState, request: Request) -> Step:
    """2202 挂号撤销 / 2404 入院撤销 (cancellation or switch to self-pay) or 2405 出院撤销, once settlement unwound."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    reg = state.registration_event()
    if request.kind == "cancel" and request.target == "discharge":
        infno, body, found = "2405", inputs.in_2405(person, mdtrt_id), found_in_ward(mdtrt_id)
    elif state.kind == "outpatient":
        assert isinstance(reg, PatientRegistered)
        infno, body, found = "2202", inputs.in_2202(person, mdtrt_id, reg.ipt_otp_no), found_cancelled(mdtrt_id)
    else:
        infno, body, found = "2404", inputs.in_2404(person, mdtrt_id), found_cancelled(mdtrt_id)
    query = QuerySpec("5201", inputs.q_5201(person.psn_no, reg.begntime, cfg.query_window, mdtrt_id=mdtrt_id),
                      found=found, insuplc_admdvs=person.insuplc_admdvs)
    request_id, kind = request.id, request.kind

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)
        if current is None or not current.active:
            return
        _finish_rollback(visit, fresh, current, infno, msgid, cfg)
        save_state(visit, fresh)

    return Step(f"{infno}:{request.tag}", infno, body, on_ok=on_ok,
                on_refused=_request_refused(request_id, kind, infno),
                unknown=policy_for(infno, lambda v, omsgid: query), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)


def _admission(state: RegistrationState) -> Admission:
    reg = state.registration_event()
    assert isinstance(reg, Admission)
    return inputs.merged_admission(reg, state.admission_overlay)


def discharge_step(cfg: ChainConfig, visit: Visit, state: RegistrationState, request: Request) -> Step:
    """2402 出院, once settlement confirmed the stay's lines are uploaded (or its deadline passed) — for HIS's
    discharge, or again at the end of a reopen settlement asked for."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    discharge = request.parsed()
    assert isinstance(discharge, Discharge)
    adm = _admission(state)
    body = inputs.in_2402(person, mdtrt_id, adm, discharge, state.admission_diagnoses.values())
    query = QuerySpec("5201", inputs.q_5201(person.psn_no, adm.begntime, cfg.query_window, mdtrt_id=mdtrt_id),
                      found=found_discharged(mdtrt_id), insuplc_admdvs=person.insuplc_admdvs)
    request_id, kind = request.id, request.kind

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)
        if current is None or not current.active:
            return
        current.phase = "done"
        fresh.discharged, fresh.endtime = True, discharge.endtime
        ident = (kind, request_id)
        detail: dict[str, Any] = {"endtime": clock.format_datetime(discharge.endtime)}
        if kind == "reopen":  # HIS did not ask: it is told why its stay was discharged once more
            detail["reopened_for_settlement"] = request_id
        if current.reason:
            detail["settlement_note"] = current.reason
        emit_result(visit, "discharged", ident, request=kind, since=current.received_at,
                    his_request_id=request_id if kind == "discharge" else None, step_infno="2402", msgid=msgid,
                    psn_no=person.psn_no, mdtrt_id=mdtrt_id, detail=detail)
        emit_fact(visit, "discharged", ident, psn_no=person.psn_no, mdtrt_id=mdtrt_id, endtime=discharge.endtime,
                  his_request_id=request_id)
        close_request(visit, kind, request_id, current.occurred_at)
        save_state(visit, fresh)

    def on_refused(conn: Connection, visit: Visit, exc: Any) -> None:
        if kind != "reopen":  # HIS is told; settlement hears the discharge is closed and uploads again
            _request_refused(request_id, kind, "2402")(conn, visit, exc)
            return
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)
        if current is None or not current.active:
            return
        current.phase = "rejected"
        emit_fact(visit, "reopen_failed", (kind, request_id), his_request_id=request_id,
                  reason=f"2402 after reopening the stay refused: {refusal(exc)[1]}")
        save_state(visit, fresh)

    return Step(f"2402:{request.tag}", "2402", body, on_ok=on_ok, on_refused=on_refused,
                unknown=policy_for("2402", lambda v, omsgid: query), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)


def reopen_step(cfg: ChainConfig, visit: Visit, state: RegistrationState, request: Request) -> Step:
    """2405 出院撤销 that HIS did not ask for, to send what the platform takes only before discharge:
    settlement's ``reopen_requested`` (charge lines of the stay arrived after its 2402; the discharge is sent again
    by the same request afterwards), or an admission change dated before the discharge that arrived after it (the
    2403 follows, then the discharge again as a reopen request queued behind it)."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    reg = state.registration_event()
    query = QuerySpec("5201", inputs.q_5201(person.psn_no, reg.begntime, cfg.query_window, mdtrt_id=mdtrt_id),
                      found=found_in_ward(mdtrt_id), insuplc_admdvs=person.insuplc_admdvs)
    request_id, kind = request.id, request.kind
    phase = "new" if kind == "reopen" else "unwound"  # a late admission change: settlement agreed first

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, kind)
        if current is None or current.phase != phase or not fresh.discharged:
            return
        if kind == "reopen":
            current.phase = "unwound"
        else:
            _discharge_again(fresh, current)
        fresh.discharged, fresh.endtime = False, None
        emit_fact(visit, "discharge_cancelled", (kind, request_id), his_request_id=request_id,
                  psn_no=person.psn_no, mdtrt_id=mdtrt_id)
        save_state(visit, fresh)

    def on_refused(conn: Connection, visit: Visit, exc: Any) -> None:
        if kind != "reopen":  # HIS is told why its change could not be sent
            _request_refused(request_id, kind, "2405")(conn, visit, exc)
            return
        fresh = load_state(visit)
        current = fresh.request(request_id, "reopen")
        if current is None or current.phase != "new":
            return
        current.phase = "rejected"
        emit_fact(visit, "reopen_failed", ("reopen", request_id), his_request_id=request_id,
                  reason=f"2405 refused: {refusal(exc)[1]}")
        save_state(visit, fresh)

    return Step(f"2405:{request.tag}", "2405", inputs.in_2405(person, mdtrt_id), on_ok=on_ok, on_refused=on_refused,
                unknown=policy_for("2405", lambda v, omsgid: query), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)


def _discharge_again(state: RegistrationState, change: Request) -> None:
    """Queue the stay's discharge once more, behind the late admission change its 2405 made room for: a reopen
    request already past its 2405 (phase ``unwound``), carrying the last discharge."""
    last = state.last_discharge()
    assert last is not None  # the stay was discharged: that is why its 2405 ran
    state.add_request(Request(id=f"{change.id}:dscg", kind="reopen", event=last.event, occurred_at=last.occurred_at,
                              received_at=clock.now(), seq=state.next_seq(), phase="unwound",
                              reason="discharged again after the admission change (2403) dated before the discharge"))


def admission_change_step(cfg: ChainConfig, visit: Visit, state: RegistrationState, request: Request) -> Step:
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    change = request.parsed()
    assert isinstance(change, AdmissionChanged)
    changed = {k: v for k, v in change.model_dump(mode="json", include=set(inputs.ADMISSION_FIELDS)).items()
               if v is not None}
    adm = inputs.merged_admission(_admission(state), changed)
    diagnoses = dict(state.admission_diagnoses)
    diagnoses.update({diagnosis_key(d): d for d in change.diagnoses})
    body = inputs.in_2403(person, mdtrt_id, adm, change, diagnoses.values())
    request_id = request.id

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        fresh = load_state(visit)
        current = fresh.request(request_id, "admission_change")
        if current is None or not current.active:
            return
        current.phase = "done"
        fresh.admission_overlay.update(changed)
        fresh.admission_diagnoses.update({diagnosis_key(d): d for d in change.diagnoses})
        ident = ("admission_change", request_id)
        emit_result(visit, "admission_changed", ident, request="admission_change", since=current.received_at,
                    his_request_id=request_id, step_infno="2403", msgid=msgid, psn_no=person.psn_no,
                    mdtrt_id=mdtrt_id, med_type=adm.med_type,
                    detail={"changed": sorted(changed), "change_reason": change.change_reason})
        emit_fact(visit, "admission_changed", ident, psn_no=person.psn_no, mdtrt_id=mdtrt_id, med_type=adm.med_type,
                  his_request_id=request_id)
        save_state(visit, fresh)

    return Step(f"2403:{request.tag}", "2403", body, on_ok=on_ok,
                on_refused=_request_refused(request_id, "admission_change", "2403"),
                unknown=policy_for("2403"), psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)
