"""备案: 2501/2501A 转院 (refmedin), 2503 人员慢特病, 2505 人员定点 (data) — what each sends, how a lost answer is
looked up (the catalog says with which query; the platform refuses a second valid filing of the same thing, so a
filing is never sent again blindly), and what HIS is told (``filed`` with the platform's serial).

Lookups — the valid filing of ours, adopted with its serial:

* 2501/2501A → 5304 over the transfer date: a valid row with our target institution and transfer date;
* 2503 → 5301: a valid row of our opsp_dise_code beginning on our begndate;
* 2505 → 5302 of our biz_appy_type: a row of our target institution and fix_srt_no.

No such row: the filing did not happen; it is sent again.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.model import Call, Effects, Lookup, Refusal, Reply
from yibao.core import clock
from yibao.counter.config import CounterConfig
from yibao.counter.results import emit_result
from yibao.counter.state import Failure, FilingState
from yibao.counter.steps.common import compact, reject_filing, rows
from yibao.hisevents.models import FilingRequested

__all__ = ["filing_call", "filing_input", "found_filing"]


def _day(value: _dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def filing_input(cfg: CounterConfig, event: FilingRequested, person: Any) -> tuple[str, dict[str, Any]]:
    """(infno, input) of the filing."""
    common = {"psn_no": person.psn_no, "tel": event.tel, "addr": event.addr, "begndate": _day(event.begndate),
              "enddate": _day(event.enddate)}
    if event.filing == "transfer":
        infno = cfg.transfer_infno
        body = {"refmedin": compact({
            **common, "insutype": person.insutype, "insu_optins": person.insuplc_admdvs,
            "diag_code": event.diag_code, "diag_name": event.diag_name, "dise_cond_dscr": event.dise_cond_dscr,
            "reflin_medins_no": event.reflin_medins_no, "reflin_medins_name": event.reflin_medins_name,
            "mdtrtarea_admdvs": event.mdtrtarea_admdvs, "hosp_agre_refl_flag": event.hosp_agre_refl_flag,
            "refl_type": event.refl_type, "refl_date": _day(event.refl_date), "refl_rea": event.refl_rea,
            "refl_opnn": event.refl_opnn,
            **({"refl_old_mdtrt_id": event.refl_old_mdtrt_id} if infno == "2501A" else {})})}
    elif event.filing == "chronic":
        infno = "2503"
        body = {"data": compact({
            **common, "insutype": person.insutype, "opsp_dise_code": event.opsp_dise_code,
            "opsp_dise_name": event.opsp_dise_name, "insu_optins": person.insuplc_admdvs,
            "ide_fixmedins_no": event.ide_fixmedins_no or cfg.fixmedins_code,
            "ide_fixmedins_name": event.ide_fixmedins_name or cfg.fixmedins_name,
            "hosp_ide_date": _day(event.hosp_ide_date), "diag_dr_codg": event.diag_dr_codg,
            "diag_dr_name": event.diag_dr_name})}
    else:
        infno = "2505"
        body = {"data": compact({
            **common, "biz_appy_type": event.biz_appy_type, "agnter_name": event.agnter_name,
            "agnter_cert_type": event.agnter_cert_type, "agnter_certno": event.agnter_certno,
            "agnter_tel": event.agnter_tel, "agnter_addr": event.agnter_addr, "agnter_rlts": event.agnter_rlts,
            "fix_srt_no": event.fix_srt_no, "fixmedins_code": event.fixmedins_code,
            "fixmedins_name": event.fixmedins_name, "memo": event.memo})}
    return infno, body


def found_filing(event: FilingRequested) -> Any:
    """The query's rows → the filing answer the lost call would have given (its serial), or None."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        for row in _candidates(event, output):
            if str(row.get("vali_flag") or "1") == "0":
                continue
            return {"result": {"trt_dcla_detl_sn": str(row.get("trt_dcla_detl_sn") or "")}}
        return None

    return found


def _candidates(event: FilingRequested, output: dict[str, Any]) -> list[dict[str, Any]]:
    if event.filing == "transfer":
        return [r for r in rows(output, "refmedin") if str(r.get("reflin_medins_no")) == event.reflin_medins_no
                and str(r.get("refl_date") or "")[:10] == _day(event.refl_date)]
    if event.filing == "chronic":
        return [r for r in rows(output, "feedetail") if str(r.get("opsp_dise_code")) == event.opsp_dise_code
                and str(r.get("begndate") or "")[:10] == _day(event.begndate)]
    return [r for r in rows(output, "psnfixmedin") if str(r.get("fixmedins_code")) == event.fixmedins_code
            and str(r.get("fix_srt_no")) == str(event.fix_srt_no)]


def lookup_of(event: FilingRequested, infno: str, psn_no: str, found: Any) -> Lookup:
    """The query that shows whether a filing (or its revocation) took effect."""
    if event.filing == "transfer":
        day = event.refl_date or clock.now().date()
        return Lookup("5304", {"data": {"psn_no": psn_no, "begntime": f"{day} 00:00:00",
                                        "endtime": f"{day} 23:59:59"}}, found=found)
    if event.filing == "chronic":
        return Lookup("5301", {"data": {"psn_no": psn_no}}, found=found)
    return Lookup("5302", {"data": {"psn_no": psn_no, "biz_appy_type": event.biz_appy_type}}, found=found)


def filing_call(cfg: CounterConfig, state: FilingState) -> Call[FilingState]:
    event, person = state.event(), state.person
    assert person is not None
    infno, body = filing_input(cfg, event, person)

    def on_ok(s: FilingState, reply: Reply, fx: Effects) -> None:
        if s.status != "pending":
            return
        result = reply.output.get("result") if isinstance(reply.output.get("result"), dict) else {}
        serial = str(result.get("trt_dcla_detl_sn") or "") or None
        if serial is None and not reply.adopted:
            reject_filing(s, fx, Failure(reason_code="bad_platform_answer", step_infno=infno,
                                         reason=f"{infno} answer carries no trt_dcla_detl_sn"), reply.msgid)
            return
        s.status, s.serial, s.infno, s.msgid = "filed", serial, infno, reply.msgid
        detail = {"filing": event.filing, "trt_dcla_detl_sn": serial, "adopted": reply.adopted or None,
                  **compact({"opsp_dise_code": event.opsp_dise_code, "opsp_dise_name": event.opsp_dise_name,
                             "reflin_medins_no": event.reflin_medins_no, "biz_appy_type": event.biz_appy_type})}
        emit_result(fx, "filed", (event.his_request_id,), request=event.filing, since=s.received_at,
                    his_request_id=event.his_request_id, step_infno=infno, msgid=reply.msgid, psn_no=person.psn_no,
                    insutype=person.insutype, insuplc_admdvs=person.insuplc_admdvs,
                    detail={k: v for k, v in detail.items() if v is not None})

    def on_refused(s: FilingState, refusal: Refusal, fx: Effects) -> None:
        if s.status == "pending":
            reject_filing(s, fx, Failure(reason_code="platform_rejected" if refusal.reason_code == "rejected"
                                         else "invalid_input", reason=refusal.text, step_infno=infno))

    return Call(infno, infno, body, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_of(event, infno, person.psn_no, found_filing(event)), psn_no=person.psn_no,
                insuplc_admdvs=person.insuplc_admdvs)
