"""4101 (and a province's 4101A) 医疗保障基金结算清单: one 清单 per settlement (key setl_id). The settlement (his_results) opens the record with its deadline; HIS's content fills it and it goes on the lane's schedule. A refunded settlement's 清单 not sent yet is withdrawn. A resend lands on the same setl_id (catalog: resend)."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
