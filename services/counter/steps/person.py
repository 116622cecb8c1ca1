"""1101 人员信息获取 for a filing: the person's psn_no, the insurance the filing is under and its 参保地. Only reads:
a lost answer is sent again (catalog). A refusal rejects the filing with the platform's reason."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.counter.state import Failure, FilingState, Person
from yibao.counter.steps.common import compact, reject_filing

__all__ = ["person_call", "choose"]


def choose(output: dict[str, Any], insutype: str | None) -> Person | Failure:
    base = output.get("baseinfo") if isinstance(output.get("baseinfo"), dict) else {}
    rows = [r for r in (output.get("insuinfo") or []) if isinstance(r, dict)]
    psn_no = str(base.get("psn_no") or "")
    if not psn_no or not rows:
        return Failure(reason_code="bad_platform_answer", step_infno="1101",
                       reason="1101 answer carries no psn_no or no insuinfo")
    row = next((r for r in rows if insutype and str(r.get("insutype")) == insutype), None)
    if row is None and insutype:
        return Failure(reason_code="not_insured", step_infno="1101",
                       reason=f"insutype: the person is not insured under {insutype}")
    row = row or rows[0]
    return Person(psn_no=psn_no, insutype=str(row.get("insutype") or ""),
                  insuplc_admdvs=str(row.get("insuplc_admdvs") or ""))


def person_call(state: FilingState) -> Call[FilingState]:
    event = state.event()
    body = {"data": compact({"mdtrt_cert_type": event.mdtrt_cert_type,
                             "mdtrt_cert_no": event.mdtrt_cert_no or event.certno, "card_sn": event.card_sn,
                             "psn_cert_type": event.psn_cert_type if event.certno else None,
                             "certno": event.certno})}

    def on_ok(s: FilingState, reply: Reply, fx: Effects) -> None:
        if s.status != "pending" or s.person is not None:
            return
        chosen = choose(reply.output, event.insutype)
        if isinstance(chosen, Failure):
            reject_filing(s, fx, chosen, reply.msgid)
        else:
            s.person = chosen

    def on_refused(s: FilingState, refusal: Refusal, fx: Effects) -> None:
        if s.status == "pending":
            reject_filing(s, fx, Failure(reason_code=refusal.reason_code, reason=refusal.text, step_infno="1101"))

    return Call("1101", "1101", body, on_ok=on_ok, on_refused=on_refused)
