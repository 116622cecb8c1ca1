"""核酸 batch settlement (seed 000 §6.4): finance or the lab imports an Excel file of tested people; each row becomes a
医保 registration → visit information → detail upload → settlement through the registration and settlement
services, and its progress is kept per row.

* **The file** — the shipped template's columns (``data/nucleic_acid_template.xlsx``, :data:`COLUMNS`), a header row
  of their Chinese labels, one tested person per row. A file that is not such a workbook is refused whole, naming
  what is wrong; a bad row is refused with its row number and reason and the others go on.
* **Settled once** — a row's key is the person × sampling date × item (``row_key``); a row whose key was imported
  before (this file again, or another file naming the same test) is reported as a duplicate with the batch and row
  that has it, and nothing new happens. The same file imported twice is the same batch.
* **Through the existing services** — an accepted row writes four canonical HIS events (``patient_registered``,
  ``visit_info``, ``charge_line_added``, ``settlement_requested``) for a visit of its own (``NAT-<key>``) to the
  outbox, in the transaction that records the row: they reach ``yibao.his.events.v1`` exactly as ingest's events do,
  with ids derived from the row key (a replay is absorbed as a duplicate).
* **Progress** — the answers to those visits on ``yibao.his.results.v1`` move each row on: pending → registered →
  settled (setl_id and the split) | rejected (the platform's reason) | parked.

Amounts in the workbook: a number cell is read by its shortest decimal form (Excel keeps doubles) and refused with
more than 2 decimals (price 6) — never rounded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Connection, func, insert, select, update

from yibao.core import clock, money
from yibao.core.db.schema import counter_batch_rejects, counter_batch_rows, counter_batches
from yibao.core.deployment import Deployment
from yibao.core.messaging.outbox import enqueue_many
from yibao.core.results import HisResult, stable_id
from yibao.core.topics import topic
from yibao.counter.config import CounterConfig
from yibao.counter.errors import BatchFileError
from yibao.hisevents.models import (
    ChargeLineAdded,
    Diagnosis,
    EventSource,
    PatientRegistered,
    SettlementRequested,
    VisitInfo,
    validation_reason,
)

__all__ = ["COLUMNS", "TEMPLATE", "NatRow", "ImportReport", "parse_workbook", "import_batch", "batch_progress",
           "absorb_result", "export_workbook", "template_workbook", "VISIT_PREFIX", "SERVICE"]

SERVICE = "counter"
VISIT_PREFIX = "NAT-"
TEMPLATE = Path(__file__).parent / "data" / "nucleic_acid_template.xlsx"

#: (key, the header label, required) — the template's columns, in order
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("psn_name", "姓名", True),
    ("psn_cert_type", "证件类型", False),
    ("certno", "证件号码", True),
    ("mdtrt_cert_type", "就诊凭证类型", False),
    ("mdtrt_cert_no", "就诊凭证编号", False),
    ("insutype", "险种类型", False),
    ("test_date", "采样日期", True),
    ("medins_list_codg", "院内项目编码", True),
    ("med_list_codg", "医保目录编码", True),
    ("item_name", "项目名称", False),
    ("pric", "单价", True),
    ("cnt", "数量", False),
)
_BY_LABEL = {label: key for key, label, _ in COLUMNS}
_LABEL = {key: label for key, label, _ in COLUMNS}


def _decimal(value: Any, scale: int, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what}: not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what}: not a number") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{what}: must be a positive number")
    if -number.as_tuple().exponent > scale:  # type: ignore[operator]
        raise ValueError(f"{what}: more than {scale} decimals (never rounded)")
    return number


class NatRow(BaseModel):
    """One tested person, as the row gives them (labels in errors are the template's)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, hide_input_in_errors=True)

    psn_name: str = Field(min_length=1, max_length=50)
    psn_cert_type: str = Field("01", max_length=6)
    certno: str = Field(min_length=4, max_length=50)
    mdtrt_cert_type: str = Field("02", pattern=r"^0[123]$")
    mdtrt_cert_no: str | None = Field(None, max_length=50)
    insutype: str | None = Field(None, pattern=r"^\d{3}$")
    test_date: _dt.date
    medins_list_codg: str = Field(min_length=1, max_length=150)
    med_list_codg: str = Field(min_length=1, max_length=50)
    item_name: str | None = Field(None, max_length=100)
    pric: Decimal
    cnt: Decimal = Decimal("1")

    @field_validator("pric", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal:
        return _decimal(value, 6, "单价")

    @field_validator("cnt", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Decimal:
        return Decimal("1") if value in (None, "") else _decimal(value, 4, "数量")

    @field_validator("test_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, _dt.datetime):
            return value.date()
        if isinstance(value, str):
            return value.strip()[:10].replace("/", "-")
        return value

    @field_validator("psn_cert_type", "mdtrt_cert_type", "insutype", "certno", "mdtrt_cert_no", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).strip() or None

    @model_validator(mode="after")
    def _total_in_fen(self) -> NatRow:
        amount = self.pric * self.cnt
        if amount != amount.quantize(Decimal("0.01")):
            raise ValueError("单价 × 数量: not a whole amount in fen (never rounded)")
        return self

    @property
    def total(self) -> Decimal:
        return money.money(self.pric * self.cnt)

    @property
    def row_key(self) -> str:
        """Person × sampling date × item: the same test is settled once, whatever file names it."""
        return stable_id("nat", self.certno.upper(), self.test_date.isoformat(), self.med_list_codg)


@dataclass
class ImportReport:
    batch_id: str
    repeated: bool  #: the same file was imported before: nothing new happened
    rows_total: int
    accepted: list[int] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)  #: {row, reason}
    duplicates: list[dict[str, Any]] = field(default_factory=list)  #: {row, batch_id, batch_row}

    def public(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "repeated": self.repeated, "rows_total": self.rows_total,
                "accepted": len(self.accepted), "bad": self.bad, "duplicates": self.duplicates}


# --- the workbook -----------------------------------------------------------------------------------------------

def parse_workbook(content: bytes, *, max_rows: int) -> list[tuple[int, NatRow | str]]:
    """(Excel row number, the row or why it is refused) of every non-empty row. BatchFileError for a file that is
    not a workbook of the template's columns."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise BatchFileError(f"the file is not an Excel workbook (.xlsx): {type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 - zipfile and XML errors of a broken file
        raise BatchFileError(f"the file is not a readable Excel workbook: {type(exc).__name__}") from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        raise BatchFileError("the workbook has no sheet")
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise BatchFileError("the sheet is empty: the first row must be the template's header")
    names = [str(h).strip() if h is not None else "" for h in header]
    missing = [label for key, label, required in COLUMNS if required and label not in names]
    if missing:
        raise BatchFileError(f"columns missing from the header row: {', '.join(missing)} (use the template)")
    keys = [_BY_LABEL.get(n) for n in names]
    out: list[tuple[int, NatRow | str]] = []
    for number, values in enumerate(rows, start=2):
        if values is None or all(v in (None, "") for v in values):
            continue
        if len(out) >= max_rows:
            raise BatchFileError(f"more than {max_rows} rows: split the file")
        data = {k: v for k, v in zip(keys, values) if k is not None and v not in (None, "")}
        try:
            out.append((number, NatRow.model_validate(data)))
        except ValidationError as exc:
            out.append((number, _row_reason(exc)))
    book.close()
    return out


def _row_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        key = str(err["loc"][0]) if err["loc"] else ""
        label = _LABEL.get(key, key)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{label}: {msg}" if not msg.startswith(label) else msg)
    return "; ".join(parts)


def template_workbook() -> bytes:
    """The template: the header row and one example row (fictitious)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "核酸检测名单"
    sheet.append([label for _, label, _ in COLUMNS])
    sheet.append(["张三", "01", "440101199001011234", "02", "", "310", "2026-03-02", "250403024-HS", "250403024",
                  "新型冠状病毒核酸检测", "16.00", "1"])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


# --- importing ------------------------------------------------------------------------------------------------------

def _scope(conn: Connection) -> str:
    return Deployment.of(conn).scoped(SERVICE)


def import_batch(conn: Connection, cfg: CounterConfig, content: bytes, file_name: str, *, by: str,
                 prefix: str) -> ImportReport:
    """Import a parsed workbook in the caller's transaction (rows, their canonical events on the outbox, the
    batch). The same file again: the batch it made, nothing new."""
    scope = _scope(conn)
    digest = hashlib.sha256(content).hexdigest()
    known = conn.execute(select(counter_batches.c.batch_id, counter_batches.c.rows_total).where(
        counter_batches.c.scope == scope, counter_batches.c.file_sha256 == digest)).first()
    if known is not None:
        return ImportReport(batch_id=known[0], repeated=True, rows_total=known[1])
    parsed = parse_workbook(content, max_rows=cfg.batch_max_rows)
    now = clock.now()
    batch_id = f"NAT{now:%Y%m%d%H%M%S}{digest[:8]}"
    report = ImportReport(batch_id=batch_id, repeated=False, rows_total=len(parsed))
    cipher = Deployment.of(conn).cipher
    seen: dict[str, int] = {}
    for number, row in parsed:
        if isinstance(row, str):
            report.bad.append({"row": number, "reason": row})
            continue
        key = row.row_key
        if key in seen:
            report.duplicates.append({"row": number, "batch_id": batch_id, "batch_row": seen[key]})
            continue
        earlier = conn.execute(select(counter_batch_rows.c.batch_id, counter_batch_rows.c.row_no).where(
            counter_batch_rows.c.scope == scope, counter_batch_rows.c.row_key == key)).first()
        if earlier is not None:
            report.duplicates.append({"row": number, "batch_id": earlier[0], "batch_row": earlier[1]})
            continue
        seen[key] = number
        visit = f"{VISIT_PREFIX}{key[:24]}"
        conn.execute(insert(counter_batch_rows).values(
            scope=scope, row_key=key, batch_id=batch_id, row_no=number, his_visit_id=visit, status="pending",
            payload=cipher.seal(row.model_dump_json()), updated_at=now))
        enqueue_many(conn, SERVICE, [(topic("his_events", prefix), visit, e.to_json(),
                                      {"message_id": e.event_id, "type": type(e).__name__})
                                     for e in visit_events(cfg, row, visit, number, now)])
        report.accepted.append(number)
    for bad in report.bad:
        conn.execute(insert(counter_batch_rejects).values(scope=scope, batch_id=batch_id, row_no=bad["row"],
                                                           reason=bad["reason"][:2000]))
    conn.execute(insert(counter_batches).values(
        scope=scope, batch_id=batch_id, file_sha256=digest, file_name=(file_name or "-")[:200],
        imported_by=by[:128], imported_at=now, rows_total=len(parsed), rows_bad=len(report.bad)))
    return report


def visit_events(cfg: CounterConfig, row: NatRow, visit: str, number: int, now: _dt.datetime) -> list[Any]:
    """The canonical events of one tested person's visit: registered, its diagnosis, the test's charge line and
    the settlement request — as a HIS would have written them."""
    key = row.row_key
    patient = f"NAT-P-{stable_id('nat-person', row.certno.upper())[:16]}"
    base = {"his_visit_id": visit, "visit_kind": "outpatient", "his_patient_id": patient, "opter": "NAT",
            "opter_name": "核酸批量结算"}

    def source(seq: int) -> EventSource:
        return EventSource(topic="counter.nat_batch", partition=0, offset=number * 10 + seq,
                           table="COUNTER.NAT_BATCH", op="c")

    total = row.total
    begin = now.replace(microsecond=0)
    return [
        PatientRegistered(event_id=stable_id("nat", key, "registered"), source=source(1), occurred_at=begin, **base,
                          ipt_otp_no=visit[:30], mdtrt_cert_type=row.mdtrt_cert_type,
                          mdtrt_cert_no=row.mdtrt_cert_no or row.certno, psn_cert_type=row.psn_cert_type,
                          certno=row.certno, psn_name=row.psn_name, insutype=row.insutype,
                          med_type=cfg.batch_med_type, begntime=begin, dept_code=cfg.batch_dept_code,
                          dept_name=cfg.batch_dept_name, caty=cfg.batch_caty, atddr_no=cfg.batch_doctor_code,
                          dr_name=cfg.batch_doctor_name, channel="other"),
        VisitInfo(event_id=stable_id("nat", key, "visit_info"), source=source(2), occurred_at=begin, **base,
                  med_type=cfg.batch_med_type, dise_codg=cfg.batch_diag_code, dise_name=cfg.batch_diag_name,
                  diagnoses=[Diagnosis(diag_type="1", diag_srt_no=1, diag_code=cfg.batch_diag_code,
                                       diag_name=cfg.batch_diag_name, maindiag_flag="1", diag_time=begin,
                                       diag_dept=cfg.batch_dept_name)]),
        ChargeLineAdded(event_id=stable_id("nat", key, "line"), source=source(3), occurred_at=begin, **base,
                        feedetl_sn=f"NAT{key[:20]}", fee_ocur_time=begin, med_list_codg=row.med_list_codg,
                        medins_list_codg=row.medins_list_codg, medins_list_name=row.item_name,
                        det_item_fee_sumamt=total, cnt=row.cnt.quantize(Decimal("0.0001")),
                        pric=row.pric.quantize(Decimal("0.000001")), bilg_dept_codg=cfg.batch_dept_code,
                        bilg_dept_name=cfg.batch_dept_name, bilg_dr_codg=cfg.batch_doctor_code,
                        bilg_dr_name=cfg.batch_doctor_name, acord_dept_codg=cfg.batch_dept_code,
                        acord_dept_name=cfg.batch_dept_name, orders_dr_code=cfg.batch_doctor_code,
                        orders_dr_name=cfg.batch_doctor_name, hosp_appr_flag="1", etip_flag="0"),
        SettlementRequested(event_id=stable_id("nat", key, "settle"), source=source(4), occurred_at=begin, **base,
                            his_request_id=f"NAT-S-{key[:24]}", medfee_sumamt=total,
                            acct_used_flag=cfg.batch_acct_used_flag, insutype=row.insutype),
    ]


# --- progress -------------------------------------------------------------------------------------------------------

_RANK = {"pending": 0, "registered": 1, "parked": 2, "rejected": 3, "settled": 4}


def absorb_result(conn: Connection, result: HisResult) -> bool:
    """Move a batch row on from an answer to its visit; whether it was one of ours."""
    if not result.his_visit_id.startswith(VISIT_PREFIX):
        return False
    scope = _scope(conn)
    row = conn.execute(select(counter_batch_rows.c.row_key, counter_batch_rows.c.status).where(
        counter_batch_rows.c.scope == scope, counter_batch_rows.c.his_visit_id == result.his_visit_id)).first()
    if row is None:
        return False
    values: dict[str, Any] = {}
    if result.kind == "registered":
        values = {"status": "registered", "mdtrt_id": result.mdtrt_id}
    elif result.kind == "settled" and result.split is not None:
        values = {"status": "settled", "setl_id": result.setl_id, "mdtrt_id": result.mdtrt_id, "reason": None,
                  "medfee_sumamt": result.split.medfee_sumamt, "fund_pay_sumamt": result.split.fund_pay_sumamt,
                  "psn_cash_pay": result.split.psn_cash_pay}
    elif result.kind in ("rejected", "parked"):
        values = {"status": result.kind, "reason": (result.reason or result.reason_code or "")[:2000]}
    if not values or _RANK[values["status"]] < _RANK.get(row[1], 0):
        return True
    values["updated_at"] = clock.now()
    conn.execute(update(counter_batch_rows).where(counter_batch_rows.c.scope == scope,
                                                  counter_batch_rows.c.row_key == row[0]).values(**values))
    return True


def batch_progress(conn: Connection, batch_id: str, *, personal: bool) -> dict[str, Any] | None:
    """The batch, its counts by status and every row (names and certnos only with ``personal``)."""
    scope = _scope(conn)
    batch = conn.execute(select(counter_batches).where(counter_batches.c.scope == scope,
                                                       counter_batches.c.batch_id == batch_id)).first()
    if batch is None:
        return None
    cipher = Deployment.of(conn).cipher
    rows = []
    for r in conn.execute(select(counter_batch_rows).where(counter_batch_rows.c.scope == scope,
                                                           counter_batch_rows.c.batch_id == batch_id)
                          .order_by(counter_batch_rows.c.row_no)):
        data = json.loads(cipher.open(r.payload))
        item: dict[str, Any] = {"row": r.row_no, "status": r.status, "reason": r.reason, "his_visit_id": r.his_visit_id,
                                "mdtrt_id": r.mdtrt_id, "setl_id": r.setl_id, "test_date": data.get("test_date"),
                                "medfee_sumamt": _text(r.medfee_sumamt), "fund_pay_sumamt": _text(r.fund_pay_sumamt),
                                "psn_cash_pay": _text(r.psn_cash_pay)}
        if personal:
            item.update(psn_name=data.get("psn_name"), certno=data.get("certno"))
        rows.append(item)
    rejects = [{"row": r.row_no, "status": "bad", "reason": r.reason} for r in conn.execute(
        select(counter_batch_rejects).where(counter_batch_rejects.c.scope == scope,
                                            counter_batch_rejects.c.batch_id == batch_id)
        .order_by(counter_batch_rejects.c.row_no))]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    counts["bad"] = len(rejects)
    done = sum(counts.get(s, 0) for s in ("settled", "rejected", "parked"))
    return {"batch_id": batch.batch_id, "file_name": batch.file_name, "imported_by": batch.imported_by,
            "imported_at": clock.format_datetime(batch.imported_at), "rows_total": batch.rows_total,
            "counts": counts, "finished": done == len(rows), "rows": rows, "bad": rejects}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def export_workbook(progress: dict[str, Any]) -> bytes:
    """The batch's per-row outcome as an Excel workbook for finance."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "结算情况"
    sheet.append(["批次", progress["batch_id"], "文件", progress["file_name"], "导入人", progress["imported_by"],
                  "导入时间", progress["imported_at"]])
    sheet.append(["行号", "姓名", "证件号码", "采样日期", "状态", "原因", "就诊ID", "结算ID", "医疗费总额", "基金支付",
                  "个人现金"])
    labels = {"pending": "处理中", "registered": "已登记", "settled": "已结算", "rejected": "被拒绝", "parked": "待处理",
              "bad": "数据有误"}
    entries = sorted(progress["rows"] + progress["bad"], key=lambda r: r["row"])
    for r in entries:
        sheet.append([r["row"], r.get("psn_name"), r.get("certno"), r.get("test_date"), labels.get(r["status"], r["status"]),
                      r.get("reason"), r.get("mdtrt_id"), r.get("setl_id"),
                      *(Decimal(r[k]) if r.get(k) else None for k in ("medfee_sumamt", "fund_pay_sumamt",
                                                                       "psn_cash_pay"))])
    for row in sheet.iter_rows(min_row=3, min_col=9, max_col=11):
        for cell in row:
            cell.number_format = "0.00"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def batch_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(counter_batches).where(
        counter_batches.c.scope == _scope(conn))).scalar_one())
