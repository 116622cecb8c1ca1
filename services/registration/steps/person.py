"""1101 人员基本信息获取 — who the patient is and which insurance the visit uses — and 2001 人员待遇享受检查.

Both only read: a lost answer is sent again (the catalog marks them retry_safe). A refusal fails the registration
with the platform's reason. With ``treatment_check_blocks`` a benefit not enjoyed (trt_enjymnt_flag 0) fails it
too; otherwise it is reported in the registered result.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Reply
from yibao.core.privacy import mask_text
from yibao.hisevents.models import Admission, PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.identity import choose_insurance
from yibao.registration.state import Failure, RegistrationState
from yibao.registration.steps.common import compact, fail_registration, refused_registration

__all__ = ["person_call", "treatment_call"]


def person_call(cfg: ChainConfig, state: RegistrationState) -> Call[RegistrationState]:
    reg = state.registration_event()
    assert isinstance(reg, (PatientRegistered, Admission))
    body = {"data": compact({
        "mdtrt_cert_type": reg.mdtrt_cert_type, "mdtrt_cert_no": reg.mdtrt_cert_no, "card_sn": reg.card_sn,
        "psn_cert_type": reg.psn_cert_type if reg.certno else None, "certno": reg.certno,
    })}

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        if s.status != "pending" or s.person is not None:
            return
        chosen = choose_insurance(reply.output, reg.insutype)
        if isinstance(chosen, Failure):
            fail_registration(s, fx, chosen, reply.msgid)
        else:
            s.person = chosen

    return Call("1101", "1101", body, on_ok=on_ok, on_refused=refused_registration("1101"))


def treatment_call(cfg: ChainConfig, state: RegistrationState) -> Call[RegistrationState]:
    reg = state.registration_event()
    person = state.person
    assert person is not None and isinstance(reg, (PatientRegistered, Admission))
    body = {"data": compact({
        "psn_no": person.psn_no, "insutype": person.insutype, "fixmedins_code": cfg.fixmedins_code,
        "med_type": reg.med_type, "begntime": reg.begntime,
        "dise_codg": getattr(reg, "dise_codg", None), "dise_name": getattr(reg, "dise_name", None),
    })}

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        if s.status != "pending" or s.treatment_checked:
            return
        rows: list[dict[str, Any]] = [r for r in (reply.output.get("trtinfo") or []) if isinstance(r, dict)]
        s.treatment = [{k: r.get(k) for k in ("fund_pay_type", "trt_enjymnt_flag", "trt_chk_rslt")} for r in rows]
        s.treatment_checked = True
        denied = [r for r in s.treatment if str(r.get("trt_enjymnt_flag")) == "0"]
        if denied and cfg.treatment_check_blocks:
            why = "; ".join(f"{r.get('fund_pay_type')}: {r.get('trt_chk_rslt') or '不享受待遇'}" for r in denied)
            fail_registration(s, fx, Failure(reason_code="treatment_not_enjoyed", step_infno="2001",
                                             reason=mask_text(f"2001 待遇检查: {why}")), reply.msgid)

    return Call("2001", "2001", body, on_ok=on_ok, on_refused=refused_registration("2001"), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)
