"""What 2401 入院, 2402 出院 and 2403 入院信息变更 send about an admission: its fields as HIS described them (merged
with the changes 2403 sent since) and its diagnosis rows.

Where the platform requires a value HIS may leave empty but another field of the same event implies, it is
derived here: diagnosis rows' ``diag_dept``, ``dise_dor_no``, ``dise_dor_name`` and ``diag_time`` default to the
admission's department, doctor and time (doctor stations often store them once per stay); 2401's
``dscg_maindiag_code``/``_name`` (住院主诊断) default to the main admission diagnosis and ``adm_diag_dscr`` to its
name; without any diagnosis, the admission's ``dise_codg``/``dise_name`` become the one diagnosis row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from yibao.hisevents.models import Admission, Diagnosis
from yibao.registration.state import Person, RegistrationState
from yibao.registration.steps.common import compact

__all__ = ["ADMISSION_FIELDS", "main_diagnosis", "merged_admission", "admission", "diagnosis_rows", "admission_info",
           "diagnosis_row"]

#: 2401 mdtrtinfo fields an Admission / AdmissionChanged event may carry (the admission_info block)
ADMISSION_FIELDS = (
    "coner_name", "tel", "begntime", "mdtrt_cert_type", "mdtrt_cert_no", "med_type", "ipt_no", "medrcdno",
    "atddr_no", "chfpdr_name", "adm_diag_dscr", "adm_dept_codg", "adm_dept_name", "adm_bed", "dscg_maindiag_code",
    "dscg_maindiag_name", "main_cond_dscr", "dise_codg", "dise_name", "oprn_oprt_code", "oprn_oprt_name", "fpsc_no",
    "matn_type", "birctrl_type", "latechb_flag", "geso_val", "fetts", "fetus_cnt", "pret_flag", "birctrl_matn_date",
    "dise_type_code",
)


def main_diagnosis(diagnoses: Iterable[Diagnosis]) -> Diagnosis | None:
    """The valid main diagnosis (maindiag_flag 1), else the first valid one by (diag_type, diag_srt_no)."""
    valid = sorted((d for d in diagnoses if d.vali_flag == "1"), key=lambda d: (d.diag_type, d.diag_srt_no))
    return next((d for d in valid if d.maindiag_flag == "1"), valid[0] if valid else None)


def merged_admission(adm: Admission, overlay: dict[str, Any]) -> Admission:
    """The admission as it stands after the 2403 changes applied so far (``overlay``: changed fields, JSON)."""
    if not overlay:
        return adm
    data = adm.model_dump(mode="json")
    data.update({k: v for k, v in overlay.items() if k in ADMISSION_FIELDS and v is not None})
    return Admission.model_validate(data)


def admission(state: RegistrationState) -> Admission:
    """The visit's admission as the platform holds it now."""
    reg = state.registration_event()
    assert isinstance(reg, Admission)
    return merged_admission(reg, state.admission_overlay)


def diagnosis_rows(adm: Admission, diagnoses: Iterable[Diagnosis]) -> list[Diagnosis]:
    rows = sorted(diagnoses, key=lambda d: (d.diag_type, d.diag_srt_no))
    if rows:
        return rows
    code, name = adm.dscg_maindiag_code or adm.dise_codg, adm.dscg_maindiag_name or adm.dise_name
    if code and name:
        return [Diagnosis(diag_type="1", diag_srt_no=1, diag_code=code, diag_name=name, maindiag_flag="1")]
    return []


def diagnosis_row(d: Diagnosis, adm: Admission, psn_no: str, mdtrt_id: str | None) -> dict[str, Any]:
    return compact({
        **({"mdtrt_id": mdtrt_id} if mdtrt_id else {}),
        "psn_no": psn_no, "diag_type": d.diag_type, "maindiag_flag": d.maindiag_flag, "diag_srt_no": d.diag_srt_no,
        "diag_code": d.diag_code, "diag_name": d.diag_name, "adm_cond": d.adm_cond,
        "diag_dept": d.diag_dept or adm.adm_dept_name, "dise_dor_no": d.dise_dor_no or adm.atddr_no,
        "dise_dor_name": d.dise_dor_name or adm.chfpdr_name, "diag_time": d.diag_time or adm.begntime,
    })


def admission_info(person: Person, adm: Admission, diagnoses: list[Diagnosis]) -> dict[str, Any]:
    main = main_diagnosis(diagnoses)
    info = {k: getattr(adm, k) for k in ADMISSION_FIELDS}
    info.update(psn_no=person.psn_no, insutype=person.insutype)
    if main is not None:
        info["dscg_maindiag_code"] = adm.dscg_maindiag_code or main.diag_code
        info["dscg_maindiag_name"] = adm.dscg_maindiag_name or main.diag_name
        info["adm_diag_dscr"] = adm.adm_diag_dscr or main.diag_name
    return compact(info)
