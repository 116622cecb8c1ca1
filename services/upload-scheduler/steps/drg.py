"""The DRG 综合管理应用平台 (seed 004): 医院信息 and 科室匹配 (their changes go as the 修改 transactions), 住院病案首页,
住院费用结算清单 and 住院诊疗费用明细. The seed's rule: a record uploaded once is not uploaded again — it is first
**冲销** (the page, the list, the whole fee document: DRG.*_CX), then uploaded. So a fixed record that was
accepted goes in two calls: the cancellation (lanes.yaml reverse_infno), then the upload. Lost answers
(targets.yaml): sent again — a second upload is refused as already uploaded (the record is there), a second
cancellation changes nothing."""

from __future__ import annotations

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, reverse_body, upload_call

__all__ = ["batch_call", "reverse_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    if batch.purpose == "reverse":
        return reverse_call(ctx, st, batch)
    return upload_call(ctx, st, batch)


def reverse_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    """冲销 the platform's copy of an accepted record, so its new revision can be uploaded."""
    no, key = batch.no, batch.keys[0]
    body = reverse_body(ctx, key)

    def current(s: LaneState) -> Batch | None:
        b = s.batch
        return b if b is not None and b.no == no and b.purpose == "reverse" else None

    def on_ok(s: LaneState, reply: Reply, fx: Effects) -> None:
        if current(s) is None:
            return
        s.records.forget_receipt(key, fx.now)
        s.records.release([key], fx.now, "cancelled on the platform (冲销): its new revision goes next")
        s.batch = None

    def on_refused(s: LaneState, refusal: Refusal, fx: Effects) -> None:
        if current(s) is None:
            return
        if ctx.catalog.says("not_found", refusal.text):  # nothing there to cancel: upload the new revision
            s.records.forget_receipt(key, fx.now)
            s.records.release([key], fx.now, "the platform held no copy to cancel: its new revision goes next")
        else:
            from yibao.upload_scheduler.results import emit_outcome

            rec = s.records.reject(key, batch.revisions.get(key, 0), f"冲销 refused: {refusal.text}", None, fx.now)
            if rec is not None:
                emit_outcome(fx, rec)
        s.batch = None

    return Call(f"{batch.infno}:b{no}", batch.infno, body, on_ok=on_ok, on_refused=on_refused)
