"""Inpatient chain 2401 → (2403) → 2301… → 2402 → 2303/2304 (or 中途结算 with mid_setl_flag=1 before 2402);
rollback strictly in reverse: 2305 → 2405 → (2305 of a mid settlement) → 2302 → 2404, never across visits.

2401 never opens a second admission for a person (see :mod:`.admissions`): a repeated 2401 — typically one whose
answer was lost — is refused, and 5303 tells the chain the mdtrt_id the first one got.
"""

from __future__ import annotations

from typing import Any

from .admissions import open_admissions
from .calls import Call, block, need, rows
from .details import upload_details
from .settlement import (
    cancel,
    check_cert,
    commit,
    compute_split,
    load_person,
    load_visit,
    setldetail_of,
    setlinfo_of,
    settlement_to_cancel,
)
from .state import Settlement, Visit

__all__ = ["register"]

_ADMISSION_REQUIRED = ("insutype", "begntime", "med_type", "ipt_no", "atddr_no", "chfpdr_name", "adm_dept_codg",
                       "adm_dept_name", "dscg_maindiag_code", "dscg_maindiag_name")


def _visit(call: Call, data: dict[str, Any], path: str = "data") -> Visit:
    visit = load_visit(call, need(call, data, "mdtrt_id", path), need(call, data, "psn_no", path), "inpatient")
    if visit.status == "cancelled":
        raise call.refuse(f"{path}.mdtrt_id: the admission was cancelled (已撤销入院)")
    return visit


def _active_settlements(call: Call, visit: Visit) -> list[Settlement]:
    return sorted(
        (s for s in call.platform.ledger.settlements.values()
         if s.mdtrt_id == visit.mdtrt_id and s.refd_setl_flag == "0" and s.status == "active"),
        key=lambda s: (s.setl_time, s.setl_id),
    )


#: what 2401/2403 tell about the admission that 5201 answers back (the hospital's values, kept as sent)
_REGISTRATION_FIELDS = ("mdtrt_cert_type", "medrcdno", "atddr_no", "chfpdr_name", "adm_dept_codg", "adm_dept_name",
                        "adm_bed", "dscg_maindiag_code", "dscg_maindiag_name", "main_cond_dscr", "dise_codg",
                        "dise_name")
#: what 2402 tells about the discharge
_DISCHARGE_FIELDS = ("dscg_dept_codg", "dscg_dept_name", "dscg_bed", "dscg_way")


def _registration(info: dict[str, Any]) -> dict[str, str]:
    return {k: str(info[k]) for k in _REGISTRATION_FIELDS if info.get(k) not in (None, "")}


def h2401(call: Call) -> dict[str, Any]:
    info = block(call, "mdtrtinfo")
    psn_no = need(call, info, "psn_no", "mdtrtinfo")
    person = load_person(call, psn_no)
    for field in _ADMISSION_REQUIRED:
        need(call, info, field, "mdtrtinfo")
    if str(info["insutype"]) != person.insutype:
        raise call.refuse("mdtrtinfo.insutype: the person is not insured under this insutype (参保险种不符)")
    check_cert(call, info, person, "mdtrtinfo")
    ledger = call.platform.ledger
    held = open_admissions(ledger, psn_no=psn_no)
    if any(v.fixmedins_code == call.fixmedins_code for v in held):
        # the usual cause: a 2401 whose answer was lost, sent again — the first one admitted the person
        raise call.refuse("mdtrtinfo.psn_no: the person is already admitted (已在院), an admission stays open until "
                          "its final settlement; 5303 finds it")
    if held:
        raise call.refuse("mdtrtinfo.psn_no: the person is already admitted in another institution "
                          "(已在其他定点医疗机构住院)")
    key = (call.fixmedins_code, "ipt:" + str(info["ipt_no"]))
    taken = ledger.ipt_otp_nos.get(key)
    if taken and ledger.visits[taken].status != "cancelled":
        raise call.refuse("mdtrtinfo.ipt_no: already used in this institution (住院号重复); 5201 finds that visit")
    for i, row in enumerate(rows(call, "diseinfo", required=False)):
        for field in ("diag_type", "diag_srt_no", "diag_code", "diag_name"):
            need(call, row, field, f"diseinfo[{i}]")
    mdtrt_id = call.platform.new_id()
    ledger.visits[mdtrt_id] = Visit(
        mdtrt_id=mdtrt_id, kind="inpatient", psn_no=psn_no, insutype=str(info["insutype"]),
        fixmedins_code=call.fixmedins_code, ipt_otp_no=str(info["ipt_no"]), begntime=str(info["begntime"]),
        created_msgid=call.msgid, med_type=str(info["med_type"]), info_uploaded=True, created=call.now,
        registration=_registration(info),
    )
    ledger.ipt_otp_nos[key] = mdtrt_id
    call.record.effect = {"kind": "visit", "mdtrt_id": mdtrt_id}
    return {"data": {"mdtrt_id": mdtrt_id}}


def h2403(call: Call) -> dict[str, Any]:
    info = block(call, "adminfo")
    visit = _visit(call, info, "adminfo")
    if visit.status != "open":
        raise call.refuse("order: admission information cannot change after discharge (出院后不能变更)")
    if info.get("med_type"):
        visit.med_type = str(info["med_type"])
    visit.registration.update(_registration(info))
    call.record.effect = {"kind": "visit_info", "mdtrt_id": visit.mdtrt_id}
    return {}


def h2301(call: Call) -> dict[str, Any]:
    items = rows(call, "feedetail")
    visit = _visit(call, items[0], "feedetail[0]")
    if visit.status != "open":
        raise call.refuse("order: fee details cannot be uploaded after discharge (2405 cancels the discharge)")
    return upload_details(call, visit, items, inpatient=True)


def h2302(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    if visit.status != "open":
        raise call.refuse("rollback order: cancel the discharge (2405) before revoking details")
    sn = need(call, data, "feedetl_sn")
    if sn == "0000":
        targets = visit.unsettled()
    else:
        detail = visit.details.get(sn)
        if detail is None or detail.status == "revoked":
            raise call.refuse("data.feedetl_sn: 明细不存在 (no such fee detail for this visit)")
        if detail.status == "settled":
            raise call.refuse("rollback order: the detail is settled; cancel the settlement (2305) first")
        targets = [detail]
    if not targets:
        raise call.refuse("data.feedetl_sn: 无可撤销的费用明细 (no unsettled fee details to revoke)")
    for d in targets:
        d.status = "revoked"
    call.record.effect = {"kind": "details_revoked", "mdtrt_id": visit.mdtrt_id, "feedetl_sns": [d.feedetl_sn for d in targets]}
    return {}


def h2402(call: Call) -> dict[str, Any]:
    info = block(call, "dscginfo")
    visit = _visit(call, info, "dscginfo")
    if visit.status != "open":
        raise call.refuse("order: the person is already discharged (已出院)")
    if need(call, info, "insutype", "dscginfo") != visit.insutype:
        raise call.refuse("dscginfo.insutype: differs from the admission")
    endtime = need(call, info, "endtime", "dscginfo")
    need(call, info, "dscg_way", "dscginfo")
    visit.status = "discharged"
    visit.endtime = endtime
    visit.discharge = {k: str(info[k]) for k in _DISCHARGE_FIELDS if info.get(k) not in (None, "")}
    call.record.effect = {"kind": "discharge", "mdtrt_id": visit.mdtrt_id}
    return {}


def _settle(call: Call, *, commit_it: bool) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    mid = need(call, data, "mid_setl_flag")
    if mid not in {"0", "1"}:
        raise call.refuse("data.mid_setl_flag: must be 0 or 1")
    if mid == "1" and visit.status != "open":
        raise call.refuse("data.mid_setl_flag: 中途结算 only while admitted (not after discharge)")
    if mid == "0" and visit.status != "discharged":
        raise call.refuse("order: discharge (2402) before the final settlement, or set mid_setl_flag=1")
    person = load_person(call, visit.psn_no)
    check_cert(call, data, person)
    details = visit.unsettled()
    split = compute_split(call, visit, details, data, visit.med_type)
    if commit_it:
        return commit(call, visit, details, split, med_type=visit.med_type, mid_setl_flag=mid)
    info = setlinfo_of(call, visit, split, setl_id="", med_type=visit.med_type)
    call.record.effect = {"kind": "presettlement", "mdtrt_id": visit.mdtrt_id}
    return {"setlinfo": info, "setldetail": setldetail_of(call, visit, split)}


def h2303(call: Call) -> dict[str, Any]:
    return _settle(call, commit_it=False)


def h2304(call: Call) -> dict[str, Any]:
    return _settle(call, commit_it=True)


def h2305(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    setl_id = need(call, data, "setl_id")
    settlement = settlement_to_cancel(call, visit, setl_id)
    active = _active_settlements(call, visit)
    if active and active[-1].setl_id != setl_id:
        raise call.refuse("rollback order: cancel the visit's latest settlement first")
    if settlement.mid_setl_flag == "1" and visit.status == "discharged":
        raise call.refuse("rollback order: cancel the discharge (2405) before a 中途结算")
    return cancel(call, visit, settlement)


def h2405(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    if visit.status != "discharged":
        raise call.refuse("order: the person is not discharged")
    if any(s.mid_setl_flag == "0" for s in _active_settlements(call, visit)):
        raise call.refuse("rollback order: cancel the settlement (2305) before the discharge")
    visit.status = "open"
    visit.endtime = ""
    visit.discharge = {}
    call.record.effect = {"kind": "discharge_cancelled", "mdtrt_id": visit.mdtrt_id}
    return {}


def h2404(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    if visit.status == "discharged":
        raise call.refuse("rollback order: cancel the discharge (2405) first")
    if _active_settlements(call, visit):
        raise call.refuse("rollback order: cancel the settlements (2305) first")
    if visit.active_details():
        raise call.refuse("rollback order: revoke the fee details (2302) first")
    visit.status = "cancelled"
    call.record.effect = {"kind": "visit_cancelled", "mdtrt_id": visit.mdtrt_id}
    return {}


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"2401": h2401, "2402": h2402, "2403": h2403, "2404": h2404, "2405": h2405, "2301": h2301,
                     "2302": h2302, "2303": h2303, "2304": h2304, "2305": h2305})
