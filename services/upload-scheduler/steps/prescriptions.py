"""7101 电子处方上传 / 7104 电子处方撤销 / 7105 处方支付状态同步. 7101's answer carries the platform's hi_rxno, kept
with the record (lanes.yaml receipt); 7104 and 7105 wait for their prescription's 7101 to be accepted and send its
hi_rxno (lanes.yaml requires/fill). Lost answer (catalog): sent again — the platform keys prescriptions by
hosp_rxno and answers a resend with the hi_rxno it gave, or refuses it as already uploaded."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.upload_scheduler.state import Batch, LaneState
from yibao.upload_scheduler.steps.common import StepContext, upload_call

__all__ = ["batch_call"]


def batch_call(ctx: StepContext, st: LaneState, batch: Batch) -> Call[LaneState]:
    return upload_call(ctx, st, batch)
