"""4201 (and a province's 4201A) 自费病人费用明细: one self-pay visit's fee lines per record (key: its 就医流水号); a resend overwrites the visit's lines (catalog: resend)."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
