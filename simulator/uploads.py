"""The national platform's data uploads and catalogs, as the upload scheduler meets them.

**Uploads** (3301/3302, 3401-3403, 3501-3507, 4101-4701, 7101/7104/7105): each record is kept under the platform's
business key (setl_id, mdtrt_sn, fixmedins_bchno, hosp_rxno …: :data:`KEYS`). The same content sent again is
answered as the first time and stores nothing new (an idempotent resend: counted in ``resends``); new content for
a key replaces the record (a new version) — except 3401 for a department the platform holds ("科室已存在": changes go
by 3402). Business rules a real platform applies, and which the tests use to make records fail:

* 3301: ``med_list_codg`` must be a code of the platform's catalogs ("医疗目录编码不存在");
* 3302/3402/3403/7104/7105: what they name must exist ("…不存在");
* 4101: exactly one main diagnosis in ``diseinfo`` ("主诊断不唯一");
* 4201: every line ``det_item_fee_sumamt`` = ``cnt`` × ``pric`` ("明细金额与数量单价不符");
* 35xx: ``manu_date`` not after ``expy_end`` ("有效期止早于生产日期");
* 7101: ``valid_end_time`` after ``prsc_time``; the answer carries the platform's ``hi_rxno``; once accepted, the
  prescription centre calls the hospital back with 7102/7103 when ``rx_feedback_url`` is set
  (:mod:`yibao.simulator.rx_feedback`).

**Catalogs**: 1301-1311 and 1313-1315 answer ``{"data": {"ver"}}`` with a file (9102) of every version after it —
``max_versions_per_file`` versions at most, so a sync asks again — in each catalog's column layout; versions are
generated deterministically (``versions`` × ``rows`` per catalog, half of each version's codes updating the
previous one). 1304/1312/1316/1318/1319 answer pages; 1317 pages the institution's 目录对照 (its 3301 uploads).
``corrupt`` spoils the next file of a catalog (a row short of columns, a line that is not UTF-8, a broken zip).
5101 lists the institution's departments (its 3401 uploads); 1201 the institution.

Admin (``yibao.simulator.http_admin``): ``GET /admin/uploads`` (records, submissions), ``GET/PUT
/admin/catalogs`` (versions, rows, corrupt), ``GET /admin/catalogs/codes`` (valid 医疗目录编码).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.core import clock

from .calls import Call
from .files import store_file

__all__ = ["register", "UploadLedger", "KEYS", "uploads_of", "CatalogConfig", "catalog_code", "LAYOUTS"]

#: infno → (node, key paths within the node's object (or each list item), list?) — the platform's business keys
KEYS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "3301": ("data", ("fixmedins_hilist_id",), False),
    "3302": ("data", ("fixmedins_hilist_id",), False),
    "3401": ("deptinfo", ("hosp_dept_codg",), False),
    "3402": ("deptinfo", ("hosp_dept_codg",), False),
    "3403": ("data", ("hosp_dept_codg",), False),
    "3501": ("invinfo", ("fixmedins_bchno",), False),
    "3502": ("invinfo", ("fixmedins_bchno", "inv_chg_time"), False),
    "3503": ("purcinfo", ("fixmedins_bchno",), False),
    "3504": ("purcinfo", ("fixmedins_bchno", "purc_retn_stoin_time"), False),
    "3505": ("selinfo", ("fixmedins_bchno", "sel_retn_time"), False),
    "3506": ("selinfo", ("fixmedins_bchno", "sel_retn_time"), False),
    "3507": ("data", ("fixmedins_bchno", "inv_data_type"), False),
    "4101": ("setlinfo", ("setl_id",), False),
    "4201": ("feedetail", ("mdtrt_sn",), True),
    "4301": ("rgstinfo", ("mdtrt_sn",), False),
    "4302": ("oprninfo", ("mdtrt_sn", "oprn_oprt_sn"), False),
    "4401": ("baseinfo", ("mdtrt_sn",), False),
    "4402": ("data", ("medcas_drord_detl_id",), True),
    "4501": ("examinfo", ("mdtrt_sn", "rpotc_no"), False),
    "4502": ("labinfo", ("mdtrt_sn", "rpotc_no"), False),
    "4503": ("data", ("mdtrt_sn", "rpotc_no"), False),
    "4504": ("data", ("mdtrt_sn", "rpotc_no"), False),
    "4505": ("data", ("mdtrt_sn", "palg_no"), False),
    "4506": ("data", ("mdtrt_sn", "appy_no"), True),
    "4601": ("data", ("mdtrt_sn", "bld_time"), False),
    "4602": ("data", ("mdtrt_sn", "rcd_time"), False),
    "4701": ("adminfo", ("mdtrt_sn",), False),
    "7101": ("data", ("hosp_rxno",), False),
    "7104": ("data", ("hi_rxno",), False),
    "7105": ("data", ("hi_rxno",), False),
}
#: 4201 is one visit's lines: the visit is the record (its lines' first mdtrt_sn)
_WHOLE_LIST = frozenset({"4201"})

#: catalog file layouts (columns, key, vali_flag, rid, ver) — the platform's, as the tests read them
LAYOUTS: dict[str, tuple[int, int, int, int, int]] = {
    "1301": (92, 0, 78, 79, 82), "1302": (29, 0, 13, 14, 17), "1303": (78, 0, 64, 67, 70),
    "1305": (16, 0, 6, 13, 14), "1306": (71, 0, 67, 68, 69), "1307": (24, 0, 18, 19, 22),
    "1308": (24, 0, 18, 19, 22), "1309": (16, 0, 5, 6, 9), "1310": (15, 0, 5, 6, 9), "1311": (15, 0, 3, 4, 7),
    "1313": (11, 0, 5, 6, 9), "1314": (14, 0, 8, 9, 12), "1315": (14, 0, 8, 9, 12),
}
PAGED = ("1304", "1312", "1316", "1318", "1319")
_PREFIX = {"1301": "XA", "1302": "TA", "1303": "ZJ", "1304": "MZ", "1305": "00", "1306": "CA", "1307": "DA",
           "1308": "OA", "1309": "MT", "1310": "BZ", "1311": "RJ", "1312": "YB", "1313": "ZL", "1314": "ZY",
           "1315": "ZH", "1316": "PP", "1318": "XJ", "1319": "ZF"}


def catalog_code(infno: str, index: int) -> str:
    return f"{_PREFIX[infno]}{index:08d}"


def catalog_version(index: int) -> str:
    """The v-th version (1-based) of a catalog: digits, increasing."""
    return f"2024{index:08d}"


@dataclass
class CatalogConfig:
    versions: int = 3
    rows: int = 20
    max_versions_per_file: int = 1
    #: spoil the next file: {"kind": "columns"|"utf8"|"crc"|"count", "line": n}; cleared once served
    corrupt: dict[str, Any] | None = None


@dataclass
class Stored:
    infno: str
    key: str
    content: Any
    digest: str
    msgid: str
    first_msgid: str
    received: dt.datetime
    versions: int = 1
    valid: bool = True
    receipt: dict[str, Any] = field(default_factory=dict)


@dataclass
class UploadLedger:
    #: (family, key) → the record as the platform holds it; family: "3301" (3301/3302), "3401" (3401-3403),
    #: "7101" (prescriptions by hosp_rxno) or the infno
    records: dict[tuple[str, str], Stored] = field(default_factory=dict)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    resends: int = 0
    catalogs: dict[str, CatalogConfig] = field(default_factory=dict)
    rx_by_hi: dict[str, str] = field(default_factory=dict)  #: hi_rxno → hosp_rxno
    #: 7101s accepted whose feedback (7102/7103: yibao.simulator.rx_feedback) is not started yet:
    #: (hi_rxno, hosp_rxno, fixmedins_code, the prescription as received)
    rx_accepted: list[tuple[str, str, str, Any]] = field(default_factory=list)
    rx_feedback: list[dict[str, Any]] = field(default_factory=list)  #: every attempt to post 7102/7103
    serial: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def catalog(self, infno: str) -> CatalogConfig:
        return self.catalogs.setdefault(infno, CatalogConfig())


def uploads_of(ledger: Any) -> UploadLedger:
    if getattr(ledger, "uploads", None) is None:
        ledger.uploads = UploadLedger()
    return ledger.uploads  # type: ignore[no-any-return]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _family(infno: str) -> str:
    if infno in ("3301", "3302"):
        return "3301"
    if infno in ("3401", "3402", "3403"):
        return "3401"
    if infno in ("7101",):
        return "7101"
    return infno


def _node(call: Call, name: str, many: bool) -> Any:
    value = call.input.get(name)
    if many:
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise call.refuse(f"input.{name}: required non-empty list of objects")
        return value
    if not isinstance(value, dict):
        raise call.refuse(f"input.{name}: required object missing")
    return value


def _key(call: Call, obj: dict[str, Any], paths: tuple[str, ...], where: str) -> str:
    parts = []
    for p in paths:
        v = obj.get(p)
        if v in (None, ""):
            raise call.refuse(f"{where}.{p}: required (the record's key)")
        parts.append(str(v))
    return "|".join(parts)


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        return None


# --- business rules ------------------------------------------------------------------------------------------------

def _known_code(ledger: Any, code: str) -> bool:
    up = uploads_of(ledger)
    for infno in ("1301", "1302", "1305", "1306"):
        prefix = _PREFIX[infno]
        if code.startswith(prefix) and code[len(prefix):].isdigit():
            cfg = up.catalog(infno)
            index = int(code[len(prefix):])
            return 0 <= index < _codes_in(cfg)
    return False


def _codes_in(cfg: CatalogConfig) -> int:
    half = max(1, cfg.rows // 2)
    return half * (cfg.versions - 1) + cfg.rows if cfg.versions else 0


def _check(call: Call, infno: str, obj: Any) -> None:
    ledger = call.platform.ledger
    up = uploads_of(ledger)
    if infno == "3301":
        if not _known_code(ledger, str(obj.get("med_list_codg") or "")):
            raise call.refuse("data.med_list_codg: 医疗目录编码不存在")
    elif infno in ("3302",):
        stored = up.records.get(("3301", str(obj.get("fixmedins_hilist_id"))))
        if stored is None or not stored.valid:
            raise call.refuse("data.fixmedins_hilist_id: 目录对照不存在")
    elif infno in ("3402", "3403"):
        stored = up.records.get(("3401", str(obj.get("hosp_dept_codg"))))
        if stored is None or not stored.valid:
            raise call.refuse("hosp_dept_codg: 科室不存在")
    elif infno == "4101":
        mains = [d for d in call.input.get("diseinfo") or [] if isinstance(d, dict) and str(d.get("maindiag_flag")) == "1"]
        if len(mains) != 1:
            raise call.refuse("diseinfo: 主诊断不唯一或缺失 (exactly one maindiag_flag 1)")
    elif infno == "4402":
        for i, order in enumerate(obj):
            begin, end = str(order.get("medc_begntime") or ""), str(order.get("medc_endtime") or "")
            if begin and end and end < begin:
                raise call.refuse(f"data[{i}].medc_endtime: 用药停止时间早于开始时间")
    elif infno == "4201":
        for i, line in enumerate(obj):
            cnt, pric, amt = _dec(line.get("cnt")), _dec(line.get("pric")), _dec(line.get("det_item_fee_sumamt"))
            if cnt is None or pric is None or amt is None or (cnt * pric).quantize(Decimal("0.01")) != amt:
                raise call.refuse(f"feedetail[{i}].det_item_fee_sumamt: 明细金额与数量单价不符")
    elif infno.startswith("35") and infno != "3507":
        made, ends = _date(obj.get("manu_date")), _date(obj.get("expy_end"))
        if made is not None and ends is not None and ends < made:
            raise call.refuse(f"{KEYS[infno][0]}.expy_end: 有效期止早于生产日期")
    elif infno == "7101":
        start, end = str(obj.get("prsc_time") or ""), str(obj.get("valid_end_time") or "")
        if start and end and end <= start:
            raise call.refuse("data.valid_end_time: 处方有效截止时间早于开方时间")
    elif infno in ("7104", "7105"):
        if str(obj.get("hi_rxno") or "") not in up.rx_by_hi:
            raise call.refuse("data.hi_rxno: 医保处方编号不存在")


# --- the uploads ---------------------------------------------------------------------------------------------------

def h_upload(call: Call) -> dict[str, Any]:
    infno = call.infno
    node, paths, many = KEYS[infno]
    obj = _node(call, node, many)
    _check(call, infno, obj)
    up = uploads_of(call.platform.ledger)
    items: list[tuple[str, Any]]
    if many and infno in _WHOLE_LIST:
        items = [(_key(call, obj[0], paths, f"{node}[0]"), call.input)]
    elif many:
        items = [(_key(call, item, paths, f"{node}[{i}]"), item) for i, item in enumerate(obj)]
    else:
        items = [(_key(call, obj, paths, node), call.input)]
    family = _family(infno)
    output: dict[str, Any] = {}
    with up.lock:
        if infno == "3401":
            for key, content in items:
                held = up.records.get((family, key))
                if held is not None and held.valid and held.digest != _digest(content):
                    raise call.refuse(f"deptinfo.hosp_dept_codg: 科室已存在 ({key}); 变更请用3402")
        for key, content in items:
            if infno in ("7104", "7105"):
                hosp = up.rx_by_hi[key]
                rx = up.records[("7101", hosp)]
                if infno == "7104":
                    rx.valid = False
                rx.receipt[f"last_{infno}"] = call.msgid
                up.submissions.append({"infno": infno, "key": key, "msgid": call.msgid, "outcome": "applied"})
                continue
            digest = _digest(content)
            held = up.records.get((family, key))
            stored_infno = infno if family == infno else family
            if infno in ("3302", "3403"):  # withdrawals
                target = up.records[(family, key)]
                outcome = "resend" if not target.valid else "applied"
                target.valid = False
                up.resends += outcome == "resend"
                up.submissions.append({"infno": infno, "key": key, "msgid": call.msgid, "outcome": outcome})
                continue
            if held is not None and held.digest == digest and held.valid:
                up.resends += 1
                up.submissions.append({"infno": infno, "key": key, "msgid": call.msgid, "outcome": "resend"})
                output.update(held.receipt)
                continue
            receipt = dict(held.receipt) if held is not None else {}
            if infno == "7101" and "hi_rxno" not in receipt:
                up.serial += 1
                receipt["hi_rxno"] = f"HX{call.now:%Y%m%d}{up.serial:08d}"
                up.rx_by_hi[receipt["hi_rxno"]] = key
                if call.platform.settings.rx_feedback_url:  # the prescription centre will call back (7102/7103)
                    up.rx_accepted.append((receipt["hi_rxno"], key, call.fixmedins_code, content))
            stored = Stored(infno=stored_infno, key=key, content=content, digest=digest, msgid=call.msgid,
                            first_msgid=held.first_msgid if held else call.msgid, received=call.now,
                            versions=(held.versions + 1) if held else 1, receipt=receipt)
            up.records[(family, key)] = stored
            up.submissions.append({"infno": infno, "key": key, "msgid": call.msgid,
                                   "outcome": "new" if held is None else "replaced"})
            output.update(receipt)
    call.record.effect = {"kind": "upload", "infno": infno, "records": len(items)}
    return output


# --- catalogs -------------------------------------------------------------------------------------------------------

def _row(infno: str, code: str, version: str, rid: str) -> list[str]:
    columns, key, vali, rid_pos, ver = LAYOUTS[infno]
    cells = [f"c{i}" for i in range(columns)]
    cells[key], cells[vali], cells[rid_pos], cells[ver] = code, "1", rid, version
    if infno == "1301":
        cells[1] = f"药品{code[-4:]}"
    return cells


def catalog_rows(infno: str, cfg: CatalogConfig, first: int, last: int) -> list[list[str]]:
    """Rows of versions first..last (1-based, inclusive): each version ``rows`` rows, half of them updating the
    codes of the version before."""
    rows = []
    half = max(1, cfg.rows // 2)
    for v in range(first, last + 1):
        start = (v - 1) * half
        for i in range(cfg.rows):
            index = start + i
            rows.append(_row(infno, catalog_code(infno, index), catalog_version(v), f"R{infno}{v:04d}{i:06d}"))
    return rows


def _zip(name: str, rows: list[list[str]], corrupt: dict[str, Any] | None) -> bytes:
    lines = ["\t".join(r) for r in rows]
    data: bytes
    if corrupt and corrupt.get("kind") == "columns":
        n = max(1, min(int(corrupt.get("line", 1)), len(lines)))
        lines[n - 1] = "\t".join(lines[n - 1].split("\t")[:3])
    text = "".join(line + "\n" for line in lines).encode("utf-8")
    if corrupt and corrupt.get("kind") == "utf8":
        n = max(1, min(int(corrupt.get("line", 1)), len(lines)))
        parts = text.split(b"\n")
        parts[n - 1] = parts[n - 1] + b"\xff\xfe"
        text = b"\n".join(parts)
    data = text
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    out = buf.getvalue()
    if corrupt and corrupt.get("kind") == "crc":
        # flip a byte of the compressed data (after the local header): the CRC check fails while reading
        mid = 30 + len(name) + 4
        out = out[:mid] + bytes([out[mid] ^ 0xFF]) + out[mid + 1:]
    return out


def h_catalog_file(call: Call) -> dict[str, Any]:
    infno = call.infno
    data = call.input.get("data") if isinstance(call.input.get("data"), dict) else {}
    ver = str(data.get("ver") or "0").strip()
    if not ver.isdigit():
        raise call.refuse("data.ver: unknown catalog version (a version this platform gave, or 0)")
    up = uploads_of(call.platform.ledger)
    with up.lock:
        cfg = up.catalog(infno)
        versions = [catalog_version(v) for v in range(1, cfg.versions + 1)]
        newer = [i + 1 for i, v in enumerate(versions) if ver in ("", "0") or (len(v), v) > (len(ver), ver)]
        if not newer:
            return {"file_qury_no": "", "filename": "", "data_cnt": 0}
        first, last = newer[0], min(newer[-1], newer[0] + cfg.max_versions_per_file - 1)
        rows = catalog_rows(infno, cfg, first, last)
        corrupt, cfg.corrupt = cfg.corrupt, None
    name = f"{infno}_{catalog_version(last)}"
    count = len(rows) + (1 if corrupt and corrupt.get("kind") == "count" else 0)
    file_no = call.platform.new_id(10)
    stored = store_file(call.platform.ledger.files, file_qury_no=file_no, filename=f"{name}.zip",
                        fixmedins_code=call.fixmedins_code, content=_zip(f"{name}.txt", rows, corrupt),
                        now=call.now, ttl_s=call.platform.settings.file_ttl_s, origin=infno)
    call.record.effect = {"kind": "file", "file_qury_no": file_no}
    return {"file_qury_no": file_no, "filename": f"{name}.zip", "dld_end_time": clock.format_date(stored.expires),
            "data_cnt": count}


def _paged_rows(call: Call, infno: str) -> list[dict[str, Any]]:
    up = uploads_of(call.platform.ledger)
    if infno == "1317":
        rows = []
        for (family, key), rec in sorted(up.records.items()):
            if family != "3301":
                continue
            d = rec.content.get("data", {}) if isinstance(rec.content, dict) else {}
            rows.append({"fixmedins_code": call.fixmedins_code, "medins_list_codg": key,
                         "medins_list_name": d.get("fixmedins_hilist_name"), "list_type": d.get("list_type"),
                         "med_list_codg": d.get("med_list_codg"), "vali_flag": "1" if rec.valid else "0",
                         "rid": rec.first_msgid, "updt_time": clock.format_datetime(rec.received)})
        return rows
    cfg = up.catalog(infno)
    rows = []
    for v in range(1, cfg.versions + 1):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=30 * (v - 1))
        for i in range(cfg.rows):
            code = catalog_code(infno, (v - 1) * max(1, cfg.rows // 2) + i)
            row = {"rid": f"R{infno}{v:04d}{i:06d}", "vali_flag": "1", "updt_time": f"{day.isoformat()} 00:00:00",
                   "hilist_code": code, "hilist_name": f"目录{code}", "insu_admdvs": "440100",
                   "begndate": "2024-01-01", "med_list_codg": code}
            rows.append(row)
    return rows


def h_paged(call: Call) -> dict[str, Any]:
    data = call.input.get("data") if isinstance(call.input.get("data"), dict) else {}
    since = str(data.get("updt_time") or "2000-01-01")[:10]
    try:
        page, size = int(data.get("page_num") or 1), int(data.get("page_size") or 100)
    except (TypeError, ValueError):
        raise call.refuse("data.page_num/page_size: numbers") from None
    if page < 1 or not 1 <= size <= 9999:
        raise call.refuse("data.page_num/page_size: out of range")
    rows = [r for r in _paged_rows(call, call.infno) if str(r.get("updt_time", ""))[:10] >= since]
    wanted = data.get("medins_list_codg")
    if call.infno == "1317" and wanted:
        rows = [r for r in rows if r["medins_list_codg"] == wanted]
    pages = max(1, -(-len(rows) // size))
    chunk = rows[(page - 1) * size: page * size]
    return {"pageNum": page, "pageSize": size, "recordCounts": len(rows), "pages": pages, "data": chunk}


def h5101(call: Call) -> dict[str, Any]:
    data = call.input.get("data") if isinstance(call.input.get("data"), dict) else {}
    code = data.get("hosp_dept_codg")
    up = uploads_of(call.platform.ledger)
    rows = []
    for (family, key), rec in sorted(up.records.items()):
        if family != "3401" or (code and key != code):
            continue
        dept = dict(rec.content.get("deptinfo") or {})
        rows.append({**{k: dept.get(k) for k in ("hosp_dept_codg", "hosp_dept_name", "begntime", "endtime", "caty")},
                     "vali_flag": "1" if rec.valid else "0"})
    return {"feedetail": rows}


def h1201(call: Call) -> dict[str, Any]:
    return {"medinsinfo": [{"fixmedins_code": call.fixmedins_code, "fixmedins_name": "模拟定点医疗机构",
                            "uscc": "12440000MB2C00000X", "fixmedins_type": "1", "hosp_lv": "3"}]}


def register(handlers: dict[str, Any]) -> None:
    for infno in KEYS:
        handlers[infno] = h_upload
    for infno in LAYOUTS:
        handlers[infno] = h_catalog_file
    for infno in PAGED + ("1317",):
        handlers[infno] = h_paged
    handlers["5101"] = h5101
    handlers["1201"] = h1201


# --- admin ----------------------------------------------------------------------------------------------------------

def admin_snapshot(ledger: Any) -> dict[str, Any]:
    up = uploads_of(ledger)
    with up.lock:
        return {
            "records": [{"family": f, "key": k, "infno": r.infno, "digest": r.digest, "versions": r.versions,
                         "valid": r.valid, "msgid": r.msgid, "receipt": r.receipt, "content": r.content}
                        for (f, k), r in sorted(up.records.items())],
            "submissions": list(up.submissions),
            "resends": up.resends,
            "rx_feedback": list(up.rx_feedback),
        }


def admin_catalogs(ledger: Any) -> dict[str, Any]:
    up = uploads_of(ledger)
    with up.lock:
        return {infno: {"versions": c.versions, "rows": c.rows, "max_versions_per_file": c.max_versions_per_file,
                        "corrupt": c.corrupt} for infno, c in sorted(up.catalogs.items())}


def admin_set_catalogs(ledger: Any, body: dict[str, Any]) -> dict[str, Any]:
    up = uploads_of(ledger)
    with up.lock:
        for infno, values in body.items():
            if not isinstance(values, dict):
                continue
            cfg = up.catalog(str(infno))
            for name in ("versions", "rows", "max_versions_per_file"):
                if name in values:
                    setattr(cfg, name, int(values[name]))
            if "corrupt" in values:
                cfg.corrupt = values["corrupt"]
    return admin_catalogs(ledger)


def valid_codes(ledger: Any, infno: str = "1301", limit: int = 100) -> list[str]:
    up = uploads_of(ledger)
    cfg = up.catalog(infno)
    return [catalog_code(infno, i) for i in range(min(limit, _codes_in(cfg)))]
