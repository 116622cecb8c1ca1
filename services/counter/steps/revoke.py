"""撤销: 2502 转院备案撤销, 2504 人员慢特病备案撤销, 2506 人员定点备案撤销 — by the filing's serial. A lost answer is
looked up with the filing's query (5304 / 5301 / 5302): the filing no longer listed as valid means the revocation
took effect; still valid: sent again. HIS gets ``cancelled`` (target filing) or ``rejected`` with the reason."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.counter.state import FilingState, Revocation
from yibao.counter.steps.common import answer_revocation, compact
from yibao.counter.steps.filing import _candidates, lookup_of
from yibao.hisevents.models import FILING_INFNOS

__all__ = ["revoke_call"]


def revoke_call(state: FilingState, revocation: Revocation) -> Call[FilingState]:
    event, person = state.event(), state.person
    assert person is not None and state.serial is not None
    infno = FILING_INFNOS[event.filing][1]
    serial, rid = state.serial, revocation.id
    body = {"data": compact({"trt_dcla_detl_sn": serial, "psn_no": person.psn_no,
                             "memo": revocation.parsed().memo})}

    def on_ok(s: FilingState, reply: Reply, fx: Effects) -> None:
        r = s.revocation(rid)
        if r is not None and r.phase == "new":
            answer_revocation(s, fx, r, done=True, step_infno=infno, msgid=reply.msgid)

    def on_refused(s: FilingState, refusal: Refusal, fx: Effects) -> None:
        r = s.revocation(rid)
        if r is not None and r.phase == "new":
            answer_revocation(s, fx, r, done=False, reason_code="platform_rejected", reason=refusal.text,
                              step_infno=infno)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        still = [row for row in _candidates(event, output) if str(row.get("vali_flag") or "1") != "0"
                 and str(row.get("trt_dcla_detl_sn") or serial) == serial]
        return None if still else {}

    return Call(f"{infno}:{revocation.tag}", infno, body, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_of(event, infno, person.psn_no, found), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)
