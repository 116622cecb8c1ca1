"""3501-3507 进销存 — 盘存, 库存变更, 采购 and its returns, 销售 and its returns, deletion — each line with its 药品追溯码 (drugtracinfo) where HIS gives them, keyed by the hospital's batch serial (fixmedins_bchno): a resend lands on the same record (catalog: resend)."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
