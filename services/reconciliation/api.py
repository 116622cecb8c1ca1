"""The HTTP API finance uses on the worker's port, free of the web framework so it can be tested on its own.

=========================================  ==================================================================
``POST /recon/runs``                       ``{"date": "2026-11-20", "to"?, "insutype"?, "clr_type"?, "by"?}`` →
                                           202 ``{run_id, state: running, links}``; 409 when refused (the days
                                           are being reconciled by another run, named in ``message``)
``GET /recon/runs``                        the latest runs
``GET /recon/runs/{run_id}``               state, progress, message, differences with their repairs
``POST /recon/runs/{run_id}/approve``      ``{"by": "…", "reason": "…", "ids"?: [difference ids]}`` → the run
``POST /recon/runs/{run_id}/reject``       the same, refusing (the differences go to manual handling)
``GET /recon/runs/{run_id}/report/{fmt}``  the report: ``xlsx``, ``html`` or ``json``
=========================================  ==================================================================

Errors answer ``{"error": code, "message": …}``: 400 bad request, 404 unknown run or report, 409 refused or
nothing to approve.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ApprovalError, RunNotFound
from .models import RunRequest
from .reconciler import Reconciler
from .reports import report_paths

__all__ = ["ApiResponse", "ReconApi", "REPORT_TYPES"]

REPORT_TYPES = {
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "html": ("html", "text/html; charset=utf-8"),
    "json": ("json", "application/json"),
}


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any  #: a JSON-able value, or bytes with ``content_type``
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_json(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray))


def _error(status: int, code: str, message: str) -> ApiResponse:
    return ApiResponse(status, {"error": code, "message": message})


def _links(run_id: str) -> dict[str, str]:
    base = f"/recon/runs/{run_id}"
    return {"self": base, "approve": f"{base}/approve",
            **{f"report_{fmt}": f"{base}/report/{fmt}" for fmt in REPORT_TYPES}}


def _date(value: Any, field: str) -> _dt.date:
    if not isinstance(value, str):
        raise ValueError(f"{field}: a date yyyy-MM-dd is required")
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: not a date yyyy-MM-dd") from None


class ReconApi:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def create_run(self, body: bytes | Any) -> ApiResponse:
        try:
            data = json.loads(body or b"{}") if isinstance(body, (bytes, str)) else dict(body or {})
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            start = _date(data.get("date") or data.get("date_from"), "date")
            end = _date(data["to"], "to") if data.get("to") else start
            request = RunRequest(date_from=start, date_to=end, insutype=data.get("insutype") or None,
                                 clr_type=data.get("clr_type") or None, trigger="http",
                                 requested_by=(data.get("by") or data.get("requested_by") or None))
        except (ValueError, ValidationError, TypeError) as exc:
            message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            return _error(400, "bad_request", message)
        run = await self.reconciler.start(request)
        body_out = {"run_id": run.run_id, "state": run.state, "message": run.message, "links": _links(run.run_id)}
        return ApiResponse(409 if run.state == "refused" else 202, body_out)

    async def list_runs(self) -> ApiResponse:
        from .runs import list_runs

        runs = await self.reconciler.db(lambda conn: list_runs(conn))
        return ApiResponse(200, {"runs": [r.public() for r in runs]})

    async def get_run(self, run_id: str) -> ApiResponse:
        try:
            status = await self.reconciler.status(run_id)
        except RunNotFound as exc:
            return _error(404, exc.code, str(exc))
        status["links"] = _links(run_id)
        return ApiResponse(200, status)

    async def decide(self, run_id: str, body: bytes | Any, *, approve: bool) -> ApiResponse:
        try:
            data = json.loads(body or b"{}") if isinstance(body, (bytes, str)) else dict(body or {})
            ids = data.get("ids")
            if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, int) for i in ids)):
                raise ValueError("ids: a list of difference ids (integers)")
            by, reason = str(data.get("by") or ""), str(data.get("reason") or "")
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, "bad_request", str(exc))
        action = self.reconciler.approve if approve else self.reconciler.reject
        try:
            run = await action(run_id, by=by, reason=reason, ids=ids)
        except RunNotFound as exc:
            return _error(404, exc.code, str(exc))
        except ApprovalError as exc:
            return _error(409, exc.code, str(exc))
        return ApiResponse(200, {**run.public(), "links": _links(run_id)})

    async def report(self, run_id: str, fmt: str) -> ApiResponse:
        if fmt not in REPORT_TYPES:
            return _error(400, "bad_request", f"report format must be one of {sorted(REPORT_TYPES)}")
        paths = report_paths(Path(self.reconciler.settings.reports_dir), run_id)
        path = {"xlsx": paths.xlsx, "html": paths.html, "json": paths.json}[fmt]
        if "/" in run_id or "\\" in run_id or ".." in run_id or not path.is_file():
            return _error(404, "recon_report_not_found", f"no {fmt} report for run {run_id}")
        disposition = f'attachment; filename="recon-{run_id}.{fmt}"' if fmt == "xlsx" else "inline"
        return ApiResponse(200, path.read_bytes(), REPORT_TYPES[fmt][1], {"Content-Disposition": disposition})
