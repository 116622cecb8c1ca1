"""Filings: GYU001 备案审核结果信息上传 (an application downloaded with GYD001, audited in HIS), GYU006 本地异地就医备案
信息上传 (a filing applied through the province's own channel, after its attachments: GYU002) and GYU007 备案信息更新.

Checked here before sending, with the field named: an audit that rejects needs its opinion (audit_opinion); only an
application from the national public service platform is audited here (apply_chan 1) and only once; a local filing
must be approved (filing_status 1) and come with its attachments; an update never turns a filing that is 无效 back
into 有效 (filing_status). The rest (one valid filing per person and institution type …) is the platform's."""

from __future__ import annotations

from yibao.chains.model import Call, Reply
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.state import FilingCase, Part, WorkInjuryState
from yibao.workinjury_sync.steps.common import check_record, record_call, results_of

__all__ = ["audit_problem", "audit_call", "filing_problem", "filing_call", "update_problem", "update_call"]


def audit_problem(cfg: ChainConfig, filing: FilingCase, part: Part) -> str | None:
    problem = check_record(cfg, "GYU001", "audit_list", part.record)
    if problem is not None:
        return problem
    if part.record.get("audit_result") == "2" and not str(part.record.get("audit_opinion") or "").strip():
        return "audit_list.audit_opinion: required when the audit rejects the application (audit_result 2)"
    if filing.apply_chan is not None and filing.apply_chan != "1":
        return "audit_list.apply_no: only applications of the national public service platform are audited here"
    return None


def audit_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    filing = state.filing
    assert filing is not None and filing.audit is not None
    part = filing.audit

    def took(s: WorkInjuryState, p: Part, reply: Reply) -> dict[str, str]:
        assert s.filing is not None
        filing_no = results_of(reply.output).get(str(p.record["apply_no"])) or None
        p.platform_no = filing_no
        if p.record.get("audit_result") == "1":
            s.filing.filing_no, s.filing.status = filing_no, "1"
        return {"apply_no": str(p.record["apply_no"]), **({"filing_no": filing_no} if filing_no else {})}

    return record_call(cfg, part, lambda s: (s.filing.audit,) if s.filing is not None else (), infno="GYU001",
                       node="audit_list", record=part.record, request="filing_audit", took=took)


def _filing_record(filing: FilingCase, part: Part) -> dict:
    record = {k: v for k, v in part.record.items() if k != "atta_nos"}
    record["atta_list"] = [{"atta_id": filing.attachments[n].atta_id} for n in part.record.get("atta_nos", [])
                           if n in filing.attachments and filing.attachments[n].atta_id]
    return record


def filing_problem(cfg: ChainConfig, filing: FilingCase, part: Part) -> str | None:
    if part.record.get("filing_status") != "1":
        return "filing_list.filing_status: only an approved filing (1 有效) is uploaded"
    if not part.record.get("atta_nos"):
        return "filing_list.atta_list: a local filing needs its attachments (工伤认定书)"
    record = _filing_record(filing, part)
    record["atta_list"] = record["atta_list"] or [{"atta_id": "-"}]  # ids come from GYU002; the rest is checked now
    return check_record(cfg, "GYU006", "filing_list", record)


def filing_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    filing = state.filing
    assert filing is not None and filing.filing is not None
    part = filing.filing
    record = _filing_record(filing, part)

    def took(s: WorkInjuryState, p: Part, reply: Reply) -> dict[str, str]:
        assert s.filing is not None
        s.filing.status = "1"
        return {"filing_no": str(record["filing_no"])}

    return record_call(cfg, part, lambda s: (s.filing.filing,) if s.filing is not None else (), infno="GYU006",
                       node="filing_list", record=record, request="filing", took=took)


def update_problem(cfg: ChainConfig, filing: FilingCase, part: Part) -> str | None:
    problem = check_record(cfg, "GYU007", "filing_list", part.record)
    if problem is not None:
        return problem
    if filing.status == "0" and part.record.get("filing_status") == "1":
        return "filing_list.filing_status: a filing that is 无效 (0) never becomes 有效 (1) again"
    return None


def update_call(cfg: ChainConfig, state: WorkInjuryState, part: Part) -> Call[WorkInjuryState]:
    def took(s: WorkInjuryState, p: Part, reply: Reply) -> dict[str, str]:
        assert s.filing is not None
        s.filing.status = str(p.record.get("filing_status"))
        return {"filing_no": str(p.record["filing_no"])}

    return record_call(cfg, part, lambda s: s.filing.updates if s.filing is not None else (), infno="GYU007",
                       node="filing_list", record=part.record, request="filing_update", took=took)
