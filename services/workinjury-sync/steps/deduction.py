"""GYU004 费用审核扣款信息上传: a deduction from the stay's settlement — only once that settlement is on the platform,
for more than 0 and at most its pooled total less the deductions already there (checked here, the field named)."""

from __future__ import annotations

from decimal import Decimal

from yibao.chains.model import Call, Reply
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import StayCase, StayRequest, WorkInjuryState, amount
from yibao.workinjury_sync.steps.common import check_record, record_call

__all__ = ["INFNO", "deduction_problem", "deduction_call"]

INFNO = "GYU004"


def _record(stay: StayCase, request: StayRequest) -> dict:
    adm = stay.admission.record if stay.admission is not None else {}
    return {**request.record, "org_code": adm.get("org_code")}


def deduction_problem(cfg: ChainConfig, stay: StayCase, request: StayRequest) -> str | None:
    record = _record(stay, request)
    problem = check_record(cfg, INFNO, "deduct_list", record)
    if problem is not None:
        return problem
    settled = stay.settled
    assert settled is not None
    if record["setl_no"] != settled.record.get("setl_no"):
        return "deduct_list.setl_no: not the settlement of this stay on the platform"
    taken = sum((amount(d.record["deduct_amt"]) for d in stay.deductions.values()), Decimal("0.00"))
    room = amount(settled.record.get("pool_amt")) - taken
    value = amount(record["deduct_amt"])
    if not Decimal("0") < value <= room:
        return f"deduct_list.deduct_amt: must be more than 0 and at most the pooled total left ({room})"
    return None


def deduction_call(cfg: ChainConfig, state: WorkInjuryState, request: StayRequest) -> Call[WorkInjuryState]:
    stay = state.stay
    assert stay is not None
    record = _record(stay, request)

    def took(s: WorkInjuryState, r: StayRequest, reply: Reply) -> dict[str, str]:
        assert s.stay is not None
        s.stay.deductions[str(record["deduct_no"])] = r
        return {"deduct_no": str(record["deduct_no"])}

    return record_call(cfg, request, lambda s: s.stay.requests if s.stay is not None else (), infno=INFNO,
                       node="deduct_list", record=record, request="deduction", took=took)
