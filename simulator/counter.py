"""What the hospital's counter asks of the national platform besides the visit chains: 备案 (2501/2501A 转院,
2502 撤销; 2503 人员慢特病, 2504 撤销; 2505 人员定点, 2506 撤销) and the queries of the counter (5301 慢特病备案,
5302 定点, 5304 转院, 5102 医执人员, 5202 诊断, 5205 慢特病用药, 5206 累计, 1201 机构), and 3101 明细审核分析 (the
rule engine a pilot hospital asks before it charges: see :func:`h3101` for the rules it applies).

Filings live with the person (``SimPerson.extra["filings"]``, emptied by the ledger's reset): each has the
platform's serial ``trt_dcla_detl_sn``, the input that filed it and a status (valid | revoked). Rules, as a
platform applies them:

* the person must exist and be insured under the insutype given (2503);
* a second *valid* filing of the same thing is refused — 2501/2501A: the same target institution and transfer date
  (已存在有效的转院备案); 2503: the same opsp_dise_code (已存在有效的慢特病备案); 2505: the same biz_appy_type and
  fix_srt_no (已存在有效的定点备案). So a filing sent again after a lost answer is refused, never doubled: the
  bridge must look it up (5304 / 5301 / 5302);
* a revocation names a valid filing of that person and kind by its serial; anything else is refused with
  备案信息不存在 (a "not found" answer) or 已撤销;
* 5301 lists the person's valid 慢特病 filings on the day asked (begndate ≤ today ≤ enddate), with their serial;
  5302 the valid 定点 of a biz_appy_type; 5304 the transfer filings whose transfer date falls in the window, valid
  ones and (vali_flag 0) revoked ones — the asking institution's only, like every query here.

Faults (``faults.py``) apply to these transactions like to any other, by infno.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from yibao.core import clock

from .calls import Call, amount, block, need, opt

__all__ = ["register", "filings_of", "PRACTITIONER_TYPES"]

#: 执业人员分类 the simulator's practitioners come in (1 医师, 2 护士, 3 药师 — the simulator's own codes)
PRACTITIONER_TYPES = {"1": "医师", "2": "护士", "3": "药师"}


def filings_of(call: Call, psn_no: str) -> list[dict[str, Any]]:
    person = call.platform.ledger.persons.get(psn_no)
    if person is None:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    return person.extra.setdefault("filings", [])


def _serial(call: Call) -> str:
    return call.platform.new_id(10)


def _date(call: Call, obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> dt.date | None:
    text = need(call, obj, key, path) if required else opt(call, obj, key, path=path)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise call.refuse(f"{path}.{key}: not a date (yyyy-MM-dd)") from None


def _valid_on(filing: dict[str, Any], day: dt.date) -> bool:
    begin = filing.get("begndate") or "0001-01-01"
    end = filing.get("enddate") or "9999-12-31"
    return filing["status"] == "valid" and begin <= day.isoformat() <= end


def _file(call: Call, psn_no: str, kind: str, record: dict[str, Any]) -> dict[str, Any]:
    filing = {"kind": kind, "trt_dcla_detl_sn": _serial(call), "psn_no": psn_no, "status": "valid",
              "fixmedins_code": call.fixmedins_code, "msgid": call.msgid, "created": clock.format_datetime(call.now),
              **record}
    filings_of(call, psn_no).append(filing)
    call.record.effect = {"kind": "filing", "infno": kind, "psn_no": psn_no,
                          "trt_dcla_detl_sn": filing["trt_dcla_detl_sn"]}
    return {"result": {"trt_dcla_detl_sn": filing["trt_dcla_detl_sn"]}}


def _revoke(call: Call, kinds: tuple[str, ...]) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    serial = need(call, data, "trt_dcla_detl_sn")
    for filing in filings_of(call, psn_no):
        if filing["trt_dcla_detl_sn"] != serial or filing["kind"] not in kinds:
            continue
        if filing["fixmedins_code"] != call.fixmedins_code:
            raise call.refuse("data.trt_dcla_detl_sn: filed by another institution (非本机构备案)")
        if filing["status"] != "valid":
            raise call.refuse("data.trt_dcla_detl_sn: the filing is revoked already (已撤销)")
        filing["status"] = "revoked"
        filing["revoked"] = clock.format_datetime(call.now)
        filing["revoke_memo"] = opt(call, data, "memo")
        call.record.effect = {"kind": "filing_revoked", "infno": call.infno, "trt_dcla_detl_sn": serial}
        return {}
    raise call.refuse("data.trt_dcla_detl_sn: no such filing (备案信息不存在)")


# --- 2501 / 2501A / 2502 转院 ------------------------------------------------------------------------------------

def h2501(call: Call) -> dict[str, Any]:
    data = block(call, "refmedin")
    psn_no = need(call, data, "psn_no", "refmedin")
    target = need(call, data, "reflin_medins_no", "refmedin")
    refl_date = _date(call, data, "refl_date", "refmedin")
    for field in ("diag_code", "diag_name", "reflin_medins_name", "mdtrtarea_admdvs", "refl_type", "refl_rea",
                  "refl_opnn"):
        need(call, data, field, "refmedin")
    if target == call.fixmedins_code:
        raise call.refuse("refmedin.reflin_medins_no: a transfer goes to another institution")
    assert refl_date is not None
    for filing in filings_of(call, psn_no):
        if (filing["kind"] in ("2501", "2501A") and filing["status"] == "valid"
                and filing["reflin_medins_no"] == target and filing["refl_date"] == refl_date.isoformat()):
            raise call.refuse("refmedin: 已存在有效的转院备案 (a valid transfer filing to this institution on this date)")
    record = {k: (str(v) if v is not None else "") for k, v in data.items()}
    record["refl_date"] = refl_date.isoformat()
    begin = _date(call, data, "begndate", "refmedin", required=False) or refl_date
    end = _date(call, data, "enddate", "refmedin", required=False)
    record.update(begndate=begin.isoformat(), enddate=end.isoformat() if end else "")
    return _file(call, psn_no, call.infno, record)


def h2502(call: Call) -> dict[str, Any]:
    return _revoke(call, ("2501", "2501A"))


def h5304(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = opt(call, data, "psn_no")
    begin = clock.parse_datetime(need(call, data, "begntime")).date()
    end_text = opt(call, data, "endtime")
    end = clock.parse_datetime(end_text).date() if end_text else dt.date.max
    people = ([call.platform.ledger.persons[psn_no]] if psn_no in call.platform.ledger.persons
              else [] if psn_no else list(call.platform.ledger.persons.values()))
    rows = []
    for person in people:
        for f in person.extra.get("filings", []):
            if f["kind"] not in ("2501", "2501A") or f["fixmedins_code"] != call.fixmedins_code:
                continue
            if not begin <= dt.date.fromisoformat(f["refl_date"]) <= end:
                continue
            rows.append({
                "insutype": f.get("insutype") or person.insutype, "dcla_souc": "1", "psn_no": person.psn_no,
                "psn_cert_type": person.psn_cert_type, "certno": person.certno, "psn_name": person.psn_name,
                "gend": person.gend, "brdy": person.brdy, "tel": f.get("tel", ""), "addr": f.get("addr", ""),
                "insu_optins": person.insuplc_admdvs, "emp_name": person.emp_name,
                "diag_code": f.get("diag_code", ""), "diag_name": f.get("diag_name", ""),
                "dise_cond_dscr": f.get("dise_cond_dscr", ""), "reflin_medins_no": f["reflin_medins_no"],
                "reflin_medins_name": f.get("reflin_medins_name", ""),
                "out_flag": "1" if f.get("mdtrtarea_admdvs") != person.insuplc_admdvs else "0",
                "refl_date": f["refl_date"], "refl_rea": f.get("refl_rea", ""), "begndate": f["begndate"],
                "enddate": f["enddate"], "hosp_agre_refl_flag": f.get("hosp_agre_refl_flag") or "1",
                "opter_id": "", "opter_name": "", "opt_time": f["created"],
                "trt_dcla_detl_sn": f["trt_dcla_detl_sn"], "vali_flag": "1" if f["status"] == "valid" else "0"})
    return {"refmedin": rows}


# --- 2503 / 2504 慢特病 -------------------------------------------------------------------------------------------

def h2503(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    person = call.platform.ledger.persons.get(psn_no)
    if person is None:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    if need(call, data, "insutype") != person.insutype:
        raise call.refuse("data.insutype: the person is not insured under this insutype")
    code = need(call, data, "opsp_dise_code")
    for field in ("opsp_dise_name", "insu_optins", "ide_fixmedins_no", "ide_fixmedins_name", "diag_dr_codg",
                  "diag_dr_name"):
        need(call, data, field)
    _date(call, data, "hosp_ide_date", "data")
    begin = _date(call, data, "begndate", "data")
    end = _date(call, data, "enddate", "data", required=False)
    assert begin is not None
    if end is not None and end < begin:
        raise call.refuse("data.enddate: before begndate")
    for filing in filings_of(call, psn_no):
        if filing["kind"] == "2503" and filing["status"] == "valid" and filing["opsp_dise_code"] == code:
            raise call.refuse("data.opsp_dise_code: 该人员已存在有效的慢特病备案 (a valid filing of this disease)")
    return _file(call, psn_no, "2503", {
        "opsp_dise_code": code, "opsp_dise_name": need(call, data, "opsp_dise_name"), "insutype": person.insutype,
        "begndate": begin.isoformat(), "enddate": end.isoformat() if end else ""})


def h2504(call: Call) -> dict[str, Any]:
    return _revoke(call, ("2503",))


def h5301(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    if psn_no not in call.platform.ledger.persons:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    today = call.now.date()
    return {"feedetail": [
        {"opsp_dise_code": f["opsp_dise_code"], "opsp_dise_name": f["opsp_dise_name"], "begndate": f["begndate"],
         "enddate": f["enddate"], "trt_dcla_detl_sn": f["trt_dcla_detl_sn"]}
        for f in filings_of(call, psn_no) if f["kind"] == "2503" and _valid_on(f, today)]}


# --- 2505 / 2506 定点 ---------------------------------------------------------------------------------------------

def h2505(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    kind = need(call, data, "biz_appy_type")
    srt = need(call, data, "fix_srt_no")
    fixmedins = need(call, data, "fixmedins_code")
    need(call, data, "fixmedins_name")
    begin = _date(call, data, "begndate", "data")
    end = _date(call, data, "enddate", "data", required=False)
    assert begin is not None
    if fixmedins not in call.platform.ledger.institutions:
        raise call.refuse("data.fixmedins_code: unknown institution (定点医药机构不存在)")
    for filing in filings_of(call, psn_no):
        if (filing["kind"] == "2505" and filing["status"] == "valid" and filing["biz_appy_type"] == kind
                and filing["fix_srt_no"] == srt):
            raise call.refuse("data.biz_appy_type: 已存在有效的定点备案 (a valid 定点 of this type and order)")
    person = call.platform.ledger.persons[psn_no]
    return _file(call, psn_no, "2505", {
        "biz_appy_type": kind, "fix_srt_no": srt, "target_code": fixmedins,
        "fixmedins_name": need(call, data, "fixmedins_name"), "insutype": person.insutype,
        "begndate": begin.isoformat(), "enddate": end.isoformat() if end else "", "memo": opt(call, data, "memo")})


def h2506(call: Call) -> dict[str, Any]:
    return _revoke(call, ("2505",))


def h5302(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    kind = need(call, data, "biz_appy_type")
    today = call.now.date()
    return {"psnfixmedin": [
        {"psn_no": psn_no, "insutype": f["insutype"], "fix_srt_no": f["fix_srt_no"], "fixmedins_code": f["target_code"],
         "fixmedins_name": f["fixmedins_name"], "begndate": f["begndate"], "enddate": f["enddate"],
         "memo": f.get("memo", ""), "trt_dcla_detl_sn": f["trt_dcla_detl_sn"]}
        for f in filings_of(call, psn_no) if f["kind"] == "2505" and f["biz_appy_type"] == kind and _valid_on(f, today)]}


# --- the counter's other queries --------------------------------------------------------------------------------

def _practitioners(fixmedins_code: str) -> list[dict[str, Any]]:
    """A deterministic staff of a few practitioners per institution."""
    rows = []
    for i in range(6):
        kind = "123"[i % 3]
        digest = hashlib.sha256(f"{fixmedins_code}/{i}".encode()).hexdigest()
        rows.append({"psn_cert_type": "01", "certno": f"4401{int(digest[:12], 16) % 10**14:014d}",
                     "prac_psn_no": f"E{i + 1:03d}", "prac_psn_code": f"D{fixmedins_code[1:7]}{i + 1:04d}"[:20],
                     "prac_psn_name": f"{PRACTITIONER_TYPES[kind]}{'甲乙丙丁戊己'[i]}", "prac_psn_type": kind,
                     "prac_psn_cert": f"ZG{digest[12:22].upper()}", "prac_cert_no": f"ZY{digest[22:32].upper()}",
                     "hi_dr_flag": "1" if kind == "1" else "0", "begntime": "2020-01-01 00:00:00", "endtime": "",
                     "chg_rea": ""})
    return rows


def h5102(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    kind = need(call, data, "prac_psn_type")
    code, name = opt(call, data, "prac_psn_code"), opt(call, data, "prac_psn_name")
    return {"feedetail": [r for r in _practitioners(call.fixmedins_code)
                          if r["prac_psn_type"] == kind and (not code or r["prac_psn_code"] == code)
                          and (not name or r["prac_psn_name"] == name)]}


def _visit(call: Call, data: dict[str, Any]) -> Any:
    mdtrt_id = need(call, data, "mdtrt_id")
    visit = call.platform.ledger.visits.get(mdtrt_id)
    psn_no = opt(call, data, "psn_no")
    if (visit is None or visit.fixmedins_code != call.fixmedins_code or (psn_no and visit.psn_no != psn_no)):
        raise call.refuse("data.mdtrt_id: no such visit (就诊信息不存在)")
    return visit


def h5202(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    visit = _visit(call, data)
    code = visit.info.get("dise_codg") or visit.registration.get("dscg_maindiag_code") or ""
    name = visit.info.get("dise_name") or visit.registration.get("dscg_maindiag_name") or ""
    if not code:
        return {"diseinfo": []}
    return {"diseinfo": [{
        "diag_info_id": f"{visit.mdtrt_id[-20:]}01", "mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no,
        "inout_diag_type": "1" if visit.kind == "outpatient" else "2", "diag_type": "1", "maindiag_flag": "1",
        "diag_srt_no": 1, "diag_code": code, "diag_name": name,
        "adm_cond": "", "diag_dept": visit.registration.get("dept_name") or visit.registration.get("adm_dept_name")
        or "-", "dise_dor_no": visit.registration.get("atddr_no") or "-",
        "dise_dor_name": visit.registration.get("dr_name") or visit.registration.get("chfpdr_name") or "-",
        "diag_time": visit.begntime, "opter_id": "", "opter_name": "", "opt_time": visit.begntime}]}


def h5205(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    if psn_no not in call.platform.ledger.persons:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    begin = need(call, data, "begntime")
    end = opt(call, data, "endtime") or "9999-12-31 23:59:59"
    rows = []
    for visit in call.platform.ledger.visits.values():
        if visit.psn_no != psn_no or visit.med_type != "14":
            continue
        for d in visit.details.values():
            if d.status == "revoked" or not begin <= d.fee_ocur_time <= end:
                continue
            rows.append({"feedetl_sn": d.feedetl_sn, "rx_drord_no": "", "fixmedins_code": visit.fixmedins_code,
                         "fixmedins_name": visit.fixmedins_code, "psn_no": psn_no, "med_type": "14",
                         "fee_ocur_time": d.fee_ocur_time, "cnt": d.cnt, "pric": d.pric, "chrgitm_lv": d.item_class,
                         "hilist_code": d.med_list_codg, "hilist_name": d.med_list_codg, "list_type": "101",
                         "med_list_codg": d.med_list_codg, "medins_list_codg": d.medins_list_codg,
                         "medins_list_name": d.medins_list_codg, "med_chrgitm_type": "09", "spec": "-"})
    return {"feedetail": rows}


def h5206(call: Call) -> dict[str, Any]:
    """累计: per insutype and month, S0000 医疗费总额 and F0000 基金支付 of the person's active settlements, C0000
    the count (codes of the simulator's own; provinces define theirs)."""
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    person = call.platform.ledger.persons.get(psn_no)
    if person is None:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    cum_ym = opt(call, data, "cum_ym")
    totals: dict[tuple[str, str], dict[str, Decimal]] = {}
    for s in call.platform.ledger.settlements.values():
        if s.psn_no != psn_no or s.status == "reversed":
            continue
        ym = clock.as_shanghai(s.setl_time).strftime("%Y%m")
        if cum_ym and ym != cum_ym:
            continue
        bucket = totals.setdefault((s.insutype, ym), {"S0000": Decimal("0.00"), "F0000": Decimal("0.00"),
                                                       "C0000": Decimal("0.00")})
        bucket["S0000"] += s.amounts.get("medfee_sumamt", Decimal("0"))
        bucket["F0000"] += s.amounts.get("fund_pay_sumamt", Decimal("0"))
        bucket["C0000"] += 1 if s.refd_setl_flag == "0" else -1
    return {"cuminfo": [{"insutype": insutype, "year": ym[:4], "cum_ym": ym, "cum_type_code": code, "cum": value}
                        for (insutype, ym), bucket in sorted(totals.items()) for code, value in bucket.items()]}


def h1201(call: Call) -> dict[str, Any]:
    data = block(call, "medinsinfo")
    code = opt(call, data, "fixmedins_code", path="medinsinfo")
    name = opt(call, data, "fixmedins_name", path="medinsinfo")
    kind = need(call, data, "fixmedins_type", "medinsinfo")
    rows = []
    for known in sorted(call.platform.ledger.institutions):
        if code and known != code:
            continue
        row = {"fixmedins_code": known, "fixmedins_name": f"定点医疗机构{known[-4:]}",
               "uscc": f"12440000{known[-10:]}", "fixmedins_type": kind, "hosp_lv": "11"}
        if not name or name in row["fixmedins_name"]:
            rows.append(row)
    return {"medinsinfo": rows}


# --- 3101 明细审核分析 --------------------------------------------------------------------------------------------

#: a platform states violation amounts in fen, rounded half up
CENT = Decimal("0.01")
#: the rules the simulator's engine knows: id → (name, 违规行为分类). Real engines hold hundreds; two are enough to
#: show a hospital's system what a violation looks like and that a clean order passes.
RULES_3101 = {"SIM-R001": ("重复收费", "1"), "SIM-R002": ("超医保限价收费", "2")}


def h3101(call: Call) -> dict[str, Any]:
    """Each order line of each visit against the rules: the same item ordered twice on one day (SIM-R001, the
    second line's amount is the violation) and a price above the item's 医保 limit ``hilist_pric`` (SIM-R002,
    (pric - hilist_pric) × cnt). The answer lists one violation per rule and visit broken, its lines as details;
    nothing broken: an empty list. Stateless: asking twice answers the same."""
    data = block(call, "data")
    need(call, data, "syscode")
    found: list[dict[str, Any]] = []
    patients = data.get("patient_dtos")
    if not isinstance(patients, list) or not patients or not all(isinstance(p, dict) for p in patients):
        raise call.refuse("data.patient_dtos: required non-empty list of objects")
    for p_no, patient in enumerate(patients):
        path = f"data.patient_dtos[{p_no}]"
        patn_id = need(call, patient, "patn_id", path)
        for e_no, encounter in enumerate(patient.get("fsi_encounter_dtos") or []):
            epath = f"{path}.fsi_encounter_dtos[{e_no}]"
            mdtrt_id = need(call, encounter, "mdtrt_id", epath)
            broken: dict[str, list[tuple[dict[str, Any], Decimal]]] = {}
            seen: set[tuple[str, str]] = set()
            for o_no, order in enumerate(encounter.get("fsi_order_dtos") or []):
                opath = f"{epath}.fsi_order_dtos[{o_no}]"
                code = need(call, order, "hilist_code", opath)
                cnt = amount(call, order, "cnt", opath)
                pric = amount(call, order, "pric", opath)
                day = opt(call, order, "drord_begn_date", path=opath)[:10]
                if (code, day) in seen:
                    broken.setdefault("SIM-R001", []).append((order, amount(call, order, "sumamt", opath)))
                seen.add((code, day))
                limit = amount(call, order, "hilist_pric", opath)
                if limit > 0 and pric > limit:
                    broken.setdefault("SIM-R002", []).append((order, ((pric - limit) * cnt).quantize(CENT, ROUND_HALF_UP)))
            for rule_id, lines in broken.items():
                name, kind = RULES_3101[rule_id]
                total = sum((a for _, a in lines), Decimal("0.00"))
                jr_id = hashlib.sha256(f"{call.fixmedins_code}|{mdtrt_id}|{rule_id}".encode()).hexdigest()[:20]
                found.append({
                    "jr_id": jr_id, "rule_id": rule_id, "rule_name": name, "patn_id": patn_id, "mdtrt_id": mdtrt_id,
                    "vola_cont": f"{name}: {len(lines)} 条医嘱", "vola_amt": total, "vola_amt_stas": "1",
                    "sev_deg": "1" if rule_id == "SIM-R001" else "2", "vola_bhvr_type": kind,
                    "task_id": opt(call, data, "task_id"),
                    "judge_result_detail_dtos": [
                        {"jrd_id": f"{jr_id}-{n}", "patn_id": patn_id, "mdtrt_id": mdtrt_id,
                         "rx_id": str(order.get("rx_id") or ""), "vola_item_type": "1", "vola_amt": a}
                        for n, (order, a) in enumerate(lines, 1)]})
    return {"result": found}


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"3101": h3101, "2501": h2501, "2501A": h2501, "2502": h2502, "2503": h2503, "2504": h2504, "2505": h2505,
                     "2506": h2506, "5301": h5301, "5302": h5302, "5304": h5304, "5102": h5102, "5202": h5202,
                     "5205": h5205, "5206": h5206})
    handlers.setdefault("1201", h1201)  # the upload scheduler's catalog sync may serve its own
