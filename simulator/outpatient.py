"""Outpatient chain 2201 → 2203 → 2204 → 2206 → 2207, rollback 2208 → 2205 → 2202.

Every violation of the order is refused with infcode -1 and a message naming the rule.
"""

from __future__ import annotations

from typing import Any

from .calls import Call, block, need, opt, rows
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
from .state import Visit

__all__ = ["register"]


def h2201(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    person = load_person(call, psn_no)
    insutype = need(call, data, "insutype")
    if insutype != person.insutype:
        raise call.refuse("data.insutype: the person is not insured under this insutype (参保险种不符)")
    check_cert(call, data, person)
    ipt_otp_no = need(call, data, "ipt_otp_no")
    ledger = call.platform.ledger
    key = (call.fixmedins_code, ipt_otp_no)
    taken = ledger.ipt_otp_nos.get(key)
    if taken and ledger.visits[taken].status != "cancelled":
        # the usual cause: a 2201 whose answer was lost, sent again — the first one registered the visit
        raise call.refuse("data.ipt_otp_no: already registered in this institution (门诊号重复); "
                          "5201 finds the registered visit")
    for field in ("begntime", "atddr_no", "dr_name", "dept_code", "dept_name", "caty"):
        need(call, data, field)
    mdtrt_id = call.platform.new_id()
    ledger.visits[mdtrt_id] = Visit(
        mdtrt_id=mdtrt_id, kind="outpatient", psn_no=psn_no, insutype=insutype, fixmedins_code=call.fixmedins_code,
        ipt_otp_no=ipt_otp_no, begntime=str(data["begntime"]), created_msgid=call.msgid, created=call.now,
        registration={"mdtrt_cert_type": str(data["mdtrt_cert_type"]), "atddr_no": str(data["atddr_no"]),
                      "chfpdr_name": str(data["dr_name"]), "adm_dept_codg": str(data["dept_code"]),
                      "adm_dept_name": str(data["dept_name"]), "caty": str(data["caty"])},
    )
    ledger.ipt_otp_nos[key] = mdtrt_id
    call.record.effect = {"kind": "visit", "mdtrt_id": mdtrt_id}
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "ipt_otp_no": ipt_otp_no}}


def _open_visit(call: Call, data: dict[str, Any], path: str = "data") -> Visit:
    visit = load_visit(call, need(call, data, "mdtrt_id", path), need(call, data, "psn_no", path), "outpatient")
    if visit.status == "cancelled":
        raise call.refuse(f"{path}.mdtrt_id: the registration was cancelled (已撤销)")
    return visit


def h2202(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _open_visit(call, data)
    ipt_otp_no = opt(call, data, "ipt_otp_no")
    if ipt_otp_no and ipt_otp_no != visit.ipt_otp_no:
        raise call.refuse("data.ipt_otp_no: not the registration of this visit")
    if visit.active_details():
        raise call.refuse("rollback order: fee details still exist; cancel settlements (2208) and details (2205) first")
    visit.status = "cancelled"
    call.record.effect = {"kind": "visit_cancelled", "mdtrt_id": visit.mdtrt_id}
    return {}


def h2203(call: Call) -> dict[str, Any]:
    info = block(call, "mdtrtinfo")
    visit = _open_visit(call, info, "mdtrtinfo")
    med_type = need(call, info, "med_type", "mdtrtinfo")
    need(call, info, "begntime", "mdtrtinfo")
    need(call, info, "dise_codg", "mdtrtinfo") if info.get("dise_codg") is not None else None
    if visit.info_uploaded and med_type != visit.med_type and any(d.status == "settled" for d in visit.details.values()):
        raise call.refuse("mdtrtinfo.med_type: cannot change after a settlement")
    for i, row in enumerate(rows(call, "diseinfo", required=False)):
        for field in ("diag_type", "diag_srt_no", "diag_code", "diag_name"):
            need(call, row, field, f"diseinfo[{i}]")
    visit.med_type = med_type
    visit.info_uploaded = True
    visit.info = {"med_type": med_type, "dise_codg": str(info.get("dise_codg") or ""),
                  "dise_name": str(info.get("dise_name") or ""), "main_cond_dscr": str(info.get("main_cond_dscr") or "")}
    call.record.effect = {"kind": "visit_info", "mdtrt_id": visit.mdtrt_id}
    return {}


def h2204(call: Call) -> dict[str, Any]:
    items = rows(call, "feedetail")
    first = items[0]
    visit = _open_visit(call, first, "feedetail[0]")
    if not visit.info_uploaded:
        raise call.refuse("order: upload the visit information (2203) before fee details")
    return upload_details(call, visit, items, inpatient=False)


def h2205(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _open_visit(call, data)
    bchno = need(call, data, "chrg_bchno")
    batch = [d for d in visit.details.values() if d.status != "revoked" and (bchno == "0000" or d.chrg_bchno == bchno)]
    if any(d.status == "settled" for d in batch) and bchno != "0000":
        raise call.refuse("rollback order: this batch is settled; cancel the settlement (2208) first")
    targets = [d for d in batch if d.status == "uploaded"]
    if not targets:
        raise call.refuse("data.chrg_bchno: 无可撤销的费用明细 (no unsettled fee details to revoke)")
    for d in targets:
        d.status = "revoked"
    call.record.effect = {"kind": "details_revoked", "mdtrt_id": visit.mdtrt_id, "feedetl_sns": [d.feedetl_sn for d in targets]}
    return {}


def _settle(call: Call, *, commit_it: bool) -> dict[str, Any]:
    data = block(call, "data")
    visit = _open_visit(call, data)
    if not visit.info_uploaded:
        raise call.refuse("order: upload the visit information (2203) before settling")
    person = load_person(call, visit.psn_no)
    check_cert(call, data, person)
    med_type = need(call, data, "med_type")
    if med_type != visit.med_type:
        raise call.refuse("data.med_type: differs from the visit information (2203)")
    details = visit.unsettled(opt(call, data, "chrg_bchno"))
    split = compute_split(call, visit, details, data, med_type)
    if commit_it:
        return commit(call, visit, details, split, med_type=med_type)
    info = setlinfo_of(call, visit, split, setl_id="", med_type=med_type)
    call.record.effect = {"kind": "presettlement", "mdtrt_id": visit.mdtrt_id}
    return {"setlinfo": info, "setldetail": setldetail_of(call, visit, split)}


def h2206(call: Call) -> dict[str, Any]:
    return _settle(call, commit_it=False)


def h2207(call: Call) -> dict[str, Any]:
    return _settle(call, commit_it=True)


def h2208(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _open_visit(call, data)
    setl_id = need(call, data, "setl_id")
    settlement = settlement_to_cancel(call, visit, setl_id)
    return cancel(call, visit, settlement)


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"2201": h2201, "2202": h2202, "2203": h2203, "2203A": h2203, "2204": h2204, "2205": h2205,
                     "2206": h2206, "2207": h2207, "2208": h2208})
