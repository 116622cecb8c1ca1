"""4301/4302 门急诊诊疗, 4401/4402 住院病案首页/医嘱, 4501-4506 临床辅助, 4601/4602 输血/生命体征, 4701 电子病历: the platform keys each record by its 就医流水号 (and report/order number); a resend lands on the same record, so a lost answer is simply sent again (catalog: resend). One record per call, except 4402/4506 whose input is a list: a batch of records, split when refused."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
