"""2201 门诊挂号 (outpatient) and 2401 入院办理 (inpatient): the platform visit (mdtrt_id) every later call names.

Lost answer (catalog): the platform refuses a repeat (门诊号重复 / 已在院), so the visit is looked up — 5201 for a
valid visit carrying our ipt_otp_no, 5303 for an open admission carrying our ipt_no — and its mdtrt_id adopted;
no trace: sent again. On success HIS gets ``registered`` / ``admitted`` (with the 诊查费 split and the 2001 result
when checked) and settlement the person and the platform visit (``registered``, and ``admitted`` for a stay).
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Lookup, Reply
from yibao.core import clock
from yibao.hisevents.models import Admission, PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.results import emit_fact, emit_result
from yibao.registration.state import Failure, RegistrationState, diagnosis_key
from yibao.registration.steps.common import (
    compact,
    fail_registration,
    fee_detail,
    lookup_5201,
    refused_registration,
    request_label,
    rows,
)
from yibao.registration.steps.inpatient import admission_info, diagnosis_row, diagnosis_rows

__all__ = ["register_call", "found_registration", "found_admission"]


def register_call(cfg: ChainConfig, state: RegistrationState) -> Call[RegistrationState]:
    reg = state.registration_event()
    person = state.person
    assert person is not None
    if isinstance(reg, PatientRegistered):
        infno = "2201"
        body: dict[str, Any] = {"data": compact({
            "psn_no": person.psn_no, "insutype": person.insutype, "begntime": reg.begntime,
            "mdtrt_cert_type": reg.mdtrt_cert_type, "mdtrt_cert_no": reg.mdtrt_cert_no,
            "ipt_otp_no": reg.ipt_otp_no, "atddr_no": reg.atddr_no, "dr_name": reg.dr_name,
            "dept_code": reg.dept_code, "dept_name": reg.dept_name, "caty": reg.caty})}
        lookup = lookup_5201(cfg, person, reg.begntime, found_registration(reg.ipt_otp_no))
        number = reg.ipt_otp_no
    else:
        assert isinstance(reg, Admission)
        infno = "2401"
        diagnoses = diagnosis_rows(reg, reg.diagnoses)
        body = {"mdtrtinfo": admission_info(person, reg, diagnoses),
                "diseinfo": [diagnosis_row(d, reg, person.psn_no, None) for d in diagnoses]}
        lookup = Lookup("5303", {"data": {"psn_no": person.psn_no, "begntime": reg.begntime - cfg.query_window,
                                          "endtime": reg.begntime + cfg.query_window}},
                        found=found_admission(reg.ipt_no))
        number = reg.ipt_no

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        if s.status != "pending" or s.mdtrt_id is not None:
            return
        data = reply.output.get("data") if isinstance(reply.output.get("data"), dict) else {}
        mdtrt_id = str(data.get("mdtrt_id") or "")
        if not mdtrt_id:
            fail_registration(s, fx, Failure(reason_code="bad_platform_answer", step_infno=infno,
                                             reason=f"{infno} answer carries no mdtrt_id"), reply.msgid)
            return
        s.mdtrt_id, s.status, s.registered_at, s.parked = mdtrt_id, "registered", clock.now(), None
        if isinstance(reg, Admission):
            s.admission_diagnoses = {diagnosis_key(d): d for d in reg.diagnoses}
        kind = "registered" if infno == "2201" else "admitted"
        detail: dict[str, Any] = {"ipt_otp_no": number, **fee_detail(cfg, reg, person.insutype)}
        if s.treatment:  # with treatment_check_blocks off, a benefit not enjoyed is reported here
            detail["treatment"] = s.treatment
        emit_result(fx, kind, (reg.event_id,), request=request_label(s), since=s.registration_received_at,
                    step_infno=infno, msgid=reply.msgid, psn_no=person.psn_no, insutype=person.insutype,
                    insuplc_admdvs=person.insuplc_admdvs, med_type=reg.med_type, mdtrt_id=mdtrt_id, detail=detail)
        facts = {"psn_no": person.psn_no, "insutype": person.insutype, "insuplc_admdvs": person.insuplc_admdvs,
                 "psn_cert_type": person.psn_cert_type, "mdtrt_cert_type": reg.mdtrt_cert_type,
                 "mdtrt_cert_no": reg.mdtrt_cert_no, "card_sn": reg.card_sn, "med_type": reg.med_type,
                 "mdtrt_id": mdtrt_id, "begntime": reg.begntime, "ipt_otp_no": number}
        # "registered" establishes person and platform visit for both kinds; a stay adds "admitted"
        emit_fact(fx, "registered", (reg.event_id,), **facts)
        if kind == "admitted":
            emit_fact(fx, "admitted", (reg.event_id,), **facts)

    return Call(infno, infno, body, on_ok=on_ok, on_refused=refused_registration(infno), lookup=lookup,
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


def found_registration(ipt_otp_no: str) -> Any:
    """5201 → the 2201 answer the lost call would have given: a valid visit carrying our ipt_otp_no."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in rows(output, "mdtrtinfo"):
            if str(row.get("ipt_otp_no") or "") == ipt_otp_no and str(row.get("vali_flag") or "1") != "0":
                return {"data": {"mdtrt_id": str(row["mdtrt_id"]), "psn_no": str(row.get("psn_no") or ""),
                                 "ipt_otp_no": ipt_otp_no}}
        return None

    return found


def found_admission(ipt_no: str) -> Any:
    """5303 → the 2401 answer: an open admission carrying our ipt_no."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in rows(output, "data"):
            if str(row.get("ipt_otp_no") or "") == ipt_no and row.get("mdtrt_id"):
                return {"data": {"mdtrt_id": str(row["mdtrt_id"])}}
        return None

    return found
