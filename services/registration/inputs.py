"""Platform inputs of the registration chain, built from the canonical HIS events and the chain's state.

Each builder returns the envelope ``input`` object with absent values left out; the national client formats and
validates it against the catalog before sending (``EnvelopeValidationError`` names a missing field such as
``mdtrtinfo.adm_bed``, and the chain tells HIS). Where the platform requires a value the HIS event may leave
empty but another field of the same event implies, the builder derives it and says so below:

* 2203/2401/2402 diagnosis rows: ``diag_dept``, ``dise_dor_no``, ``dise_dor_name`` and ``diag_time`` default to the
  visit's department, doctor and time (HIS doctor stations often store them once per visit, not per row);
* 2401 ``dscg_maindiag_code``/``_name`` (住院主诊断) default to the main admission diagnosis, ``adm_diag_dscr`` to
  its name; without any diagnosis, the admission's ``dise_codg``/``dise_name`` become the one diagnosis row;
* 2402 ``dscg_dept_codg``/``_name`` default to the admission department; its diagnoses to the admission's.

Query inputs (5201, 5303) look ``window`` either side of the visit's begntime.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from yibao.hisevents.models import Admission, AdmissionChanged, Diagnosis, Discharge, PatientRegistered
from yibao.registration.state import Person, VisitInfoState

__all__ = [
    "ADMISSION_FIELDS",
    "compact",
    "in_1101",
    "in_2001",
    "in_2201",
    "in_2202",
    "in_2203",
    "in_2401",
    "in_2402",
    "in_2403",
    "in_2404",
    "in_2405",
    "q_5201",
    "q_5303",
    "main_diagnosis",
    "merged_admission",
]

#: 2401 mdtrtinfo fields an Admission / AdmissionChanged event may carry (the admission_info block)
ADMISSION_FIELDS = (
    "coner_name", "tel", "begntime", "mdtrt_cert_type", "mdtrt_cert_no", "med_type", "ipt_no", "medrcdno",
    "atddr_no", "chfpdr_name", "adm_diag_dscr", "adm_dept_codg", "adm_dept_name", "adm_bed", "dscg_maindiag_code",
    "dscg_maindiag_name", "main_cond_dscr", "dise_codg", "dise_name", "oprn_oprt_code", "oprn_oprt_name", "fpsc_no",
    "matn_type", "birctrl_type", "latechb_flag", "geso_val", "fetts", "fetus_cnt", "pret_flag", "birctrl_matn_date",
    "dise_type_code",
)
_VISIT_INFO_FIELDS = ("main_cond_dscr", "dise_codg", "dise_name", "birctrl_type", "birctrl_matn_date", "matn_type",
                      "geso_val")
_DISCHARGE_FIELDS = ("dise_codg", "dise_name", "oprn_oprt_code", "oprn_oprt_name", "fpsc_no", "matn_type",
                     "birctrl_type", "latechb_flag", "geso_val", "fetts", "fetus_cnt", "pret_flag",
                     "birctrl_matn_date", "cop_flag", "dscg_bed", "dscg_way", "die_date")


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out absent values (None and blank text): the catalog then reports a *required* one as missing."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}


# --- person, treatment ------------------------------------------------------------------------------------------

def in_1101(reg: PatientRegistered | Admission) -> dict[str, Any]:
    return {"data": compact({
        "mdtrt_cert_type": reg.mdtrt_cert_type, "mdtrt_cert_no": reg.mdtrt_cert_no, "card_sn": reg.card_sn,
        "psn_cert_type": reg.psn_cert_type if reg.certno else None, "certno": reg.certno,
    })}


def in_2001(person: Person, reg: PatientRegistered | Admission, *, fixmedins_code: str) -> dict[str, Any]:
    return {"data": compact({
        "psn_no": person.psn_no, "insutype": person.insutype, "fixmedins_code": fixmedins_code,
        "med_type": reg.med_type, "begntime": reg.begntime,
        "dise_codg": getattr(reg, "dise_codg", None), "dise_name": getattr(reg, "dise_name", None),
    })}


# --- outpatient -------------------------------------------------------------------------------------------------

def in_2201(person: Person, reg: PatientRegistered) -> dict[str, Any]:
    return {"data": compact({
        "psn_no": person.psn_no, "insutype": person.insutype, "begntime": reg.begntime,
        "mdtrt_cert_type": reg.mdtrt_cert_type, "mdtrt_cert_no": reg.mdtrt_cert_no, "ipt_otp_no": reg.ipt_otp_no,
        "atddr_no": reg.atddr_no, "dr_name": reg.dr_name, "dept_code": reg.dept_code, "dept_name": reg.dept_name,
        "caty": reg.caty,
    })}


def in_2202(person: Person, mdtrt_id: str, ipt_otp_no: str) -> dict[str, Any]:
    return {"data": {"psn_no": person.psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": ipt_otp_no}}


def _outpatient_diagnosis(d: Diagnosis, reg: PatientRegistered, when: _dt.datetime) -> dict[str, Any]:
    return compact({
        "diag_type": d.diag_type, "diag_srt_no": d.diag_srt_no, "diag_code": d.diag_code, "diag_name": d.diag_name,
        "diag_dept": d.diag_dept or reg.dept_name, "dise_dor_no": d.dise_dor_no or reg.atddr_no,
        "dise_dor_name": d.dise_dor_name or reg.dr_name, "diag_time": d.diag_time or when, "vali_flag": d.vali_flag,
    })


def in_2203(person: Person, mdtrt_id: str, reg: PatientRegistered, info: VisitInfoState) -> dict[str, Any]:
    fields = info.fields
    mdtrtinfo = compact({
        "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "med_type": fields.med_type or reg.med_type,
        "begntime": fields.begntime or reg.begntime,
        **{k: getattr(fields, k) for k in _VISIT_INFO_FIELDS},
    })
    rows = sorted(info.diagnoses.values(), key=lambda d: (d.diag_type, d.diag_srt_no))
    return {"mdtrtinfo": mdtrtinfo, "diseinfo": [_outpatient_diagnosis(d, reg, reg.begntime) for d in rows]}


# --- inpatient --------------------------------------------------------------------------------------------------

def main_diagnosis(diagnoses: Iterable[Diagnosis]) -> Diagnosis | None:
    """The valid main diagnosis (maindiag_flag 1), else the first valid one by (diag_type, diag_srt_no)."""
    valid = sorted((d for d in diagnoses if d.vali_flag == "1"), key=lambda d: (d.diag_type, d.diag_srt_no))
    return next((d for d in valid if d.maindiag_flag == "1"), valid[0] if valid else None)


def merged_admission(admission: Admission, overlay: dict[str, Any]) -> Admission:
    """The admission as it stands after the 2403 changes applied so far (``overlay``: changed fields, JSON)."""
    if not overlay:
        return admission
    data = admission.model_dump(mode="json")
    data.update({k: v for k, v in overlay.items() if k in ADMISSION_FIELDS and v is not None})
    return Admission.model_validate(data)


def _admission_diagnoses(adm: Admission, diagnoses: Iterable[Diagnosis]) -> list[Diagnosis]:
    rows = sorted(diagnoses, key=lambda d: (d.diag_type, d.diag_srt_no))
    if rows:
        return rows
    code, name = adm.dscg_maindiag_code or adm.dise_codg, adm.dscg_maindiag_name or adm.dise_name
    if code and name:
        return [Diagnosis(diag_type="1", diag_srt_no=1, diag_code=code, diag_name=name, maindiag_flag="1")]
    return []


def _admission_row(d: Diagnosis, adm: Admission, psn_no: str, mdtrt_id: str | None) -> dict[str, Any]:
    return compact({
        **({"mdtrt_id": mdtrt_id} if mdtrt_id else {}),
        "psn_no": psn_no, "diag_type": d.diag_type, "maindiag_flag": d.maindiag_flag, "diag_srt_no": d.diag_srt_no,
        "diag_code": d.diag_code, "diag_name": d.diag_name, "adm_cond": d.adm_cond,
        "diag_dept": d.diag_dept or adm.adm_dept_name, "dise_dor_no": d.dise_dor_no or adm.atddr_no,
        "dise_dor_name": d.dise_dor_name or adm.chfpdr_name, "diag_time": d.diag_time or adm.begntime,
    })


def _admission_info(person: Person, adm: Admission, diagnoses: list[Diagnosis]) -> dict[str, Any]:
    main = main_diagnosis(diagnoses)
    info = {k: getattr(adm, k) for k in ADMISSION_FIELDS}
    info.update(psn_no=person.psn_no, insutype=person.insutype)
    if main is not None:
        info["dscg_maindiag_code"] = adm.dscg_maindiag_code or main.diag_code
        info["dscg_maindiag_name"] = adm.dscg_maindiag_name or main.diag_name
        info["adm_diag_dscr"] = adm.adm_diag_dscr or main.diag_name
    return compact(info)


def in_2401(person: Person, adm: Admission, diagnoses: Iterable[Diagnosis]) -> dict[str, Any]:
    rows = _admission_diagnoses(adm, diagnoses)
    return {"mdtrtinfo": _admission_info(person, adm, rows),
            "diseinfo": [_admission_row(d, adm, person.psn_no, None) for d in rows]}


def in_2403(person: Person, mdtrt_id: str, adm: Admission, change: AdmissionChanged,
            diagnoses: Iterable[Diagnosis]) -> dict[str, Any]:
    """2403 sends the whole admission as it stands with this change applied (the platform overwrites it)."""
    rows = _admission_diagnoses(adm, diagnoses)
    info = _admission_info(person, adm, rows)
    info.update(compact({"mdtrt_id": mdtrt_id, "endtime": change.endtime, "insutype": change.insutype}))
    return {"adminfo": info, "diseinfo": [_admission_row(d, adm, person.psn_no, mdtrt_id) for d in rows]}


def in_2402(person: Person, mdtrt_id: str, adm: Admission, discharge: Discharge,
            admission_diagnoses: Iterable[Diagnosis]) -> dict[str, Any]:
    dscginfo = compact({
        "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "insutype": person.insutype, "endtime": discharge.endtime,
        **{k: getattr(discharge, k) for k in _DISCHARGE_FIELDS},
        "dscg_dept_codg": discharge.dscg_dept_codg or adm.adm_dept_codg,
        "dscg_dept_name": discharge.dscg_dept_name or adm.adm_dept_name,
    })
    source = list(discharge.diagnoses) or list(admission_diagnoses)
    rows = _admission_diagnoses(adm, source)
    diseinfo = []
    for d in rows:
        row = _admission_row(d, adm, person.psn_no, mdtrt_id)
        row.pop("adm_cond", None)  # 2402 diseinfo has no adm_cond
        row["diag_dept"] = d.diag_dept or dscginfo.get("dscg_dept_name")
        row["diag_time"] = d.diag_time or discharge.endtime
        diseinfo.append(compact(row))
    return {"dscginfo": dscginfo, "diseinfo": diseinfo}


def in_2404(person: Person, mdtrt_id: str) -> dict[str, Any]:
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}


def in_2405(person: Person, mdtrt_id: str) -> dict[str, Any]:
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}}


# --- queries ----------------------------------------------------------------------------------------------------

def q_5201(psn_no: str, around: _dt.datetime, window: _dt.timedelta, *, mdtrt_id: str | None = None
           ) -> dict[str, Any]:
    return {"data": compact({"psn_no": psn_no, "begntime": around - window, "endtime": around + window,
                             "mdtrt_id": mdtrt_id})}


def q_5303(psn_no: str, around: _dt.datetime, window: _dt.timedelta) -> dict[str, Any]:
    return {"data": {"psn_no": psn_no, "begntime": around - window, "endtime": around + window}}
