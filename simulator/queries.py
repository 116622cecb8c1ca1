"""Sign-in, person and benefit queries, settlement/detail queries, dictionaries, catalog downloads and the
9101/9102 file transactions.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from yibao.core import clock

from .admdvs import ADMDVS_DICTIONARY
from .calls import Call, block, need, opt
from .files import MAX_UPLOAD_BYTES, store_file, txt_zip
from .policy import classify
from .state import Session

__all__ = ["register", "CATALOG_INFNOS", "catalog_versions", "catalog_rows", "DICTIONARIES"]

#: 1301-1319: the catalog downloads answered with a 9102 file
CATALOG_INFNOS = tuple(str(n) for n in range(1301, 1320))
_CATALOG_PREFIX = {"1301": "X", "1302": "T", "1303": "ZJ", "1304": "M", "1305": "00", "1306": "C", "1307": "D",
                   "1308": "O", "1309": "MT", "1310": "BZ", "1311": "RJ", "1312": "YB", "1313": "ZL", "1314": "ZY",
                   "1315": "ZH", "1316": "PP", "1317": "JG", "1318": "XJ", "1319": "ZF"}
_VERSIONS_PER_CATALOG = 3
_ROWS_PER_VERSION = 5

#: 1901 dictionaries (type -> [(code, name)]); values from the national dictionary tables as commonly published
DICTIONARIES: dict[str, list[tuple[str, str]]] = {
    "insutype": [("310", "职工基本医疗保险"), ("320", "公务员医疗补助"), ("330", "大额医疗费用补助"),
                 ("340", "离休人员医疗保障"), ("390", "城乡居民基本医疗保险"), ("392", "城乡居民大病医疗保险")],
    "med_type": [("11", "普通门诊"), ("12", "门诊挂号"), ("13", "急诊"), ("14", "门诊慢特病"),
                 ("21", "普通住院"), ("22", "外伤住院"), ("51", "生育门诊"), ("52", "生育住院")],
    "mdtrt_cert_type": [("01", "医保电子凭证"), ("02", "居民身份证"), ("03", "社会保障卡")],
    "psn_setlway": [("01", "按项目结算"), ("02", "按定额结算")],
    "clr_type": [("11", "门诊"), ("21", "住院"), ("41", "定点药店购药")],
    "clr_way": [("1", "按项目"), ("2", "按单病种"), ("3", "按病种分值")],
    "gend": [("0", "未知的性别"), ("1", "男"), ("2", "女"), ("9", "未说明的性别")],
    "psn_type": [("11", "在职"), ("12", "退休"), ("15", "城乡居民")],
    "chrgitm_lv": [("01", "甲类"), ("02", "乙类"), ("03", "丙类")],
    "refd_setl_flag": [("0", "否"), ("1", "是")],
}
DICTIONARIES.update(ADMDVS_DICTIONARY)  # 医保区划 (simulator/admdvs.py, the mobile-pay side's identity checks)


def catalog_versions(infno: str) -> list[str]:
    return [f"{infno}_2024{v + 1:02d}0100001" for v in range(_VERSIONS_PER_CATALOG)]


def catalog_rows(call: Call, infno: str, since: str) -> list[tuple[Any, ...]]:
    """Rows of every version after ``since`` ("0" or "" = all), deterministic by infno and version."""
    versions = catalog_versions(infno)
    if since in ("", "0"):
        start = 0
    elif since in versions:
        start = versions.index(since) + 1
    else:
        raise call.refuse("data.ver: unknown catalog version")
    out = []
    for ver in versions[start:]:
        for i in range(_ROWS_PER_VERSION):
            code = f"{_CATALOG_PREFIX[infno]}{hashlib.sha256(f'{ver}/{i}'.encode()).hexdigest()[:10].upper()}"
            out.append((code, f"目录{infno}-{ver[-5:]}-{i + 1}", classify(code, call.platform.policy), "1", ver))
    return out


def h9001(call: Call) -> dict[str, Any]:
    data = block(call, "signIn")
    opter_no = need(call, data, "opter_no", "signIn")
    need(call, data, "ip", "signIn")
    sign_no = call.platform.new_id(10)
    call.platform.ledger.sessions[sign_no] = Session(sign_no, call.fixmedins_code, opter_no, call.now)
    call.record.effect = {"kind": "sign_in", "sign_no": sign_no}
    return {"signinoutb": {"sign_time": clock.format_datetime(call.now), "sign_no": sign_no}}


def h9002(call: Call) -> dict[str, Any]:
    data = block(call, "signOut")
    sign_no = need(call, data, "sign_no", "signOut")
    session = call.platform.ledger.sessions.get(sign_no)
    if session is None or session.fixmedins_code != call.fixmedins_code or not session.active:
        raise call.refuse("signOut.sign_no: no active sign-in with this serial")
    session.active = False
    call.record.effect = {"kind": "sign_out", "sign_no": sign_no}
    return {"signoutoutb": {"sign_time": clock.format_datetime(call.now)}}


def h1101(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    cert_type = need(call, data, "mdtrt_cert_type")
    cert_no = need(call, data, "mdtrt_cert_no")
    person = call.platform.ledger.find_person(cert_no)
    matches = {
        "01": lambda p: cert_no == p.ec_token,
        "02": lambda p: cert_no == p.certno,
        "03": lambda p: cert_no in (p.card_sn, p.certno),
    }
    if cert_type not in matches:
        raise call.refuse("data.mdtrt_cert_type: must be 01 (电子凭证), 02 (身份证) or 03 (社保卡)")
    if person is None or not matches[cert_type](person):
        raise call.refuse("data.mdtrt_cert_no: no insured person with this credential (未查询到参保信息)")
    today = call.now.date()
    return {
        "baseinfo": {"psn_no": person.psn_no, "psn_cert_type": person.psn_cert_type, "certno": person.certno,
                     "psn_name": person.psn_name, "gend": person.gend, "naty": person.naty, "brdy": person.brdy,
                     "age": Decimal(person.age(today))},
        "insuinfo": [{"balc": person.balance, "insutype": person.insutype, "psn_type": person.psn_type,
                      "psn_insu_stas": "1", "psn_insu_date": "2010-01-01", "paus_insu_date": "",
                      "cvlserv_flag": person.cvlserv_flag, "insuplc_admdvs": person.insuplc_admdvs,
                      "emp_name": person.emp_name}],
        "idetinfo": [],
    }


def h2001(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    person = call.platform.ledger.persons.get(psn_no)
    if person is None:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    insutype = need(call, data, "insutype")
    if insutype != person.insutype:
        raise call.refuse("data.insutype: the person is not insured under this insutype")
    fund = call.platform.policy.fund_pay_types.get(insutype, "310100")
    return {"trtinfo": [{"psn_no": psn_no, "trt_chk_type": "10", "fund_pay_type": fund, "trt_enjymnt_flag": "1",
                         "begndate": "2024-01-01", "enddate": "2099-12-31", "trt_chk_rslt": "享受待遇"}]}


def h5203(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    mdtrt_id = need(call, data, "mdtrt_id")
    setl_id = opt(call, data, "setl_id")
    ledger = call.platform.ledger
    if setl_id:
        entry = ledger.settlements.get(setl_id)
    else:  # after an unknown outcome the caller may not know the setl_id: the visit's latest settlement
        candidates = sorted((s for s in ledger.settlements.values()
                             if s.mdtrt_id == mdtrt_id and s.refd_setl_flag == "0" and s.status != "reversed"),
                            key=lambda s: (s.setl_time, s.setl_id))
        entry = candidates[-1] if candidates else None
    if (entry is None or entry.status == "reversed" or entry.mdtrt_id != mdtrt_id or entry.psn_no != psn_no
            or entry.fixmedins_code != call.fixmedins_code):
        raise call.refuse("data.setl_id: no such settlement (结算信息不存在)")
    visit = ledger.visits[entry.mdtrt_id]
    info = {**entry.setlinfo, "insu_optins": entry.clr_optins, "fixmedins_code": entry.fixmedins_code,
            "begndate": visit.begntime[:10], "enddate": (visit.endtime or clock.format_datetime(entry.setl_time))[:10],
            "refd_setl_flag": entry.refd_setl_flag, "vali_flag": "1" if entry.status == "active" else "0",
            "cancel_setl_id": entry.cancel_setl_id, "mid_setl_flag": entry.mid_setl_flag}
    return {"setlinfo": info}


def h5204(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    mdtrt_id = need(call, data, "mdtrt_id")
    setl_id = opt(call, data, "setl_id")
    visit = call.platform.ledger.visits.get(mdtrt_id)
    if visit is None or visit.psn_no != psn_no or visit.fixmedins_code != call.fixmedins_code:
        raise call.refuse("data.mdtrt_id: no such visit (就诊ID不存在)")
    rows = [
        {"feedetl_sn": d.feedetl_sn, "mdtrt_id": d.mdtrt_id, "setl_id": d.setl_id, "psn_no": d.psn_no,
         "chrg_bchno": d.chrg_bchno, "med_list_codg": d.med_list_codg, "medins_list_codg": d.medins_list_codg,
         "det_item_fee_sumamt": d.det_item_fee_sumamt, "cnt": d.cnt, "pric": d.pric,
         "fee_ocur_time": d.fee_ocur_time, "chrgitm_lv": d.item_class, "init_feedetl_sn": d.init_feedetl_sn,
         "setl_stas": "1" if d.status == "settled" else "0"}
        for d in visit.details.values() if d.status != "revoked" and (not setl_id or d.setl_id == setl_id)
    ]
    return {"feedetail": rows}


def h1901(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    kind = need(call, data, "type")
    if kind not in DICTIONARIES:
        raise call.refuse("data.type: unknown dictionary")
    return {"list": [{"type": kind, "nat_dic_val_code": code, "nat_dic_val_name": name, "vali_flag": "1",
                      "dic_val_upper_code": "", "seq": str(i + 1)}
                     for i, (code, name) in enumerate(DICTIONARIES[kind])]}


def h_catalog(call: Call) -> dict[str, Any]:
    data = call.input.get("data") if isinstance(call.input.get("data"), dict) else {}
    rows = catalog_rows(call, call.infno, opt(call, data, "ver", "0"))
    name = f"{call.infno}_{call.platform.new_id()}.zip"
    file_no = call.platform.new_id(10)
    stored = store_file(call.platform.ledger.files, file_qury_no=file_no, filename=name,
                        fixmedins_code=call.fixmedins_code, content=txt_zip(name[:-4] + ".txt", rows),
                        now=call.now, ttl_s=call.platform.settings.file_ttl_s, origin=call.infno)
    call.record.effect = {"kind": "file", "file_qury_no": file_no}
    return {"file_qury_no": file_no, "filename": name, "dld_endtime": clock.format_datetime(stored.expires)}


def h9101(call: Call) -> dict[str, Any]:
    data = block(call, "fsUploadIn")
    filename = need(call, data, "filename", "fsUploadIn")
    if need(call, data, "fixmedins_code", "fsUploadIn") != call.fixmedins_code:
        raise call.refuse("fsUploadIn.fixmedins_code: differs from the envelope's")
    content = call.file_bytes
    if not content:
        raise call.refuse("file: the multipart part 'file' is missing or empty")
    if len(content) > MAX_UPLOAD_BYTES:
        raise call.refuse(f"file: larger than {MAX_UPLOAD_BYTES} bytes")
    file_no = call.platform.new_id(10)
    stored = store_file(call.platform.ledger.files, file_qury_no=file_no, filename=filename,
                        fixmedins_code=call.fixmedins_code, content=content, now=call.now,
                        ttl_s=call.platform.settings.file_ttl_s, origin="upload")
    call.record.effect = {"kind": "upload", "file_qury_no": file_no}
    return {"file_qury_no": file_no, "filename": filename, "dld_endtime": clock.format_datetime(stored.expires)}


def h9102(call: Call) -> dict[str, Any]:
    data = block(call, "fsDownloadIn")
    file_no = need(call, data, "file_qury_no", "fsDownloadIn")
    filename = need(call, data, "filename", "fsDownloadIn")
    if need(call, data, "fixmedins_code", "fsDownloadIn") != call.fixmedins_code:
        raise call.refuse("fsDownloadIn.fixmedins_code: differs from the envelope's")
    stored = call.platform.ledger.files.get(file_no)
    if stored is None or stored.fixmedins_code != call.fixmedins_code:
        raise call.refuse("fsDownloadIn.file_qury_no: no such file (文件不存在)")
    if stored.filename != filename:
        raise call.refuse("fsDownloadIn.filename: not the name of that file")
    if call.now > stored.expires:
        raise call.refuse("fsDownloadIn.file_qury_no: past dld_endtime (文件已过期)")
    call.extra["file"] = (stored.filename, stored.content)
    return {}


def register(handlers: dict[str, Any]) -> None:
    handlers.update({"9001": h9001, "9002": h9002, "1101": h1101, "2001": h2001, "5203": h5203, "5204": h5204,
                     "1901": h1901, "9101": h9101, "9102": h9102})
    for infno in CATALOG_INFNOS:
        handlers[infno] = h_catalog
