"""5201 就诊信息查询 and 5303 在院信息查询: what the platform holds about a person's visits.

They exist for the chains' hardest moment: a 2201 挂号 or 2401 入院 was sent and its answer lost. Neither may be
sent again blindly (2201 refuses a repeated ipt_otp_no, 2401 a second open admission), so the chain asks
instead — did the platform register the visit, under which mdtrt_id? — and matches on the hospital's own
number (``ipt_otp_no``), which the platform echoes exactly as the hospital sent it.

Rules (each has a test in tests/unit/simulator/test_visit_queries.py):

* Only the asking institution's visits are ever answered; another person's or institution's are invisible.
* 5201: the person's visits (outpatient and inpatient) that *began* within [begntime, endtime], narrowed by
  ``med_type`` and ``mdtrt_id`` when given; cancelled visits (2202/2404) stay listed with ``vali_flag`` "0".
  A registration not yet described by 2203 has ``med_type`` "12" (门诊挂号) — assumed: the national 2201 carries
  no med_type. No visit is an empty list, not an error.
* 5303: open admissions (see :mod:`.admissions`) that overlap [begntime, endtime] — in the ward, or discharged
  and not yet settled (then with the 2402 ``endtime``); of one person, or of the whole institution without
  ``psn_no``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from yibao.core import clock

from .admissions import open_admissions
from .calls import Call, block, need, opt
from .population import SimPerson
from .settlement import load_person
from .state import Visit

__all__ = ["register", "REGISTRATION_MED_TYPE", "effective_med_type", "visit_row", "admission_row"]

#: med_type of an outpatient registration until 2203 names one (national dictionary 12 门诊挂号; assumed)
REGISTRATION_MED_TYPE = "12"


def effective_med_type(visit: Visit) -> str:
    """The med_type the platform files the visit under."""
    if visit.kind == "outpatient" and not visit.info_uploaded:
        return REGISTRATION_MED_TYPE
    return visit.med_type


def _window(call: Call, data: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    bounds = []
    for key in ("begntime", "endtime"):
        text = need(call, data, key)
        try:
            bounds.append(clock.parse_datetime(text))
        except ValueError:
            raise call.refuse(f"data.{key}: not a date-time (yyyy-MM-dd HH:mm:ss)") from None
    begin, end = bounds
    if end < begin:
        raise call.refuse("data.endtime: before begntime")
    return begin, end


def _when(text: str) -> dt.datetime | None:
    """A time the hospital sent, as stored; None when absent or unreadable (such a visit matches no window)."""
    try:
        return clock.parse_datetime(text) if text else None
    except ValueError:
        return None


def _age(person: SimPerson, on: dt.date) -> Decimal:
    try:
        return Decimal(person.age(on))
    except ValueError:
        return Decimal(0)


def _person_fields(person: SimPerson, on: dt.date) -> dict[str, Any]:
    return {"psn_no": person.psn_no, "psn_cert_type": person.psn_cert_type, "certno": person.certno,
            "psn_name": person.psn_name, "gend": person.gend, "brdy": person.brdy, "age": _age(person, on)}


def _ipt_days(visit: Visit, now: dt.datetime) -> int | str:
    begin = _when(visit.begntime)
    if visit.kind != "inpatient" or begin is None:
        return ""
    end = _when(visit.endtime) or now
    return max(1, (end.date() - begin.date()).days)


def visit_row(call: Call, visit: Visit, person: SimPerson) -> dict[str, Any]:
    """One 5201 ``mdtrtinfo`` row. Absent optional elements are "" (as the platform sends them)."""
    reg, dscg, info = visit.registration, visit.discharge, visit.info
    in_ward = visit.kind == "inpatient" and visit.status == "open"
    return {
        "mdtrt_id": visit.mdtrt_id, **_person_fields(person, call.now.date()), "naty": person.naty,
        "coner_name": "", "tel": "", "insutype": visit.insutype, "psn_type": person.psn_type, "maf_psn_flag": "0",
        "cvlserv_flag": person.cvlserv_flag, "flxempe_flag": "0", "nwb_flag": "0",
        "insu_optins": person.insuplc_admdvs, "emp_name": person.emp_name,
        "begntime": visit.begntime, "endtime": visit.endtime, "mdtrt_cert_type": reg.get("mdtrt_cert_type", ""),
        "med_type": effective_med_type(visit), "ars_year_ipt_flag": "0", "pre_pay_flag": "0",
        "ipt_otp_no": visit.ipt_otp_no, "medrcdno": reg.get("medrcdno", ""), "atddr_no": reg.get("atddr_no", ""),
        "chfpdr_name": reg.get("chfpdr_name", ""), "adm_dept_codg": reg.get("adm_dept_codg", ""),
        "adm_dept_name": reg.get("adm_dept_name", ""), "adm_bed": reg.get("adm_bed", ""),
        "dscg_maindiag_code": reg.get("dscg_maindiag_code", ""), "dscg_maindiag_name": reg.get("dscg_maindiag_name", ""),
        "dscg_dept_codg": dscg.get("dscg_dept_codg", ""), "dscg_dept_name": dscg.get("dscg_dept_name", ""),
        "dscg_bed": dscg.get("dscg_bed", ""), "dscg_way": dscg.get("dscg_way", ""),
        "main_cond_dscr": info.get("main_cond_dscr", reg.get("main_cond_dscr", "")),
        "dise_codg": info.get("dise_codg", reg.get("dise_codg", "")),
        "dise_name": info.get("dise_name", reg.get("dise_name", "")),
        "inhosp_stas": "1" if in_ward else "0", "ipt_days": _ipt_days(visit, call.now),
        "opt_time": clock.format_datetime(visit.created) if visit.created else "",
        "vali_flag": "0" if visit.status == "cancelled" else "1",
    }


def admission_row(call: Call, visit: Visit, person: SimPerson) -> dict[str, Any]:
    """One 5303 ``data`` row; ``endtime`` only once 2402 discharged the person."""
    return {
        "mdtrt_id": visit.mdtrt_id, **_person_fields(person, call.now.date()), "insutype": visit.insutype,
        "begndate": visit.begntime[:10], "med_type": visit.med_type, "ipt_otp_no": visit.ipt_otp_no,
        "out_flag": "1" if person.insuplc_admdvs != call.platform.settings.admdvs else "0",
        "endtime": visit.endtime,
    }


def h5201(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    begin, end = _window(call, data)
    med_type = opt(call, data, "med_type")
    mdtrt_id = opt(call, data, "mdtrt_id")
    person = load_person(call, psn_no)
    found = []
    for visit in call.platform.ledger.visits.values():
        if visit.psn_no != psn_no or visit.fixmedins_code != call.fixmedins_code:
            continue
        if mdtrt_id and visit.mdtrt_id != mdtrt_id:
            continue
        if med_type and effective_med_type(visit) != med_type:
            continue
        began = _when(visit.begntime)
        if began is None or not begin <= began <= end:
            continue
        found.append(visit)
    found.sort(key=lambda v: (v.begntime, v.mdtrt_id))
    return {"mdtrtinfo": [visit_row(call, v, person) for v in found]}


def h5303(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = opt(call, data, "psn_no")
    begin, end = _window(call, data)
    ledger = call.platform.ledger
    if psn_no:
        load_person(call, psn_no)
    rows = []
    for visit in open_admissions(ledger, psn_no=psn_no, fixmedins_code=call.fixmedins_code):
        admitted, left = _when(visit.begntime), _when(visit.endtime)
        if admitted is None or admitted > end or (left is not None and left < begin):
            continue
        person = ledger.persons.get(visit.psn_no)
        if person is not None:
            rows.append(admission_row(call, visit, person))
    return {"data": rows}


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"5201": h5201, "5303": h5303})
