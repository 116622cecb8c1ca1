"""GYU101 入院信息上传: a stay's admission. Checked first (the catalog: 是否必填, 参数长度, code lists); the platform
checks the rest (an approved filing covering the admission, a valid agreement institution, 住院号 unique). A lost
answer is looked up with GYD053 (a repeat would be refused as a duplicate 住院号) and the answer adopted."""

from __future__ import annotations

from yibao.chains.model import Call, Change, Effects, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, WorkInjuryState
from yibao.workinjury_sync.steps.common import check_record, invalid, record_call, results_of

__all__ = ["INFNO", "check_admission", "admission_call"]

INFNO = "GYU101"
REQUEST = "admission"


def check_admission(cfg: ChainConfig, state: WorkInjuryState) -> Change[WorkInjuryState] | None:
    """The admission as HIS sent it, against the catalog; None when it passes."""
    stay = state.stay
    assert stay is not None and stay.admission is not None
    problem = check_record(cfg, INFNO, "adm_list", stay.admission.record)
    if problem is None:
        return None
    event_id = stay.admission.event_id

    def apply(s: WorkInjuryState, fx: Effects) -> None:
        part = s.stay.admission if s.stay is not None else None
        if part is not None and part.event_id == event_id and part.open:
            invalid(fx, part, problem, request=REQUEST, infno=INFNO)

    return Change(f"invalid:{stable_id(event_id)[:16]}", apply)


def admission_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    stay = state.stay
    assert stay is not None and stay.admission is not None
    part = stay.admission

    def took(s: WorkInjuryState, p: Part, reply: Reply) -> dict[str, str]:
        assert s.stay is not None
        s.stay.admitted, s.stay.admissions = True, s.stay.admissions + 1
        p.platform_no = results_of(reply.output).get(str(p.record.get("ipt_no"))) or None
        return {"ipt_no": str(p.record.get("ipt_no")), **({"plat_no": p.platform_no} if p.platform_no else {})}

    return record_call(cfg, part, lambda s: (s.stay.admission,) if s.stay is not None else (), infno=INFNO,
                       node="adm_list", record=part.record, request=REQUEST, took=took)
