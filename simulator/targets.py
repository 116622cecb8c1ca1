"""The other platforms the upload scheduler serves (seeds 002, 004), behind ``/targets/<name>/…`` on the platform's
port — the contract of ``services/upload-scheduler/data/targets.yaml``: ``POST`` a JSON ``{"request_id",
"org_code", "data"}``, answered ``{"code": 0|…, "message", "data"}``.

* **zifei** (省平台 自费就诊费用): HMAC-signed headers; ``/fee/upload`` answers a task id, ``/task/query`` answers
  ``processing`` for ``task_polls`` polls, then each record's result (a visit whose fees do not add up is refused);
* **yimatong** (一码通): ``/auth/token`` → a bearer token (``PUT /admin/targets`` can expire it); documents with
  their 药品追溯码 (20 digits, else refused); by date (the distributors' inbound documents of that day plus ours), by
  document (with each code's smallest sub-codes), a code's children;
* **drg**: ``/org/register`` → an org token; hospital, department match (and their updates), 病案首页, 结算清单,
  费用明细 — each refused as "已上传" when uploaded again, until cancelled (冲销);
* **epidemic** (疫情 指标) and **flu** (流感/发热): bearer tokens; rows and case reports kept by their keys.

Faults: the run's fault rules by transaction name (``ZF.UPLOAD:commit_then_timeout:0.2``) — work done, answer lost.
Admin: ``GET /admin/targets`` (each platform's records and counters), ``PUT /admin/targets`` (credentials,
task_polls, expire_tokens).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import wire

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["TargetsLedger", "targets_of", "dispatch", "admin_snapshot", "admin_update", "CREDENTIALS"]

#: the credentials the simulated platforms accept (tests and the demo configure the bridge with them)
CREDENTIALS = {"zifei": {"app_id": "yibao", "secret": "zifei-secret"},
               "yimatong": {"app_id": "yibao", "secret": "yimatong-secret"},
               "drg": {"app_key": "yibao", "secret": "drg-secret"},
               "epidemic": {"token": "epidemic-token"}, "flu": {"token": "flu-token"}}

#: (target, path) → transaction name (for faults and counters)
TRANSACTIONS = {
    ("zifei", "/fee/upload"): "ZF.UPLOAD", ("zifei", "/task/query"): "ZF.TASK",
    ("yimatong", "/inbound/upload"): "YMT.UPLOAD", ("yimatong", "/inbound/doc"): "YMT.DOC",
    ("yimatong", "/inbound/by-date"): "YMT.BYDATE", ("yimatong", "/code/children"): "YMT.CHILD",
    ("drg", "/hospital/upload"): "DRG.HOSP", ("drg", "/hospital/update"): "DRG.HOSP_M",
    ("drg", "/dept/match"): "DRG.DEPT", ("drg", "/dept/match/update"): "DRG.DEPT_M",
    ("drg", "/dept/standard"): "DRG.STDEPT", ("drg", "/mrpage/upload"): "DRG.MRP",
    ("drg", "/mrpage/cancel"): "DRG.MRP_CX", ("drg", "/setllist/upload"): "DRG.STL",
    ("drg", "/setllist/cancel"): "DRG.STL_CX", ("drg", "/fee/upload"): "DRG.FEE",
    ("drg", "/fee/cancel"): "DRG.FEE_CX", ("epidemic", "/indicators/upload"): "YQ.UPLOAD",
    ("flu", "/flu/case"): "FLU.CASE", ("flu", "/flu/discharge"): "FLU.DSCG", ("flu", "/flu/summary"): "FLU.SUMM",
    ("flu", "/flu/death"): "FLU.DEATH", ("flu", "/flu/drug"): "FLU.DRUG", ("flu", "/flu/lab"): "FLU.LAB",
    ("flu", "/fever/visit"): "FEVER.VIS",
}


class Refused(Exception):
    def __init__(self, message: str, code: int = -1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Kept:
    key: str
    content: Any
    digest: str
    request_id: str
    versions: int = 1
    valid: bool = True


@dataclass
class TargetsLedger:
    records: dict[str, dict[str, Kept]] = field(default_factory=dict)  #: "<target>.<kind>" → key → record
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  #: token → target
    org_tokens: dict[str, str] = field(default_factory=dict)  #: org_code → token
    submissions: list[dict[str, Any]] = field(default_factory=list)
    credentials: dict[str, dict[str, str]] = field(default_factory=lambda: json.loads(json.dumps(CREDENTIALS)))
    task_polls: int = 1
    serial: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def kept(self, bucket: str) -> dict[str, Kept]:
        return self.records.setdefault(bucket, {})


def targets_of(ledger: Any) -> TargetsLedger:
    if getattr(ledger, "targets", None) is None:
        ledger.targets = TargetsLedger()
    return ledger.targets  # type: ignore[no-any-return]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, TypeError):
        raise Refused("金额格式错误") from None


def _need(obj: Any, *names: str) -> list[str]:
    if not isinstance(obj, dict):
        raise Refused("data: 缺少对象")
    out = []
    for n in names:
        v = obj.get(n)
        if v in (None, ""):
            raise Refused(f"{n}: 必填")
        out.append(str(v))
    return out


# --- auth -------------------------------------------------------------------------------------------------------

def _authenticate(t: TargetsLedger, target: str, request: web.Request, raw: bytes, path: str) -> None:
    creds = t.credentials[target]
    if target == "zifei":
        app_id, ts, nonce, sig = (request.headers.get(h, "") for h in ("X-App-Id", "X-Timestamp", "X-Nonce",
                                                                         "X-Signature"))
        text = app_id + ts + nonce + hashlib.sha256(raw).hexdigest()
        good = hmac.new(creds["secret"].encode(), text.encode(), hashlib.sha256).hexdigest()
        if app_id != creds["app_id"] or not hmac.compare_digest(sig, good):
            raise web.HTTPUnauthorized(text="signature")
    elif target == "yimatong":
        if path == "/auth/token":
            return
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if t.tokens.get(token) != "yimatong":
            raise web.HTTPUnauthorized(text="token")
    elif target == "drg":
        if path == "/org/register":
            return
        if request.headers.get("X-Org-Token", "") not in t.org_tokens.values():
            raise web.HTTPUnauthorized(text="org token")
    else:
        if request.headers.get("Authorization", "") != f"Bearer {creds['token']}":
            raise web.HTTPUnauthorized(text="token")


# --- the platforms -----------------------------------------------------------------------------------------------

def _keep(t: TargetsLedger, bucket: str, key: str, content: Any, request_id: str, *,
          refuse_duplicate: bool = False) -> str:
    """Keep a record under its key: "new", "replaced" or "resend" (the same content again)."""
    kept = t.kept(bucket)
    digest = _digest(content)
    held = kept.get(key)
    if held is not None and held.valid:
        if refuse_duplicate:
            raise Refused(f"{key}: 已上传，请先冲销")
        if held.digest == digest:
            t.submissions.append({"bucket": bucket, "key": key, "outcome": "resend", "request_id": request_id})
            return "resend"
    outcome = "new" if held is None else "replaced"
    kept[key] = Kept(key, content, digest, request_id, versions=(held.versions + 1) if held else 1)
    t.submissions.append({"bucket": bucket, "key": key, "outcome": outcome, "request_id": request_id})
    return outcome


def _zifei(t: TargetsLedger, path: str, data: Any, request_id: str) -> dict[str, Any]:
    if path == "/fee/upload":
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list) or not records:
            raise Refused("records: 必填")
        results = []
        for rec in records:
            try:
                (visit_no,) = _need(rec, "visit_no")
                fees = rec.get("fees") or []
                total = Decimal("0")
                for fee in fees:
                    if (_dec(fee.get("cnt")) * _dec(fee.get("pric"))).quantize(Decimal("0.01")) != _dec(fee.get("amt")):
                        raise Refused(f"{fee.get('fee_sn')}: 金额与数量单价不符")
                    total += _dec(fee.get("amt"))
                if total != _dec(rec.get("medfee_sumamt")):
                    raise Refused("medfee_sumamt: 与明细合计不符")
                _keep(t, "zifei.fee", visit_no, rec, request_id)
                results.append({"visit_no": visit_no, "code": 0, "message": ""})
            except Refused as exc:
                results.append({"visit_no": str((rec or {}).get("visit_no")), "code": 1, "message": exc.message})
        t.serial += 1
        task_id = f"T{t.serial:08d}"
        t.tasks[task_id] = {"results": results, "polls": 0}
        return {"task_id": task_id}
    (task_id,) = _need(data, "task_id")
    task = t.tasks.get(task_id)
    if task is None:
        raise Refused(f"{task_id}: 任务不存在")
    task["polls"] += 1
    if task["polls"] < t.task_polls:
        return {"task_id": task_id, "status": "processing"}
    return {"task_id": task_id, "status": "done", "results": task["results"]}


def _children(code: str) -> list[str]:
    return [f"{code}{i:02d}" for i in range(1, 4)]


def _yimatong(t: TargetsLedger, path: str, data: Any, request_id: str) -> dict[str, Any]:
    if path == "/auth/token":
        creds = t.credentials["yimatong"]
        if not isinstance(data, dict) or data.get("app_id") != creds["app_id"] or data.get("app_secret") != creds["secret"]:
            raise Refused("身份认证失败", code=401)
        token = secrets.token_hex(12)
        t.tokens[token] = "yimatong"
        return {"token": token, "expires_in": 7200}
    if path == "/inbound/upload":
        results = []
        for doc in (data or {}).get("records") or []:
            try:
                (doc_no,) = _need(doc, "doc_no")
                for item in doc.get("items") or []:
                    for code in item.get("trace_codes") or []:
                        value = str(code.get("drug_trac_codg") or "")
                        if len(value) != 20 or not value.isdigit():
                            raise Refused(f"{value}: 追溯码格式错误（应为20位数字）")
                outcome = _keep(t, "yimatong.inbound", doc_no, doc, request_id)
                results.append({"doc_no": doc_no, "code": 0, "message": "单据已存在" if outcome == "resend" else ""})
            except Refused as exc:
                results.append({"doc_no": str((doc or {}).get("doc_no")), "code": 1, "message": exc.message})
        return {"results": results}
    if path == "/inbound/doc":
        (doc_no,) = _need(data, "doc_no")
        held = t.kept("yimatong.inbound").get(doc_no) or t.kept("yimatong.delivered").get(doc_no)
        if held is None:
            raise Refused(f"{doc_no}: 单据不存在")
        doc = json.loads(json.dumps(held.content, default=str))
        if str(data.get("with_children") or "") == "1":
            for item in doc.get("items") or []:
                for code in item.get("trace_codes") or []:
                    code["children"] = _children(str(code.get("drug_trac_codg")))
        return {"doc": doc}
    if path == "/inbound/by-date":
        (day,) = _need(data, "date")
        delivered = t.kept("yimatong.delivered")
        for i in range(2):  # what distributors delivered that day (deterministic)
            doc_no = f"PS{day.replace('-', '')}{i:03d}"
            if doc_no not in delivered:
                items = [{"med_list_codg": f"XA{j:08d}", "drug_name": f"配送药品{j}", "manu_lotnum": f"L{j:04d}",
                          "cnt": "10", "trace_codes": [{"drug_trac_codg": f"8{day.replace('-', '')}{i:03d}{j:08d}"}]}
                         for j in range(2)]
                delivered[doc_no] = Kept(doc_no, {"doc_no": doc_no, "doc_type": "1", "doc_time": f"{day} 09:00:00",
                                                  "supplier_name": "模拟配送企业", "items": items}, "", "")
        docs = [k.content for k in delivered.values() if str(k.content.get("doc_time", "")).startswith(day)]
        docs += [k.content for k in t.kept("yimatong.inbound").values()
                 if str(k.content.get("doc_time", "")).startswith(day)]
        return {"docs": json.loads(json.dumps(docs, default=str))}
    (code,) = _need(data, "drug_trac_codg")
    return {"drug_trac_codg": code, "children": _children(code)}


_DRG = {"/hospital/upload": ("drg.hospital", "hospital", "org_code", False),
        "/hospital/update": ("drg.hospital", "hospital", "org_code", False),
        "/dept/match": ("drg.dept_match", "match", "hosp_dept_code", False),
        "/dept/match/update": ("drg.dept_match", "match", "hosp_dept_code", False),
        "/mrpage/upload": ("drg.mrpage", "mrpage", "mdtrt_sn", True),
        "/setllist/upload": ("drg.setl_list", "setllist", "setl_id", True),
        "/fee/upload": ("drg.fee", "feedoc", "doc_no", True)}
_DRG_CANCEL = {"/mrpage/cancel": ("drg.mrpage", "mdtrt_sn"), "/setllist/cancel": ("drg.setl_list", "setl_id"),
               "/fee/cancel": ("drg.fee", "doc_no")}


def _drg(t: TargetsLedger, path: str, data: Any, request_id: str) -> dict[str, Any]:
    if path == "/org/register":
        creds = t.credentials["drg"]
        if not isinstance(data, dict) or data.get("app_key") != creds["app_key"] or data.get("app_secret") != creds["secret"]:
            raise Refused("机构认证失败", code=401)
        org = str(data.get("org_code") or "")
        token = t.org_tokens.get(org) or secrets.token_hex(12)
        t.org_tokens[org] = token
        return {"org_token": token, "expires_in": 86400}
    if path == "/dept/standard":
        return {"depts": [{"std_dept_code": f"A{i:02d}", "std_dept_name": f"标准科室{i}"} for i in range(1, 6)]}
    if path in _DRG_CANCEL:
        bucket, field_name = _DRG_CANCEL[path]
        (key,) = _need(data, field_name)
        held = t.kept(bucket).get(key)
        if held is None or not held.valid:
            raise Refused(f"{key}: 记录不存在")
        held.valid = False
        t.submissions.append({"bucket": bucket, "key": key, "outcome": "cancelled", "request_id": request_id})
        return {}
    bucket, node, field_name, once = _DRG[path]
    obj = data.get(node) if isinstance(data, dict) else None
    (key,) = _need(obj, field_name)
    if node == "mrpage" and str(obj.get("dscg_date", "")) < str(obj.get("adm_date", "")):
        raise Refused("dscg_date: 出院日期早于入院日期")
    if node == "feedoc" and any(_dec(i.get("amt")) <= 0 for i in obj.get("items") or []):
        raise Refused("items.amt: 金额必须大于0")
    held = t.kept(bucket).get(key)
    if once and held is not None and held.valid and held.digest == _digest(obj):
        raise Refused(f"{key}: 已上传")  # a resend after a lost answer: the record is there
    _keep(t, bucket, key, obj, request_id, refuse_duplicate=once)
    return {"key": key}


_FLU = {"/flu/case": ("flu.case", "case", ("case_id",)), "/flu/discharge": ("flu.discharge", "case", ("case_id",)),
        "/flu/summary": ("flu.summary", "summary", ("case_id",)), "/flu/death": ("flu.death", "death", ("case_id",)),
        "/flu/drug": ("flu.drug", "drug", ("case_id", "order_no")), "/flu/lab": ("flu.lab", "lab", ("case_id", "report_no")),
        "/fever/visit": ("fever.visit", "visit", ("visit_no",))}


def _surveillance(t: TargetsLedger, target: str, path: str, data: Any, request_id: str) -> dict[str, Any]:
    if target == "epidemic":
        rows = (data or {}).get("rows") or []
        if not rows:
            raise Refused("rows: 必填")
        for row in rows:
            code, start = _need(row, "indicator_code", "period_start")
            if str(row.get("period_end", "")) <= start:
                raise Refused(f"{code}: period_end 不晚于 period_start")
        for row in rows:
            _keep(t, "epidemic.indicators", f"{row['indicator_code']}|{row['period_start']}", row, request_id)
        return {"rows": len(rows)}
    bucket, node, keys = _FLU[path]
    obj = data.get(node) if isinstance(data, dict) else None
    key = "|".join(_need(obj, *keys))
    if bucket in ("flu.case", "flu.discharge") and not any(obj.get(k) for k in ("diag_code", "diag_name", "chfcomp")):
        raise Refused("case: 诊断或主诉至少其一")
    _keep(t, bucket, key, obj, request_id)
    return {"key": key}


def handle(t: TargetsLedger, target: str, path: str, data: Any, request_id: str) -> dict[str, Any]:
    with t.lock:
        if target == "zifei":
            return _zifei(t, path, data, request_id)
        if target == "yimatong":
            return _yimatong(t, path, data, request_id)
        if target == "drg":
            return _drg(t, path, data, request_id)
        return _surveillance(t, target, path, data, request_id)


async def dispatch(sim: Simulator, request: web.Request) -> web.StreamResponse:
    """POST /targets/<target>/<path>."""
    parts = request.path.split("/", 3)  # "", "targets", target, rest
    if len(parts) < 4 or parts[2] not in CREDENTIALS:
        raise web.HTTPNotFound(text="no such target")
    target, path = parts[2], "/" + parts[3]
    raw = await request.read()
    t = targets_of(sim.ledger)
    _authenticate(t, target, request, raw, path)
    try:
        body = wire.loads(raw)
    except Exception:  # noqa: BLE001
        return _answer(-1, "请求不是JSON")
    if not isinstance(body, dict):
        return _answer(-1, "请求不是JSON对象")
    name = TRANSACTIONS.get((target, path), f"{target.upper()}{path}")
    decision = sim.faults.decide(name)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    if decision.before == "reset" and request.transport is not None:
        request.transport.abort()
        raise asyncio.CancelledError
    if decision.before == "http_5xx":
        return web.Response(status=decision.status, text="simulated gateway failure")
    if decision.before == "business_error":
        return _answer(-1, "模拟业务错误 (simulated business error)")
    try:
        data = handle(t, target, path, body.get("data"), str(body.get("request_id") or ""))
    except Refused as exc:
        if exc.code == 401:
            return web.Response(status=401, text=exc.message)
        return _answer(exc.code, exc.message)
    if decision.after in ("commit_then_timeout", "drop_reply"):
        if decision.after == "commit_then_timeout":
            await asyncio.sleep(sim.settings.hold_s)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return _answer(0, "", data)


def _answer(code: int, message: str, data: Any = None) -> web.Response:
    return web.Response(body=wire.dumps_bytes({"code": code, "message": message, "data": data or {}}),
                        content_type="application/json")


def admin_snapshot(ledger: Any) -> dict[str, Any]:
    t = targets_of(ledger)
    with t.lock:
        return {"records": {bucket: {k: {"digest": r.digest, "versions": r.versions, "valid": r.valid,
                                         "content": r.content} for k, r in kept.items()}
                            for bucket, kept in t.records.items()},
                "submissions": list(t.submissions), "tasks": len(t.tasks), "task_polls": t.task_polls}


def admin_update(ledger: Any, body: dict[str, Any]) -> dict[str, Any]:
    t = targets_of(ledger)
    with t.lock:
        if "task_polls" in body:
            t.task_polls = max(1, int(body["task_polls"]))
        if body.get("expire_tokens"):
            t.tokens.clear()
            t.org_tokens.clear()
        for target, values in (body.get("credentials") or {}).items():
            if target in t.credentials and isinstance(values, dict):
                t.credentials[target].update({str(k): str(v) for k, v in values.items()})
    return {"task_polls": t.task_polls}


