"""The daily summary ops read: per target and kind, what was due that day, sent, accepted, rejected (with the
platform's reasons), parked (with ours), still pending, and overdue — as JSON and as an Excel workbook.

The workbook has a ``summary`` sheet (one row per target and kind, totals last) and a ``problems`` sheet (each
record rejected, parked or overdue: its key, status and reason — never its content, so no names or certnos).
"""

from __future__ import annotations

import datetime as _dt
import io
from typing import Any

__all__ = ["SUMMARY_COLUMNS", "PROBLEM_COLUMNS", "summary_json", "build_xlsx"]

SUMMARY_COLUMNS = ("target", "kind", "due", "sent", "accepted", "rejected", "parked", "withdrawn", "pending",
                   "overdue")
PROBLEM_COLUMNS = ("target", "kind", "key", "his_visit_id", "status", "revision", "reason", "reason_field",
                   "deadline_at", "updated_at")


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"target": "total", "kind": ""}
    for col in SUMMARY_COLUMNS[2:]:
        total[col] = sum(int(r.get(col, 0)) for r in rows)
    return total


def summary_json(day: _dt.date, rows: list[dict[str, Any]], problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {"date": day.isoformat(), "rows": rows, "total": _totals(rows), "problems": problems}


def build_xlsx(day: _dt.date, rows: list[dict[str, Any]], problems: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "summary"
    ws.append([f"uploads due on {day.isoformat()}"])
    ws.append(list(SUMMARY_COLUMNS))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for r in rows + [_totals(rows)]:
        ws.append([r.get(c, "") for c in SUMMARY_COLUMNS])
    ws2 = wb.create_sheet("problems")
    ws2.append(list(PROBLEM_COLUMNS))
    for cell in ws2[1]:
        cell.font = Font(bold=True)
    for p in problems:
        ws2.append([p.get(c) if p.get(c) is not None else "" for c in PROBLEM_COLUMNS])
    for sheet in (ws, ws2):
        for column in sheet.columns:
            width = max((len(str(c.value)) for c in column if c.value is not None), default=8)
            sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width + 2))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
