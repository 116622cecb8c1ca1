"""GYU009 协议机构信息上传: a new or changed, approved agreement institution. Only its latest version is sent (an older
one still waiting is superseded)."""

from __future__ import annotations

from yibao.chains.model import Call
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import Part, WorkInjuryState
from yibao.workinjury_sync.steps.common import record_call

__all__ = ["INFNO", "institution_call"]

INFNO = "GYU009"


def institution_call(cfg: ChainConfig, state: WorkInjuryState, part: Part) -> Call[WorkInjuryState]:
    return record_call(cfg, part, lambda s: s.org.parts if s.org else (), infno=INFNO, node="org_list",
                       record=part.record, request="institution",
                       took=lambda s, p, reply: {"org_code": str(p.record["org_code"])})
