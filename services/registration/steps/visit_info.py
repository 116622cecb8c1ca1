"""2203 门诊就诊信息上传: the outpatient visit's diagnoses and medical fields, merged from every visit_info event.

Sent whenever the merged information changed since the last upload (``VisitInfoState.version``); a later change is
sent again. 门诊慢特病 (seed 003, :mod:`yibao.registration.chronic`): the diagnosis decides the med_type — when a valid
diagnosis falls under a listed 门慢门特病种 the patient's 备案 are asked first (5301, once per visit: it only reads,
a lost answer is sent again), and the visit goes up as 门特 (med_type and dise_codg of the 备案) or ordinary. Lost answer (catalog): sent again — the platform keeps the latest upload. Diagnosis rows default their
department, doctor and time to the registration's (doctor stations often store them once per visit).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.hisevents.models import Diagnosis, PatientRegistered
from yibao.registration import chronic
from yibao.registration.config import ChainConfig
from yibao.registration.results import emit_fact, emit_result
from yibao.registration.state import Person, RegistrationState, VisitInfoState
from yibao.registration.steps.common import compact

__all__ = ["visit_info_call"]

_FIELDS = ("main_cond_dscr", "dise_codg", "dise_name", "birctrl_type", "birctrl_matn_date", "matn_type", "geso_val")


def _diagnosis(d: Diagnosis, reg: PatientRegistered, when: _dt.datetime) -> dict[str, Any]:
    return compact({
        "diag_type": d.diag_type, "diag_srt_no": d.diag_srt_no, "diag_code": d.diag_code, "diag_name": d.diag_name,
        "diag_dept": d.diag_dept or reg.dept_name, "dise_dor_no": d.dise_dor_no or reg.atddr_no,
        "dise_dor_name": d.dise_dor_name or reg.dr_name, "diag_time": d.diag_time or when, "vali_flag": d.vali_flag,
    })


def _input(person: Person, mdtrt_id: str, reg: PatientRegistered, info: VisitInfoState,
           decision: chronic.Decision | None = None) -> dict[str, Any]:
    fields = info.fields
    mdtrtinfo = compact({
        "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": fields.med_type or reg.med_type,
        "begntime": fields.begntime or reg.begntime, **{k: getattr(fields, k) for k in _FIELDS},
    })
    if decision is not None:
        mdtrtinfo["med_type"] = decision.med_type
        if decision.chronic:
            mdtrtinfo.update(dise_codg=decision.dise_codg, dise_name=decision.dise_name)
    diagnoses = sorted(info.diagnoses.values(), key=lambda d: (d.diag_type, d.diag_srt_no))
    return {"mdtrtinfo": mdtrtinfo, "diseinfo": [_diagnosis(d, reg, reg.begntime) for d in diagnoses]}


def _valid_codes(info: VisitInfoState) -> list[str]:
    ordered = sorted(info.diagnoses.values(), key=lambda d: (d.maindiag_flag != "1", d.diag_type, d.diag_srt_no))
    return [d.diag_code for d in ordered if d.vali_flag == "1"]


def filings_call(person: Person) -> Call[RegistrationState]:
    """5301 人员慢特病备案查询: the patient's 备案, kept in the state (none when the platform refuses)."""
    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        if s.chronic_filings is None:
            s.chronic_filings = [f.model_dump() for f in chronic.filings_of(reply.output)]

    def on_refused(s: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        if s.chronic_filings is None:
            s.chronic_filings = []

    return Call("5301", "5301", {"data": {"psn_no": person.psn_no}}, on_ok=on_ok, on_refused=on_refused,
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


def visit_info_call(cfg: ChainConfig, state: RegistrationState) -> Call[RegistrationState]:
    reg = state.registration_event()
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None and isinstance(reg, PatientRegistered)
    codes = _valid_codes(state.visit_info)
    his_med_type = state.visit_info.fields.med_type or reg.med_type
    if state.chronic_filings is None and chronic.needs_filings(cfg.chronic_rules, his_med_type, codes):
        return filings_call(person)
    filings = [chronic.Filing.model_validate(f) for f in state.chronic_filings or []]
    decision = chronic.decide(cfg.chronic_rules, his_med_type, codes, filings, reg.begntime.date())
    sent = state.visit_info.version
    body = _input(person, mdtrt_id, reg, state.visit_info, decision)
    med_type = body["mdtrtinfo"].get("med_type")
    since = state.visit_info.last_changed_at

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        if s.visit_info.uploaded_version >= sent:
            return
        s.visit_info.uploaded_version = sent
        emit_result(fx, "visit_info_uploaded", ("2203", sent), request="visit_info", since=since, step_infno="2203",
                    msgid=reply.msgid, psn_no=person.psn_no, mdtrt_id=mdtrt_id, med_type=med_type,
                    his_request_id=s.visit_info.last_event_id,
                    detail={"chronic": decision.model_dump(exclude_none=True)} if decision is not None else None)
        emit_fact(fx, "visit_info_uploaded", ("2203", sent), psn_no=person.psn_no, mdtrt_id=mdtrt_id,
                  med_type=med_type, insutype=person.insutype, insuplc_admdvs=person.insuplc_admdvs)

    def on_refused(s: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        if s.visit_info.uploaded_version >= sent:
            return
        s.visit_info.uploaded_version = sent  # this version is answered; a later change is sent again
        emit_result(fx, "rejected", ("2203", sent), request="visit_info", since=since, step_infno="2203",
                    mdtrt_id=mdtrt_id, reason_code=refusal.reason_code, reason=refusal.text,
                    his_request_id=s.visit_info.last_event_id)

    return Call("2203", "2203", body, on_ok=on_ok, on_refused=on_refused, psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)
