"""退费: 2208 门诊结算撤销 / 2305 住院结算撤销 of a settlement this visit holds, and 5203 confirming a cancellation
adopted after a lost answer.

Lost answer (catalog): 5203 of the settlement — cancelled (vali_flag 0, cancel_setl_id) means the cancellation took
effect; then 5203 of the cancellation confirms that its medins_setl_id is our msgid and reads its amounts. No trace:
冲正 2601 of the lost msgid, then sent again. The cancelled amounts must be the settlement's, negated; otherwise the
visit is held for a person. Outpatient: the settled batch's details are revoked next (2205), as the rollback order
wants; inpatient: the platform holds the lines again, unsettled.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Lookup, Refusal, Reply
from yibao.core.results import SettlementSplit
from yibao.settlement import hemodialysis
from yibao.settlement.results import count_final, emit_fact, emit_result, negated, setl_time_of, split_of
from yibao.settlement.state import Parked, RefundRequest, SettlementState, Withdrawal
from yibao.settlement.steps.common import find_request, reject_refused, who

__all__ = ["cancel_call", "confirm_cancellation_call"]


def cancel_call(st: SettlementState, req: RefundRequest) -> Call[SettlementState]:
    infno = "2208" if st.kind == "outpatient" else "2305"
    target = req.target_setl_id or ""

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        r = find_request(s, "refund", req.id, req.message_id)
        if r is None or r.phase != "cancelling":
            return
        setlinfo = dict(reply.output.get("setlinfo") or {})
        if "medfee_sumamt" not in setlinfo:  # adopted from 5203: the cancellation's setl_id only
            r.phase, r.cancel_setl_id, r.cancel_msgid = "confirming_refund", _text(setlinfo.get("setl_id")), reply.msgid
        else:
            _refunded(fx, s, r, setlinfo, reply.msgid, infno)

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        r = find_request(s, "refund", req.id, req.message_id)
        if r is not None and r.phase == "cancelling":
            reject_refused(fx, s, r, infno, refusal)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        info = output.get("setlinfo") or {}
        if str(info.get("vali_flag") or "") == "0" and info.get("cancel_setl_id"):
            return {"setlinfo": {"setl_id": str(info["cancel_setl_id"])}}
        return None

    return Call(f"{infno}:{req.tag}", infno, {"data": {"setl_id": target, **who(st)}}, on_ok=on_ok,
                on_refused=on_refused, lookup=Lookup("5203", {"data": {**who(st), "setl_id": target}}, found=found),
                psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def confirm_cancellation_call(st: SettlementState, req: RefundRequest) -> Call[SettlementState]:
    """5203 of a cancellation adopted from 5203 of its settlement: ours (medins_setl_id), and its amounts."""
    infno = "2208" if st.kind == "outpatient" else "2305"

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        r = find_request(s, "refund", req.id, req.message_id)
        if r is None or r.phase != "confirming_refund":
            return
        setlinfo = dict(reply.output.get("setlinfo") or {})
        if str(setlinfo.get("refd_setl_flag") or "") != "1":
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"5203: {r.cancel_setl_id} is not a cancellation (refund {r.id})")
        else:
            _refunded(fx, s, r, setlinfo, r.cancel_msgid or "", infno)

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        r = find_request(s, "refund", req.id, req.message_id)
        if r is not None and r.phase == "confirming_refund":
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"5203 could not confirm cancellation {r.cancel_setl_id} (refund {r.id}): "
                                   f"{refusal.text}")

    return Call(f"5203:{req.tag}", "5203", {"data": {**who(st), "setl_id": req.cancel_setl_id}}, on_ok=on_ok,
                on_refused=on_refused, psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def _refunded(fx: Effects, s: SettlementState, r: RefundRequest, setlinfo: dict[str, Any], msgid: str,
              infno: str) -> None:
    settlement = s.settlement(r.target_setl_id or "")
    assert settlement is not None
    split = negated(split_of(setlinfo)) if "medfee_sumamt" in setlinfo else negated(settlement.split)
    expected = settlement.split.get("medfee_sumamt")
    cancel_setl_id = _text(setlinfo.get("setl_id")) or r.cancel_setl_id
    problem = None
    if expected is not None and split.get("medfee_sumamt") != -expected:
        problem = f"cancelled medfee_sumamt {split.get('medfee_sumamt')} is not −{expected}"
    elif not cancel_setl_id:
        problem = "setlinfo.setl_id (the cancellation's) missing"
    medins = setlinfo.get("medins_setl_id")
    if not problem and medins and str(medins) != msgid:
        problem = f"medins_setl_id {medins} is not our msgid {msgid}"
    if problem:
        s.hold = Parked(reason_code="inconsistent_split",
                        reason=f"{infno} cancellation of {settlement.setl_id} (refund {r.id}): {problem}")
        r.cancel_setl_id, r.cancel_msgid = cancel_setl_id, msgid
        if r.phase == "cancelling":
            r.phase = "confirming_refund"
        return
    settlement.status, settlement.cancel_setl_id = "cancelled", cancel_setl_id
    r.cancel_setl_id, r.cancel_msgid = cancel_setl_id, msgid
    fields: dict[str, Any] = dict(
        step_infno=infno, msgid=msgid, med_type=settlement.med_type, setl_id=cancel_setl_id,
        orig_setl_id=settlement.setl_id, setl_time=setl_time_of(setlinfo) or settlement.setl_time,
        clr_type=settlement.clr_type or _text(setlinfo.get("clr_type")),
        clr_way=settlement.clr_way or _text(setlinfo.get("clr_way")),
        clr_optins=settlement.clr_optins or _text(setlinfo.get("clr_optins")), refd_setl_flag="1",
        mid_setl_flag=settlement.mid_setl_flag if s.kind == "inpatient" else None, split=SettlementSplit(**split))
    if settlement.sheet_of:  # 血透: told to the inpatient account, like the settlement
        emit_result(fx, s, kind="refunded", request_id=r.id, id_parts=(r.message_id,),
                    his_visit_id=settlement.sheet_of, visit_kind="inpatient",
                    detail=hemodialysis.sheet_detail(fx.key, settlement.sheet_of, r.id), **fields)
    else:
        emit_result(fx, s, kind="refunded", request_id=r.id, id_parts=(r.message_id,), **fields)
    emit_fact(fx, kind="settlement_cancelled", request_id=r.id, id_parts=(settlement.setl_id,),
              setl_id=settlement.setl_id, mid_setl_flag=settlement.mid_setl_flag)
    count_final(fx, r, "refunded")
    if s.kind == "outpatient":  # then the settled batch's details (2205), as the rollback order wants
        r.phase = "withdrawing"
        s.withdrawal = Withdrawal(no=s.next_no(), infno="2205", purpose="refund",
                                  code=settlement.chrg_bchno or "0000", sns=list(settlement.sns), request_id=r.id)
    else:  # the platform holds the lines again, unsettled
        s.lines.set_status(settlement.sns, "uploaded", setl_id=None, only_from=("settled",))
        r.phase = "refunded"


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
