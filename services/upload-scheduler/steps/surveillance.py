"""The surveillance platforms (seed 004): 疫情防控指标 every 15 minutes (YQ.UPLOAD, a list of indicator rows per
call, split when refused), and the 流感 case reports — 门急诊和在院病例, 出院病例, 出院小结, 死亡记录, 用药记录, 检验记录
— and 发热门诊 visits (FLU.*, FEVER.VIS), one record per call. Lost answers (targets.yaml): sent again — the
platform keys indicators by code and period, cases by case_id."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
