"""3301 目录对照上传 / 3302 目录对照撤销: one pairing of a hospital catalogue item (fixmedins_hilist_id) with a
national 医疗目录编码. Lost answer (catalog): 1317 医药机构目录匹配信息 lists the institution's pairings — a 3301 took
effect when it lists ours with the code sent, a 3302 when it no longer lists it (or lists it invalid)."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Lookup
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, payload_for, rows_in, upload_call

__all__ = ["batch_call", "lookup_1317"]


def lookup_1317(ctx: StepContext, infno: str, data: dict[str, Any]) -> Lookup:
    hilist_id = str(data.get("fixmedins_hilist_id") or "")
    code = str(data.get("med_list_codg") or "")
    query = {"data": {"fixmedins_code": ctx.config.fixmedins_code or None, "medins_list_codg": hilist_id,
                      "updt_time": "2000-01-01", "page_num": 1, "page_size": 100}}
    query["data"] = {k: v for k, v in query["data"].items() if v is not None}

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        rows = [r for r in rows_in(output, "data", "list") if str(r.get("medins_list_codg")) == hilist_id]
        valid = [r for r in rows if str(r.get("vali_flag", "1")) != "0"]
        if infno == "3302":
            return {} if not valid else None
        return {} if any(str(r.get("med_list_codg")) == code for r in valid) else None

    return Lookup("1317", query, found=found)


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    rec = st.records.get(batch.keys[0])
    data = payload_for(ctx, rec).get("data", {}) if rec is not None else {}
    return upload_call(ctx, st, batch, lookup=lookup_1317(ctx, batch.infno, data if isinstance(data, dict) else {}))
