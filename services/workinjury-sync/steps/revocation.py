"""GYR001-GYR004: revocations of a stay, in the order the platform needs them.

HIS names what to take back; the bridge sends what must go first:

* ``details`` — GYR001 费用明细信息撤销 (the stay must not be settled; revoke the settlement first);
* ``admission`` — GYR001 first when lines are on the platform, then GYR002 入院登记信息撤销 (not settled);
* ``settlement`` — GYR004 for each deduction still on it, then GYR003 结算信息撤销 (which takes the admission and
  the lines with it);
* ``deduction`` — GYR004 费用审核扣款信息撤销.

A request that cannot apply (nothing on the platform to revoke, or a step the order forbids) is refused here with
its reason. Each call's lost answer is looked up with GYD053. After a revocation HIS may send corrected records (a
new admission, new lines, a new settlement) for the same stay."""

from __future__ import annotations

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.results import count_records, emit_result
from yibao.workinjury_sync.state import StayCase, StayRequest, WorkInjuryState
from yibao.workinjury_sync.steps.common import lookup, open_part, refuse

__all__ = ["plan", "revoke_call", "REQUEST"]

REQUEST = "revocation"


def plan(stay: StayCase, request: StayRequest) -> tuple[str, str | None] | str:
    """The next call of a revocation — (infno, the deduction it revokes) — or why it cannot apply."""
    target = request.target
    if target == "deduction":
        no = str(request.record.get("deduct_no") or "")
        if no not in stay.deductions:
            return f"nothing to revoke: deduction {no or '(no deduct_no given)'} is not on the platform"
        return "GYR004", no
    if target == "settlement":
        if stay.settled is None:
            return "nothing to revoke: the stay has no settlement on the platform"
        if stay.deductions:
            return "GYR004", next(iter(stay.deductions))
        return "GYR003", None
    if stay.settled is not None:
        return f"out of order: the stay is settled on the platform; revoke the settlement first (target settlement)"
    if target == "details":
        if not stay.uploaded_lines():
            return "nothing to revoke: no fee lines of the stay are on the platform"
        return "GYR001", None
    if not stay.admitted:
        return "nothing to revoke: the stay has no admission on the platform"
    if stay.uploaded_lines():
        return "GYR001", None
    return "GYR002", None


def _data(stay: StayCase, request: StayRequest, infno: str, deduct_no: str | None) -> dict:
    adm = stay.admission.record if stay.admission is not None else {}
    data = {"org_code": adm.get("org_code") or stay.org_code, "psn_no": adm.get("psn_no"),
            "revoke_reason": request.record.get("reason")}
    if infno in ("GYR001", "GYR002"):
        data["ipt_no"] = adm.get("ipt_no")
    elif infno == "GYR003":
        data["setl_no"] = stay.settled.record.get("setl_no") if stay.settled is not None else None
    else:
        data["deduct_no"] = deduct_no
    return {"data": {k: v for k, v in data.items() if v is not None}}


def revoke_call(cfg: ChainConfig, state: WorkInjuryState, request: StayRequest, infno: str,
                deduct_no: str | None) -> Call[WorkInjuryState]:
    stay = state.stay
    assert stay is not None
    event_id = request.event_id
    tag = stable_id(event_id, infno, deduct_no)[:16]
    current = open_part(lambda s: s.stay.requests if s.stay is not None else (), event_id)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        r = current(s)
        st = s.stay
        if r is None or st is None:
            return
        revoked: dict[str, object] = {}
        if infno == "GYR004" and deduct_no in st.deductions:
            st.deductions.pop(deduct_no)
            revoked["deduction"] = deduct_no
        if infno in ("GYR001", "GYR003"):
            lines = st.uploaded_lines()
            for line in lines:
                line.status = "revoked"
            count_records(fx, "GYU102", "revoked", len(lines))
            revoked["lines"] = len(lines)
        if infno in ("GYR002", "GYR003") and st.admission is not None:
            st.admission.status, st.admitted = "revoked", False
            revoked["admission"] = str(st.admission.record.get("ipt_no"))
        if infno == "GYR003" and st.settled is not None:
            revoked["settlement"] = str(st.settled.record.get("setl_no"))
            st.settled.status, st.settled = "revoked", None
        r.step = f"{r.step or ''}{infno} "
        if _finished(st, r):
            r.status, r.trans_no, r.done_at = "done", reply.msgid, fx.now
            emit_result(fx, request=REQUEST, kind="revoked", ident=(REQUEST, event_id), part=r, infno=infno,
                        trans_no=reply.msgid, detail={"target": r.target, "steps": r.step.split(), **revoked})

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        r = current(s)
        if r is not None:
            refuse(fx, r, refusal, request=REQUEST, infno=infno)

    return Call(f"{infno}:{tag}", infno, _data(stay, request, infno, deduct_no), on_ok=on_ok, on_refused=on_refused,
                lookup=lookup(infno))


def _finished(stay: StayCase, request: StayRequest) -> bool:
    """Whether what HIS asked to revoke is gone from the platform."""
    if request.target == "deduction":
        return str(request.record.get("deduct_no")) not in stay.deductions
    if request.target == "settlement":
        return stay.settled is None
    if request.target == "details":
        return not stay.uploaded_lines()
    return not stay.admitted
