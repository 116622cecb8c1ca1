"""Reports of a run for finance: an Excel workbook, an HTML page with the same content, a JSON summary.

* Workbook (openpyxl): a ``summary`` sheet (the run, the 3201 statements of each phase, differences by class
  and channel, repairs by status) and one sheet per difference class (``platform_only``, ``his_only``,
  ``amount_mismatch``, ``status_mismatch``, always present, empty when nothing was found). Amounts are numbers
  with two decimals (number format ``0.00``), never text.
* HTML: the same tables, one section per sheet, self-contained (no scripts, no external resources).
* JSON: the same facts for machines (amounts as strings, exact).

Channels (``national``, ``mobilepay`` …) are a column of every difference and a dimension of the summary, so
mobile-pay and 1.0/2.0 orders stay apart. Reports carry psn_no and mdtrt_id (the platform's identifiers finance
needs to act), never names or certificate numbers — the ledger does not hold them.
"""

from __future__ import annotations

import datetime as _dt
import html
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from yibao.core import clock

from .classify import DIFFERENCE_LABELS
from .runs import DifferenceRecord, RunRecord, StatementRecord
from .settings import DIFFERENCE_CLASSES

__all__ = ["RunReport", "ReportFiles", "DIFFERENCE_COLUMNS", "build_xlsx", "build_html", "build_json",
           "write_reports", "report_paths", "AMOUNT_FORMAT"]

AMOUNT_FORMAT = "0.00"

#: (header, attribute, kind) of each difference sheet's columns
DIFFERENCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "id", "int"),
    ("setl_id", "setl_id", "text"),
    ("mdtrt_id", "mdtrt_id", "text"),
    ("psn_no", "psn_no", "text"),
    ("channel", "channel", "text"),
    ("clr_type", "clr_type", "text"),
    ("setl_optins", "setl_optins", "text"),
    ("refd_setl_flag", "refd_setl_flag", "text"),
    ("row code", "row_code", "text"),
    ("HIS medfee_sumamt", "his_medfee_sumamt", "money"),
    ("HIS fund_pay_sumamt", "his_fund_pay_sumamt", "money"),
    ("HIS acct_pay", "his_acct_pay", "money"),
    ("platform medfee_sumamt", "plat_medfee_sumamt", "money"),
    ("platform fund_pay_sumamt", "plat_fund_pay_sumamt", "money"),
    ("platform acct_pay", "plat_acct_pay", "money"),
    ("memo", "memo", "text"),
    ("repair", "action", "text"),
    ("repair amount", "amount", "money"),
    ("status", "status", "text"),
    ("approved by", "approved_by", "text"),
    ("approved at", "approved_at", "time"),
    ("approval reason", "approval_reason", "text"),
    ("outcome", "outcome", "text"),
    ("first seen", "first_seen_at", "time"),
)
_STATEMENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("phase", "phase", "text"),
    ("insutype", "insutype", "text"),
    ("clr_type", "clr_type", "text"),
    ("setl_optins", "setl_optins", "text"),
    ("refd_setl_flag", "refd_setl_flag", "text"),
    ("medfee_sumamt", "medfee_sumamt", "money"),
    ("fund_pay_sumamt", "fund_pay_sumamt", "money"),
    ("acct_pay", "acct_pay", "money"),
    ("count", "setl_cnt", "int"),
    ("stmt_rslt", "stmt_rslt", "text"),
    ("result", "stmt_rslt_dscr", "text"),
)
_STATE_TEXT = {
    "running": "running / 对账中",
    "balanced": "balanced / 对账平",
    "differences_found": "differences found / 存在差异",
    "repaired_and_balanced": "repaired and balanced / 已修复且对平",
    "failed": "failed / 对账失败",
    "refused": "refused / 已拒绝（日期重叠）",
}


@dataclass(frozen=True)
class RunReport:
    run: RunRecord
    statements: Sequence[StatementRecord]
    differences: Sequence[DifferenceRecord]
    generated_at: _dt.datetime

    def of_class(self, diff_class: str) -> list[DifferenceRecord]:
        return [d for d in self.differences if d.diff_class == diff_class]

    def rechecked_balanced(self) -> bool | None:
        """The last re-check's verdict: True balanced, False not, None no re-check."""
        recheck = [s for s in self.statements if s.phase == "recheck"]
        if not recheck:
            return None
        latest: dict[tuple[str, str, str, str | None], StatementRecord] = {}
        for s in recheck:
            latest[(s.insutype, s.clr_type, s.setl_optins, s.refd_setl_flag)] = s
        return all(s.balanced for s in latest.values())

    def summary_rows(self) -> list[tuple[str, str]]:
        run = self.run
        recheck = self.rechecked_balanced()
        rows = [
            ("run id", run.run_id),
            ("period", f"{run.date_from.isoformat()} ~ {run.date_to.isoformat()}"),
            ("insutype", run.insutype or "all"),
            ("clr_type", run.clr_type or "all"),
            ("trigger", run.trigger),
            ("requested by", run.requested_by or ""),
            ("state", _STATE_TEXT.get(run.state, run.state)),
            ("message", run.message or ""),
            ("re-check after repair", {None: "not needed", True: "balanced / 复核对平",
                                       False: "not balanced / 复核不平"}[recheck]),
            ("started", clock.format_datetime(run.created_at)),
            ("finished", clock.format_datetime(run.finished_at) if run.finished_at else ""),
            ("report generated", clock.format_datetime(self.generated_at)),
        ]
        return rows

    def class_counts(self) -> list[tuple[str, str, int]]:
        counts = Counter((d.diff_class, d.channel) for d in self.differences)
        return [(cls, channel, n) for (cls, channel), n in sorted(counts.items())]

    def status_counts(self) -> list[tuple[str, int]]:
        return sorted(Counter(d.status for d in self.differences).items())


@dataclass(frozen=True)
class ReportFiles:
    xlsx: Path
    html: Path
    json: Path


def _value(record: Any, attribute: str, kind: str) -> Any:
    value = getattr(record, attribute, None)
    if value is None:
        return None
    if kind == "money":
        return Decimal(value).quantize(Decimal("0.01"))
    if kind == "time" and isinstance(value, _dt.datetime):
        return clock.format_datetime(value)
    return value


# --- Excel ---------------------------------------------------------------------------------------------------


def build_xlsx(report: RunReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    book = Workbook()
    sheet = book.active
    sheet.title = "summary"
    sheet.append(["对账报告 Reconciliation report"])
    sheet["A1"].font = bold
    for label, value in report.summary_rows():
        sheet.append([label, value])
    sheet.append([])
    sheet.append(["3201 statements"])
    sheet.cell(sheet.max_row, 1).font = bold
    sheet.append([h for h, _, _ in _STATEMENT_COLUMNS])
    for s in report.statements:
        sheet.append([_value(s, a, k) for _, a, k in _STATEMENT_COLUMNS])
        for col, (_, _, kind) in enumerate(_STATEMENT_COLUMNS, start=1):
            if kind == "money":
                sheet.cell(sheet.max_row, col).number_format = AMOUNT_FORMAT
    sheet.append([])
    sheet.append(["differences by class and channel"])
    sheet.cell(sheet.max_row, 1).font = bold
    sheet.append(["class", "channel", "count"])
    for cls, channel, n in report.class_counts():
        sheet.append([cls, channel, n])
    sheet.append([])
    sheet.append(["repairs by status"])
    sheet.cell(sheet.max_row, 1).font = bold
    sheet.append(["status", "count"])
    for status, n in report.status_counts():
        sheet.append([status, n])
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 40
    for cls in DIFFERENCE_CLASSES:
        ws = book.create_sheet(cls)
        ws.append([h for h, _, _ in DIFFERENCE_COLUMNS])
        for cell in ws[1]:
            cell.font = bold
        for d in report.of_class(cls):
            ws.append([_value(d, a, k) for _, a, k in DIFFERENCE_COLUMNS])
            for col, (_, _, kind) in enumerate(DIFFERENCE_COLUMNS, start=1):
                if kind == "money":
                    ws.cell(ws.max_row, col).number_format = AMOUNT_FORMAT
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- HTML ----------------------------------------------------------------------------------------------------


def _cell_html(value: Any, kind: str) -> str:
    if value is None:
        return "<td></td>"
    if kind == "money":
        return f'<td class="num">{html.escape(format(value, "f"))}</td>'
    if kind == "int":
        return f'<td class="num">{html.escape(str(value))}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(columns: Sequence[tuple[str, str, str]], records: Sequence[Any], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in columns)
    body = "".join("<tr>" + "".join(_cell_html(_value(r, a, k), k) for _, a, k in columns) + "</tr>"
                   for r in records)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def build_html(report: RunReport) -> str:
    run = report.run
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                      for k, v in report.summary_rows())
    counts = "".join(f"<tr><td>{html.escape(c)}</td><td>{html.escape(ch)}</td><td class=\"num\">{n}</td></tr>"
                     for c, ch, n in report.class_counts())
    statuses = "".join(f"<tr><td>{html.escape(s)}</td><td class=\"num\">{n}</td></tr>"
                       for s, n in report.status_counts())
    sections = []
    for cls in DIFFERENCE_CLASSES:
        english, chinese = DIFFERENCE_LABELS[cls]
        rows = report.of_class(cls)
        sections.append(f'<section id="{cls}"><h2>{html.escape(english)} / {html.escape(chinese)} '
                        f'({len(rows)})</h2>{_table(DIFFERENCE_COLUMNS, rows, f"table-{cls}")}</section>')
    title = f"对账报告 {run.run_id} {run.date_from.isoformat()}~{run.date_to.isoformat()}"
    return (
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #bbb;padding:.2em .5em;font-size:90%}td.num{text-align:right}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<section id="summary"><h2>Summary / 汇总</h2><table id="table-summary">{summary}</table>'
        f"<h3>3201 statements</h3>{_table(_STATEMENT_COLUMNS, report.statements, 'table-statements')}"
        "<h3>Differences by class and channel</h3><table id=\"table-counts\"><thead><tr><th>class</th>"
        f"<th>channel</th><th>count</th></tr></thead><tbody>{counts}</tbody></table>"
        "<h3>Repairs by status</h3><table id=\"table-statuses\"><thead><tr><th>status</th><th>count</th></tr>"
        f"</thead><tbody>{statuses}</tbody></table></section>"
        + "".join(sections) + "</body></html>"
    )


# --- JSON ----------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        return clock.format_datetime(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def build_json(report: RunReport) -> dict[str, Any]:
    by_class: dict[str, dict[str, int]] = {cls: {} for cls in DIFFERENCE_CLASSES}
    for cls, channel, n in report.class_counts():
        by_class.setdefault(cls, {})[channel] = n
    return {
        "run": report.run.public(),
        "rechecked_balanced": report.rechecked_balanced(),
        "statements": [{h: _jsonable(_value(s, a, k)) for h, a, k in _STATEMENT_COLUMNS} for s in report.statements],
        "differences_by_class": by_class,
        "repairs_by_status": dict(report.status_counts()),
        "differences": [{a: _jsonable(_value(d, a, k)) for _, a, k in DIFFERENCE_COLUMNS} | {"class": d.diff_class}
                        for d in report.differences],
        "generated_at": clock.format_datetime(report.generated_at),
    }


def report_paths(reports_dir: Path, run_id: str) -> ReportFiles:
    base = Path(reports_dir) / run_id
    return ReportFiles(base / "report.xlsx", base / "report.html", base / "summary.json")


def write_reports(report: RunReport, reports_dir: Path) -> ReportFiles:
    """Write the three files (each replaced atomically) under ``reports_dir/<run id>/``."""
    paths = report_paths(reports_dir, report.run.run_id)
    paths.xlsx.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((paths.xlsx, build_xlsx(report)), (paths.html, build_html(report).encode("utf-8")),
                          (paths.json, json.dumps(build_json(report), ensure_ascii=False, indent=2).encode("utf-8"))):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    return paths
