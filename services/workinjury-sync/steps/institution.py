"""GYU009 协议机构信息上传: a new or changed, approved agreement institution. Only its latest version is sent (an older
one still waiting is superseded)."""

from __future__ import annotations

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, WorkInjuryState
from yibao.workinjury_sync.steps.common import accept, lookup, refuse

__all__ = ["INFNO", "institution_call"]

INFNO = "GYU009"


def institution_call(cfg: ChainConfig, state: WorkInjuryState, part: Part) -> Call[WorkInjuryState]:
    event_id = part.event_id

    def current(s: WorkInjuryState) -> Part | None:
        return next((p for p in s.org.parts if p.event_id == event_id and p.open), None) if s.org else None

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            accept(fx, cfg, p, request="institution", infno=INFNO, trans_no=reply.msgid,
                   platform_ids={"org_code": str(p.record["org_code"])})

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            refuse(fx, p, refusal, request="institution", infno=INFNO)

    return Call(f"{INFNO}:{stable_id(event_id)[:16]}", INFNO, {"org_list": [part.record]}, on_ok=on_ok,
                on_refused=on_refused, lookup=lookup(INFNO))
