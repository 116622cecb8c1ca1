"""Settlement slips (打印结算单, seed 001): one per settlement, with the platform's split, as HTML and as PDF.

The counter keeps what a slip prints from two topics it reads (never another service's tables):

* ``yibao.his.results.v1`` — each ``settled`` answer (setl_id, mdtrt_id, setl_time, med_type, insutype, the split
  as the platform answered it) becomes the slip of its setl_id; a ``refunded`` answer marks the slip of the
  settlement it cancelled (the slip then says so);
* ``yibao.his.events.v1`` — the visit's registration or admission gives the header (name, the HIS's visit number,
  department, begin time).

Both are kept sealed at rest (they hold names). The PDF uses reportlab's built-in CID font STSong-Light (Adobe's
Song typeface for simplified Chinese, which PDF readers provide): no font file ships with the bridge.
"""

from __future__ import annotations

import html
import io
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from yibao.core import clock
from yibao.core.db.schema import counter_slips, counter_visits
from yibao.core.deployment import Deployment
from yibao.core.results import HisResult
from yibao.hisevents.models import Admission, HisEventBase, PatientRegistered

__all__ = ["SPLIT_LINES", "absorb_result", "absorb_visit", "slip_of", "slips_of_visit", "render_html", "render_pdf"]

SERVICE = "counter"

#: the split's lines on a slip, in print order: (field of SettlementSplit, label)
SPLIT_LINES: tuple[tuple[str, str], ...] = (
    ("medfee_sumamt", "医疗费总额"),
    ("fulamt_ownpay_amt", "全自费金额"),
    ("overlmt_selfpay", "超限价自费"),
    ("preselfpay_amt", "先行自付金额"),
    ("inscp_scp_amt", "符合政策范围金额"),
    ("act_pay_dedc", "实际支付起付线"),
    ("hifp_pay", "统筹基金支出"),
    ("fund_pay_sumamt", "基金支付总额"),
    ("psn_part_amt", "个人负担总额"),
    ("acct_pay", "个人账户支出"),
    ("psn_cash_pay", "个人现金支出"),
    ("hosp_part_amt", "医院负担金额"),
    ("balc", "个人账户余额"),
)
_MED_TYPES = {"11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "21": "普通住院",
              "51": "生育门诊", "52": "生育住院"}
_INSUTYPES = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险", "340": "离休人员医疗保障",
              "320": "公务员医疗补助"}


def _scope(conn: Connection) -> str:
    return Deployment.of(conn).scoped(SERVICE)


def _upsert(conn: Connection, table: Any, keys: dict[str, Any], values: dict[str, Any]) -> None:
    cond = [getattr(table.c, k) == v for k, v in keys.items()]
    if conn.execute(update(table).where(*cond).values(**values)).rowcount == 0:
        conn.execute(table.insert().values(**keys, **values))


def absorb_result(conn: Connection, result: HisResult) -> None:
    """A settled answer becomes its slip; a refund marks the slip of the settlement it cancelled."""
    scope, cipher = _scope(conn), Deployment.of(conn).cipher
    if result.kind == "settled" and result.setl_id and result.split is not None:
        _upsert(conn, counter_slips, {"scope": scope, "setl_id": result.setl_id},
                {"his_visit_id": result.his_visit_id, "status": "settled",
                 "payload": cipher.seal(result.model_dump_json(exclude_none=True)), "updated_at": clock.now()})
    elif result.kind == "refunded" and result.orig_setl_id:
        conn.execute(update(counter_slips).where(counter_slips.c.scope == scope,
                                                 counter_slips.c.setl_id == result.orig_setl_id)
                     .values(status="refunded", updated_at=clock.now()))


def absorb_visit(conn: Connection, event: HisEventBase) -> None:
    """The header a slip prints, from the visit's registration or admission."""
    if isinstance(event, PatientRegistered):
        header = {"psn_name": event.psn_name, "number": event.ipt_otp_no, "dept_name": event.dept_name,
                  "begntime": clock.format_datetime(event.begntime), "kind": "门诊"}
    elif isinstance(event, Admission):
        header = {"psn_name": event.psn_name, "number": event.ipt_no, "dept_name": event.adm_dept_name,
                  "begntime": clock.format_datetime(event.begntime), "kind": "住院"}
    else:
        return
    _upsert(conn, counter_visits, {"scope": _scope(conn), "his_visit_id": event.his_visit_id},
            {"payload": Deployment.of(conn).cipher.seal(json.dumps(header, ensure_ascii=False)),
             "updated_at": clock.now()})


def slip_of(conn: Connection, setl_id: str) -> dict[str, Any] | None:
    """What the slip of ``setl_id`` prints (None: no such settlement known)."""
    scope, cipher = _scope(conn), Deployment.of(conn).cipher
    row = conn.execute(select(counter_slips).where(counter_slips.c.scope == scope,
                                                   counter_slips.c.setl_id == setl_id)).first()
    if row is None:
        return None
    result = json.loads(cipher.open(row.payload))
    visit = conn.execute(select(counter_visits.c.payload).where(
        counter_visits.c.scope == scope, counter_visits.c.his_visit_id == row.his_visit_id)).first()
    header = json.loads(cipher.open(visit[0])) if visit is not None else {}
    return {"setl_id": setl_id, "status": row.status, "his_visit_id": row.his_visit_id, "header": header,
            "result": result}


def slips_of_visit(conn: Connection, his_visit_id: str) -> list[dict[str, str]]:
    rows = conn.execute(select(counter_slips.c.setl_id, counter_slips.c.status).where(
        counter_slips.c.scope == _scope(conn), counter_slips.c.his_visit_id == his_visit_id)
        .order_by(counter_slips.c.updated_at)).all()
    return [{"setl_id": r[0], "status": r[1], "html": f"/counter/slips/{r[0]}.html",
             "pdf": f"/counter/slips/{r[0]}.pdf"} for r in rows]


def _lines(slip: dict[str, Any], hospital: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the header fields, the amounts) as (label, text) pairs — what both formats print."""
    r, h = slip["result"], slip["header"]
    med_type = r.get("med_type") or ""
    insutype = r.get("insutype") or ""
    info = [("定点医药机构", hospital), ("姓名", h.get("psn_name") or "-"), ("人员编号", r.get("psn_no") or "-"),
            ("就诊类别", h.get("kind") or ("住院" if r.get("visit_kind") == "inpatient" else "门诊")),
            ("门诊/住院号", h.get("number") or "-"), ("科室", h.get("dept_name") or "-"),
            ("险种类型", f"{insutype} {_INSUTYPES.get(insutype, '')}".strip() or "-"),
            ("医疗类别", f"{med_type} {_MED_TYPES.get(med_type, '')}".strip() or "-"),
            ("就诊ID", r.get("mdtrt_id") or "-"), ("结算ID", slip["setl_id"]),
            ("结算时间", (r.get("setl_time") or "")[:19].replace("T", " ") or "-"),
            ("清算类别", r.get("clr_type") or "-")]
    split = r.get("split") or {}
    amounts = [(label, f"{Decimal(str(split[k])):.2f}") for k, label in SPLIT_LINES if split.get(k) is not None]
    return info, amounts


def render_html(slip: dict[str, Any], *, title: str, hospital: str) -> str:
    info, amounts = _lines(slip, hospital)
    e = html.escape
    stamp = '<p class="stamp">已退费</p>' if slip["status"] == "refunded" else ""
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in info)
    money = "".join(f"<tr><th>{e(k)}</th><td class=\"amount\">{e(v)}</td></tr>" for k, v in amounts)
    return (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{e(title)} {e(slip['setl_id'])}"
            "</title><style>body{font-family:'SimSun','Songti SC',serif;max-width:640px;margin:2em auto}"
            "h1{text-align:center;font-size:1.4em}table{width:100%;border-collapse:collapse;margin-bottom:1em}"
            "th,td{border:1px solid #333;padding:4px 8px;text-align:left}td.amount{text-align:right}"
            ".stamp{color:#c00;font-size:1.6em;text-align:center;border:3px solid #c00}"
            "@media print{body{margin:0}}</style></head><body>"
            f"<h1>{e(title)}</h1>{stamp}<table>{rows}</table><h2>结算费用（元）</h2><table>{money}</table>"
            f"<p>打印时间 {e(clock.format_datetime(clock.now()))}</p></body></html>")


def render_pdf(slip: dict[str, Any], *, title: str, hospital: str) -> bytes:
    from reportlab.lib.pagesizes import A5
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    info, amounts = _lines(slip, hospital)
    buf = io.BytesIO()
    page = canvas.Canvas(buf, pagesize=A5, invariant=1)
    width, height = A5
    page.setTitle(f"{title} {slip['setl_id']}")
    page.setFont(font, 15)
    page.drawCentredString(width / 2, height - 40, title)
    y = height - 70
    if slip["status"] == "refunded":
        page.setFillColorRGB(0.8, 0, 0)
        page.drawCentredString(width / 2, y, "已退费")
        page.setFillColorRGB(0, 0, 0)
        y -= 24
    page.setFont(font, 9.5)
    for label, text in info:
        page.drawString(30, y, f"{label}：{text}")
        y -= 15
    y -= 6
    page.setFont(font, 11)
    page.drawString(30, y, "结算费用（元）")
    y -= 16
    page.setFont(font, 9.5)
    for label, text in amounts:
        page.drawString(40, y, label)
        page.drawRightString(width - 40, y, text)
        y -= 14
    page.drawString(30, max(y - 12, 20), f"打印时间 {clock.format_datetime(clock.now())}")
    page.showPage()
    page.save()
    return buf.getvalue()
