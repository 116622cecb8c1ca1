"""GYU003 协议机构月结信息上传: once per institution per month. Checked here before sending, with the field named: at
least one visit (visit_count > 0) and as many as the items; the totals the sums of the items (medfee_sumamt,
pool_amt, deduct_amt — deductions and revocations offset); pay_amt = pool_amt − deduct_amt. The platform checks the
items against the settlements it holds for that month."""

from __future__ import annotations

from decimal import Decimal

from yibao.chains.model import Call
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, WorkInjuryState, amount
from yibao.workinjury_sync.steps.common import check_record, record_call

__all__ = ["INFNO", "month_problem", "month_call"]

INFNO = "GYU003"


def month_problem(cfg: ChainConfig, part: Part) -> str | None:
    record = part.record
    if int(record.get("visit_count") or 0) <= 0:
        return "month_list.visit_count: a month-end needs at least one visit"
    problem = check_record(cfg, INFNO, "month_list", record)
    if problem is not None:
        return problem
    items = record["setl_list"]
    if int(record["visit_count"]) != len(items):
        return f"month_list.visit_count: {record['visit_count']} given, {len(items)} settlements listed"
    for field in ("medfee_sumamt", "pool_amt", "deduct_amt"):
        total = sum((amount(i[field]) for i in items), Decimal("0.00"))
        if amount(record[field]) != total:
            return f"month_list.{field}: not the sum of the listed settlements ({total})"
    if amount(record["pay_amt"]) != amount(record["pool_amt"]) - amount(record["deduct_amt"]):
        return "month_list.pay_amt: must be pool_amt − deduct_amt"
    if amount(record["pool_amt"]) + amount(record["self_amt"]) != amount(record["medfee_sumamt"]):
        return "month_list.self_amt: pool_amt + self_amt is not medfee_sumamt"
    return None


def month_call(cfg: ChainConfig, state: WorkInjuryState, part: Part) -> Call[WorkInjuryState]:
    return record_call(cfg, part, lambda s: s.month.parts if s.month else (), infno=INFNO, node="month_list",
                       record=part.record, request="month_end",
                       took=lambda s, p, reply: {"org_code": str(p.record["org_code"]),
                                                 "month": str(p.record["month"])})
