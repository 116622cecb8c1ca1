"""ZF.UPLOAD 自费就诊费用信息上传 to the provincial platform (seed 004): a batch of self-pay visits; the platform
answers with a **task id**, and ZF.TASK is polled (every ``zifei_poll_s``) until the task is done and names each
record's result — accepted, or refused with the platform's reason (the rest of the batch goes on). A task still
unfinished after ``zifei_max_polls`` polls holds the lane for a person. Lost answers (targets.yaml): the upload is
sent again (the platform keys records by visit_no: the new task's results cover the same records); a poll is a
query, simply asked again. A poll refused because the platform does not know the task sends the records again."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.upload_scheduler.state import Batch, LaneState, Parked
from yibao.upload_scheduler.steps.common import PerRecord, StepContext, rows_in, settle_batch, upload_call

__all__ = ["batch_call", "poll_call", "task_results"]

RUNNING = frozenset({"pending", "processing", "running", "0", "1"})


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    def on_task(s: LaneState, b: Batch, output: dict[str, Any], reply: Reply, fx: Effects) -> bool:
        task_id = output.get("task_id")
        if not task_id:
            return False  # answered the records at once
        b.phase, b.task_id, b.msgid, b.polls = "polling", str(task_id), reply.msgid, 0
        b.next_poll_at = fx.now + ctx.config.zifei_poll
        for key in b.keys:
            s.records.note(key, f"sent: the platform's task {task_id} is being processed", fx.now)
        return True

    return upload_call(ctx, st, batch, on_task=on_task)


def task_results(output: dict[str, Any], batch: Batch) -> PerRecord:
    out: PerRecord = {}
    for row in rows_in(output, "results", "records"):
        key = str(row.get("record_key") or row.get("visit_no") or "")
        if key in batch.revisions:
            ok = str(row.get("code", "0")) == "0"
            out[key] = (ok, None if ok else str(row.get("message") or "refused by the platform"),
                        {"task_id": batch.task_id} if ok else None)
    return out


def poll_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    no, task, polls = batch.no, batch.task_id, batch.polls
    assert ctx.spec.poll_infno is not None

    def current(s: LaneState) -> Batch | None:
        b = s.batch
        return b if b is not None and b.no == no and b.phase == "polling" else None

    def on_ok(s: LaneState, reply: Reply, fx: Effects) -> None:
        b = current(s)
        if b is None:
            return
        status = str(reply.output.get("status") or "")
        if status in RUNNING:
            b.polls += 1
            b.next_poll_at = fx.now + ctx.config.zifei_poll
            if b.polls >= ctx.config.zifei_max_polls:
                s.hold = Parked(reason_code="task_unfinished",
                                reason=f"the platform's task {task} is unfinished after {b.polls} polls")
            return
        results = task_results(reply.output, b)
        missing = [k for k in b.keys if k not in results]
        for key in missing:  # a record the task does not name: the platform did not take it
            results[key] = (False, f"task {task} has no result for this record", None)
        settle_batch(ctx, s, b, b.msgid, fx, results=results)

    def on_refused(s: LaneState, refusal: Refusal, fx: Effects) -> None:
        b = current(s)
        if b is None:
            return
        s.records.release(b.keys, fx.now, f"the platform does not know task {task} ({refusal.text}): sent again")
        s.batch = None

    return Call(f"{ctx.spec.poll_infno}:b{no}:{polls}", ctx.spec.poll_infno, {"task_id": task}, on_ok=on_ok,
                on_refused=on_refused)
