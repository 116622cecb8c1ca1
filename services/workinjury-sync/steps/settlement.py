"""GYU103 出院结算信息上传 of a stay, and the assistive-device settlement (GYD051 人员备案信息核验, then GYU303).

A stay's settlement goes up once every line of it before the settlement is on the platform, and only when its
totals are the sums of those lines (medfee_sumamt, pool_amt, self_amt, the line count; pool + self = total) —
otherwise it is refused with the field named before anything is sent. Its attachments (a rehabilitation plan)
go up first (GYU002). A device settlement is sent once GYD051 passed for the person, with its arithmetic checked
too (price × cnt = amount per item, the items' sum = medfee_sumamt, pool + self = medfee_sumamt)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, StayCase, StayRequest, WorkInjuryState, amount
from yibao.workinjury_sync.steps.common import check_record, open_part, record_call, refuse, results_of

__all__ = ["STAY_INFNO", "DEVICE_INFNO", "CHECK_INFNO", "settlement_problem", "settlement_call", "device_problem",
           "device_check_call", "device_call"]

STAY_INFNO, DEVICE_INFNO, CHECK_INFNO = "GYU103", "GYU303", "GYD051"
CENT = Decimal("0.01")


def settlement_record(stay: StayCase, request: StayRequest) -> dict[str, Any]:
    """The GYU103 record: HIS's settlement, with the stay's identity, the line count and the attachment ids."""
    adm = stay.admission.record if stay.admission is not None else {}
    record = {**request.record, "ipt_no": adm.get("ipt_no"), "org_code": adm.get("org_code"),
              "filing_no": adm.get("filing_no"), "psn_no": adm.get("psn_no"),
              "fee_count": len(stay.uploaded_lines())}
    record.pop("expected_fee_count", None)
    ids = [{"atta_id": stay.attachments[n].atta_id} for n in request.record.get("atta_nos", [])
           if n in stay.attachments and stay.attachments[n].atta_id]
    record.pop("atta_nos", None)
    if ids:
        record["atta_list"] = ids
    return record


def settlement_problem(cfg: ChainConfig, stay: StayCase, request: StayRequest) -> str | None:
    """What does not add up (the field named), or None."""
    record = settlement_record(stay, request)
    problem = check_record(cfg, STAY_INFNO, "setl_list", record)
    if problem is not None:
        return problem
    lines = stay.uploaded_lines()
    expected = request.record.get("expected_fee_count")
    if expected is not None and int(expected) != len(lines):
        return f"setl_list.fee_count: {expected} given, {len(lines)} lines of the stay are on the platform"
    for field, name in (("medfee_sumamt", "amount"), ("pool_amt", "pool_amt"), ("self_amt", "self_amt")):
        total = sum((amount(line.record[name]) for line in lines), Decimal("0.00"))
        if amount(record[field]) != total:
            return f"setl_list.{field}: not the sum of the stay's uploaded lines ({total})"
    if amount(record["pool_amt"]) + amount(record["self_amt"]) != amount(record["medfee_sumamt"]):
        return "setl_list.pool_amt: pool_amt + self_amt is not medfee_sumamt"
    return None


def settlement_call(cfg: ChainConfig, state: WorkInjuryState, request: StayRequest) -> Call[WorkInjuryState]:
    stay = state.stay
    assert stay is not None
    record = settlement_record(stay, request)

    def took(s: WorkInjuryState, r: StayRequest, reply: Reply) -> dict[str, str]:
        assert s.stay is not None
        r.record = {**r.record, "setl_no": record["setl_no"], "pool_amt": record["pool_amt"],
                    "medfee_sumamt": record["medfee_sumamt"]}
        s.stay.settled = r
        return {"setl_no": str(record["setl_no"])}

    return record_call(cfg, request, lambda s: s.stay.requests if s.stay is not None else (), infno=STAY_INFNO,
                       node="setl_list", record=record, request="settlement", took=took,
                       detail=lambda reply: {"fee_count": record["fee_count"], "ids": results_of(reply.output)})


def _device_settlement(s: WorkInjuryState) -> tuple[Part | None, ...]:
    return (s.device.settlement,) if s.device is not None else ()


# --- assistive devices ------------------------------------------------------------------------------------------

def device_problem(cfg: ChainConfig, record: dict[str, Any]) -> str | None:
    problem = check_record(cfg, DEVICE_INFNO, "setl_list", record)
    if problem is not None:
        return problem
    total = Decimal("0.00")
    for item in record["device_list"]:
        price, cnt, value = amount(item["price"]), amount(item["cnt"]), amount(item["amount"])
        if (price * cnt).quantize(CENT, rounding=ROUND_HALF_UP) != value:
            return "setl_list.device_list.amount: price × cnt is not the amount"
        total += value
    if total != amount(record["medfee_sumamt"]):
        return f"setl_list.medfee_sumamt: not the sum of the items ({total})"
    if amount(record["pool_amt"]) + amount(record["self_amt"]) != amount(record["medfee_sumamt"]):
        return "setl_list.pool_amt: pool_amt + self_amt is not medfee_sumamt"
    return None


def device_check_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    """GYD051 for the device settlement's person (scene 3): passed → the settlement may go; not passed → refused."""
    device = state.device
    assert device is not None and device.settlement is not None
    part = device.settlement
    record = part.record
    current = open_part(_device_settlement, part.event_id)
    body = {"data": {"certno": record["certno"], "psn_no": record.get("psn_no"), "org_code": record["org_code"],
                     "mdtrt_admdvs": record.get("mdtrt_admdvs") or cfg.admdvs,
                     "check_date": str(record["setl_time"])[:10], "scene": "3"}}

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        p = current(s)
        if p is None:
            return
        if str(reply.output.get("passed")) == "1":
            assert s.device is not None
            s.device.verified = True
            return
        refuse(fx, p, Refusal("rejected", f"GYD051: {reply.output.get('msg') or 'filing not verified'}", CHECK_INFNO),
               request="device_settlement", infno=DEVICE_INFNO)

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            refuse(fx, p, refusal, request="device_settlement", infno=DEVICE_INFNO)

    return Call(f"{CHECK_INFNO}:{stable_id(part.event_id)[:16]}", CHECK_INFNO, body, on_ok=on_ok,
                on_refused=on_refused)


def device_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    device = state.device
    assert device is not None and device.settlement is not None
    part = device.settlement
    record = {k: v for k, v in part.record.items() if k != "mdtrt_admdvs"}

    def took(s: WorkInjuryState, p: Part, reply: Reply) -> dict[str, str]:
        assert s.device is not None
        s.device.settled = True
        return {"setl_no": str(record["setl_no"])}

    return record_call(cfg, part, _device_settlement, infno=DEVICE_INFNO, node="setl_list", record=record,
                       request="device_settlement", took=took)
