"""GYU002 附件上传: a case's attachments, at most 10 a call, before what names them (GYU006's filing, GYU103's
rehabilitation plan). A batch is frozen before it is sent, so a lost answer (GYD053) finds the same batch; the
platform's attachment ids (plat_no per atta_no) are kept for the record that needs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yibao.chains.model import Call, Change, Effects, Refusal, Reply
from yibao.workinjury_sync.state import AttachmentPart, Batch, WorkInjuryState
from yibao.workinjury_sync.steps.common import lookup, results_of

__all__ = ["freeze_attachments", "attachments_call", "attachment_part", "attachments_of"]

INFNO = "GYU002"
LIMIT = 10


def attachments_of(state: WorkInjuryState) -> tuple[dict[str, AttachmentPart], Batch | None]:
    holder = state.stay if state.stay is not None else state.filing
    assert holder is not None
    return holder.attachments, holder.atta_batch


def _holder(state: WorkInjuryState) -> Any:
    return state.stay if state.stay is not None else state.filing


def attachment_part(event_id: str, occurred_at: Any, received_at: Any, atta: Any) -> AttachmentPart:
    return AttachmentPart(event_id=event_id, occurred_at=occurred_at, received_at=received_at, atta_no=atta.atta_no,
                          record={"atta_no": atta.atta_no, "atta_name": atta.atta_name, "atta_type": atta.atta_type,
                                  "file_content": atta.file_content})


def freeze_attachments(nos: list[str]) -> Change[WorkInjuryState]:
    """Freeze the next ≤ 10 attachments ``nos`` (pending, in order) into a batch."""
    def apply(state: WorkInjuryState, fx: Effects) -> None:
        holder = _holder(state)
        if holder.atta_batch is not None:
            return
        pending = [n for n in nos if n in holder.attachments and holder.attachments[n].open][:LIMIT]
        if pending:
            holder.atta_batch = Batch(no=state.next_seq(), sns=pending)
            for n in pending:
                holder.attachments[n].batch = holder.atta_batch.no

    return Change("freeze attachments", apply)


def attachments_call(state: WorkInjuryState, on_failed: Callable[[WorkInjuryState, Refusal, Effects], None]
                     ) -> Call[WorkInjuryState]:
    attachments, batch = attachments_of(state)
    assert batch is not None
    rows = [attachments[n].record for n in batch.sns]
    no, nos = batch.no, list(batch.sns)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        holder = _holder(s)
        if holder.atta_batch is None or holder.atta_batch.no != no:
            return
        ids = results_of(reply.output)
        for n in nos:
            part = holder.attachments[n]
            part.status, part.atta_id, part.trans_no, part.done_at, part.batch = (
                "done", ids.get(n) or None, reply.msgid, fx.now, None)
            if not part.atta_id:  # the platform answered without an id for it: the record needing it cannot go
                part.status, part.reason = "refused", f"GYU002 answered no attachment id for {n}"
        holder.atta_batch = None

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        holder = _holder(s)
        if holder.atta_batch is None or holder.atta_batch.no != no:
            return
        for n in nos:
            part = holder.attachments[n]
            part.status, part.reason, part.batch = "refused", refusal.text, None
        holder.atta_batch = None
        on_failed(s, refusal, fx)

    return Call(f"{INFNO}:a{no}", INFNO, {"atta_list": rows}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup(INFNO))
