"""YMT.UPLOAD 出入库数据及追溯码上传 to 一码通 (seed 002): one inbound/outbound document with its items and their
药品追溯码 per call; the platform answers each document's result (results[]: doc_no, code, message). Lost answer
(targets.yaml): YMT.DOC — the document took effect when the platform returns it by its doc_no. The fetches (by
date, by document, a code's smallest sub-codes) and the Excel export are :mod:`yibao.upload_scheduler.yimatong`."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Lookup
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import PerRecord, StepContext, rows_in, upload_call

__all__ = ["batch_call", "results_of"]


def results_of(output: dict[str, Any], batch: Batch) -> PerRecord:
    out: PerRecord = {}
    for row in rows_in(output, "results"):
        key = str(row.get("doc_no") or "")
        if key in batch.revisions:
            ok = str(row.get("code", "0")) == "0"
            out[key] = (ok, None if ok else str(row.get("message") or "refused"), {"doc_no": key} if ok else None)
    return out


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    doc_no = batch.keys[0]

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        doc = output.get("doc") if isinstance(output.get("doc"), dict) else output
        if str(doc.get("doc_no") or "") == doc_no:
            return {"results": [{"doc_no": doc_no, "code": 0}]}
        return None

    return upload_call(ctx, st, batch, per_record=results_of, lookup=Lookup("YMT.DOC", {"doc_no": doc_no}, found))
