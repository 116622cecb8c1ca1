"""GYU003 协议机构月结信息上传: once per institution per month. Checked here before sending, with the field named: at
least one visit (visit_count > 0) and as many as the items; the totals the sums of the items (medfee_sumamt,
pool_amt, deduct_amt — deductions and revocations offset); pay_amt = pool_amt − deduct_amt. The platform checks the
items against the settlements it holds for that month."""

from __future__ import annotations

from decimal import Decimal

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, WorkInjuryState, amount
from yibao.workinjury_sync.steps.common import accept, check_record, lookup, refuse

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
    event_id = part.event_id

    def current(s: WorkInjuryState) -> Part | None:
        return next((p for p in s.month.parts if p.event_id == event_id and p.open), None) if s.month else None

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            accept(fx, cfg, p, request="month_end", infno=INFNO, trans_no=reply.msgid,
                   platform_ids={"org_code": str(p.record["org_code"]), "month": str(p.record["month"])})

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            refuse(fx, p, refusal, request="month_end", infno=INFNO)

    return Call(f"{INFNO}:{stable_id(event_id)[:16]}", INFNO, {"month_list": [part.record]}, on_ok=on_ok,
                on_refused=on_refused, lookup=lookup(INFNO))
