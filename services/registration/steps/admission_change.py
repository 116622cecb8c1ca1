"""2403 入院信息变更: HIS changed the admission (department, bed, diagnoses, med_type …) while the patient is in the
ward. The whole admission is sent as it stands with the change applied (the platform overwrites it); a lost answer
is therefore simply sent again (catalog). A change dated before a discharge that overtook it (another CDC table)
is sent by reopening the stay first (:mod:`.discharge`); one dated after the discharge is refused by the chain.
"""

from __future__ import annotations

from yibao.chains.model import Call, Effects, Reply
from yibao.hisevents.models import AdmissionChanged
from yibao.registration.config import ChainConfig
from yibao.registration.results import emit_fact, emit_result
from yibao.registration.state import RegistrationState, Request, diagnosis_key
from yibao.registration.steps.common import compact, request_refused
from yibao.registration.steps.inpatient import (
    ADMISSION_FIELDS,
    admission,
    admission_info,
    diagnosis_row,
    diagnosis_rows,
    merged_admission,
)

__all__ = ["admission_change_call"]


def admission_change_call(cfg: ChainConfig, state: RegistrationState, request: Request) -> Call[RegistrationState]:
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    change = request.parsed()
    assert isinstance(change, AdmissionChanged)
    changed = {k: v for k, v in change.model_dump(mode="json", include=set(ADMISSION_FIELDS)).items()
               if v is not None}
    adm = merged_admission(admission(state), changed)
    diagnoses = dict(state.admission_diagnoses)
    diagnoses.update({diagnosis_key(d): d for d in change.diagnoses})
    rows = diagnosis_rows(adm, diagnoses.values())
    info = admission_info(person, adm, rows)
    info.update(compact({"mdtrt_id": mdtrt_id, "endtime": change.endtime, "insutype": change.insutype}))
    body = {"adminfo": info, "diseinfo": [diagnosis_row(d, adm, person.psn_no, mdtrt_id) for d in rows]}
    request_id = request.id

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        current = s.request(request_id, "admission_change")
        if current is None or not current.active:
            return
        current.phase = "done"
        s.admission_overlay.update(changed)
        s.admission_diagnoses.update({diagnosis_key(d): d for d in change.diagnoses})
        ident = ("admission_change", request_id)
        emit_result(fx, "admission_changed", ident, request="admission_change", since=current.received_at,
                    his_request_id=request_id, step_infno="2403", msgid=reply.msgid, psn_no=person.psn_no,
                    mdtrt_id=mdtrt_id, med_type=adm.med_type,
                    detail={"changed": sorted(changed), "change_reason": change.change_reason})
        emit_fact(fx, "admission_changed", ident, psn_no=person.psn_no, mdtrt_id=mdtrt_id, med_type=adm.med_type,
                  his_request_id=request_id)

    return Call(f"2403:{request.tag}", "2403", body, on_ok=on_ok,
                on_refused=request_refused(request_id, "admission_change", "2403"), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)
