"""3401 科室信息上传 / 3402 科室信息变更 / 3403 科室信息撤销. A department's new revision after it was accepted goes
as 3402 (lanes.yaml change_infno). Lost answer (catalog): 5101 科室信息查询 — 3401 took effect when it lists our
hosp_dept_codg, 3402 when it lists it with the name sent, 3403 when it no longer lists it (or lists it invalid)."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Lookup
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, payload_for, rows_in, upload_call

__all__ = ["batch_call", "lookup_5101"]


def lookup_5101(infno: str, dept: dict[str, Any]) -> Lookup:
    code = str(dept.get("hosp_dept_codg") or "")
    name = str(dept.get("hosp_dept_name") or "")

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        rows = [r for r in rows_in(output, "feedetail", "deptinfo", "data") if str(r.get("hosp_dept_codg")) == code]
        valid = [r for r in rows if str(r.get("vali_flag", "1")) != "0"]
        if infno == "3403":
            return {} if not valid else None
        if infno == "3402":
            return {} if any(str(r.get("hosp_dept_name")) == name for r in valid) else None
        return {} if valid else None

    return Lookup("5101", {"data": {"hosp_dept_codg": code}}, found=found)


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    rec = st.records.get(batch.keys[0])
    payload = payload_for(ctx, rec) if rec is not None else {}
    dept = payload.get("deptinfo") or payload.get("data") or {}
    return upload_call(ctx, st, batch, lookup=lookup_5101(batch.infno, dept if isinstance(dept, dict) else {}))
