"""结算: 2206 门诊预结算 → 2207 门诊结算, 2303 住院预结算 → 2304 住院结算, and 5203 confirming a settlement adopted
after a lost answer.

* **pre-settlement** (2206/2303) once the uploaded lines add up to the HIS total: its split must add up too (else
  the visit is held for a person); HIS gets ``presettled``. Lost answer (catalog): sent again — it books nothing.
* **settlement** (2207/2304) with the pre-settlement's amounts. Lost answer (catalog): 5204 — the request's lines
  settled under one setl_id — then 5203 confirms that its medins_setl_id is our msgid and reads the split; no trace:
  冲正 2601 of the lost msgid, then sent again. A settlement is never resent blindly.
* Before anyone is told, the split is checked (fund + personal = total; account + cash = personal; the total is the
  settled lines'); one that does not add up is never passed on: the visit is held for a person. Settled: the lines
  are marked with the setl_id, HIS gets ``settled`` (a 血透 sheet's result goes to the inpatient account), and
  registration the fact.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core import money
from yibao.core.privacy import is_personal_key
from yibao.core.results import SettlementSplit
from yibao.settlement import hemodialysis
from yibao.settlement.config import ChainConfig
from yibao.settlement.lines import FeeLine, LineBook
from yibao.settlement.results import (
    count_final,
    emit_fact,
    emit_result,
    setl_time_of,
    split_of,
    split_problem,
)
from yibao.settlement.state import Parked, Settlement, SettlementState, SettleRequest
from yibao.settlement.steps.common import clean, detail_rows, find_request, lookup_5204, reject_refused, who
from yibao.settlement.steps.details import StayDischarged

__all__ = ["settle_data", "presettle_call", "settle_call", "confirm_settlement_call", "NotDischarged"]

#: whether a refusal's text says the stay is not discharged (the catalog's wording ``not_discharged``)
NotDischarged = Callable[[str], bool]


def settle_data(st: SettlementState, req: SettleRequest, total: Decimal, *, chrg_bchno: str | None
                ) -> dict[str, Any]:
    """The ``data`` of 2206/2303 (and the base of 2207/2304)."""
    p = st.person
    cert_type, cert_no = ((req.mdtrt_cert_type, req.mdtrt_cert_no) if req.mdtrt_cert_no
                          else (p.mdtrt_cert_type, p.mdtrt_cert_no))
    data: dict[str, Any] = {
        "psn_no": p.psn_no, "mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no,
        "medfee_sumamt": money.money(total), "psn_setlway": req.psn_setlway, "mdtrt_id": p.mdtrt_id,
        "acct_used_flag": req.acct_used_flag, "insutype": req.insutype or p.insutype,
    }
    if st.kind == "outpatient":
        data.update(med_type=p.med_type, chrg_bchno=chrg_bchno)
    else:
        data.update(mid_setl_flag=req.mid_setl_flag, invono=req.invono)
    return clean(data)


def _bchno(cfg: ChainConfig, st: SettlementState) -> str | None:
    return st.chrg_bchno(cfg.outpatient_bchno_prefix) if st.kind == "outpatient" else None


# --- 2206 / 2303 ------------------------------------------------------------------------------------------------

def _await_discharge(fx: Effects, st: SettlementState, r: SettleRequest, refusal: Refusal,
                     not_discharged: NotDischarged | None, stay_discharged: StayDischarged | None) -> bool:
    """The platform refused an inpatient settlement because the stay's discharge is not what the request needs —
    not HIS's fault and not final, so HIS is not told it failed:

    * a final settlement, because the stay is not discharged there (registration is reopening it, or HIS cancelled
      the discharge): it waits for the discharge again (``not_discharged_at``) and is settled then; rejected
      ``not_ready`` only if none follows;
    * a 中途结算, because the stay is discharged there already: registration's 2402 overtook it before settlement
      heard of the discharge. It waits for registration's ``discharged`` (``discharged_on_platform_at``, unless that
      came meanwhile); then, as for a discharge settlement knew of, a 中途结算 HIS asked before the discharge has
      the stay reopened for it."""
    if refusal.reason_code != "rejected":
        return False
    if r.mid_setl_flag == "0" and not_discharged is not None and not_discharged(refusal.text):
        r.not_discharged_at, r.not_discharged_reason = fx.now, refusal.text[:300]
    elif r.mid_setl_flag == "1" and stay_discharged is not None and stay_discharged(refusal.text):
        if not st.discharged:
            r.discharged_on_platform_at, r.discharged_on_platform_reason = fx.now, refusal.text[:300]
    else:
        return False
    r.phase, r.sns, r.presettle = "waiting", [], None
    return True


def presettle_call(cfg: ChainConfig, st: SettlementState, req: SettleRequest, lines: list[FeeLine],
                   total: Decimal, *, not_discharged: NotDischarged | None = None,
                   stay_discharged: StayDischarged | None = None) -> Call[SettlementState]:
    infno = "2206" if st.kind == "outpatient" else "2303"
    data = settle_data(st, req, total, chrg_bchno=_bchno(cfg, st))
    sns = [line.feedetl_sn for line in lines]

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is None or r.phase != "waiting":
            return
        setlinfo = dict(reply.output.get("setlinfo") or {})
        split = split_of(setlinfo)
        problem = split_problem(split, total)
        if problem:
            s.hold = Parked(reason_code="inconsistent_split",
                            reason=f"{infno} answer for request {r.id} does not add up: {problem}")
            return
        r.phase, r.sns, r.presettle = "presettled", sns, _jsonable(setlinfo)
        emit_result(fx, s, kind="presettled", request_id=r.id, id_parts=(r.message_id,), step_infno=infno,
                    msgid=reply.msgid, med_type=s.person.med_type,
                    mid_setl_flag=r.mid_setl_flag if s.kind == "inpatient" else None, split=SettlementSplit(**split))

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is not None and r.phase == "waiting":
            if s.kind == "inpatient" and _await_discharge(fx, s, r, refusal, not_discharged, stay_discharged):
                return
            reject_refused(fx, s, r, infno, refusal)

    return Call(f"{infno}:{req.tag}", infno, {"data": data}, on_ok=on_ok, on_refused=on_refused,
                psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def _jsonable(setlinfo: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of a pre-settlement answer: its amounts and codes, never the person's data."""
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in setlinfo.items()
            if (isinstance(v, (str, int, Decimal)) or v is None) and not is_personal_key(k)}


# --- 2207 / 2304 ------------------------------------------------------------------------------------------------

def settle_call(cfg: ChainConfig, st: SettlementState, req: SettleRequest, *,
                not_discharged: NotDischarged | None = None,
                stay_discharged: StayDischarged | None = None) -> Call[SettlementState]:
    infno = "2207" if st.kind == "outpatient" else "2304"
    pre = req.presettle or {}
    total = money.money(Decimal(str(pre.get("medfee_sumamt", req.medfee_sumamt))))
    data = settle_data(st, req, total, chrg_bchno=_bchno(cfg, st))
    data.update({k: money.money(Decimal(str(pre.get(k) or "0")))
                 for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")})
    if st.kind == "outpatient" and req.invono:
        data["invono"] = req.invono
    sns = set(req.sns)

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is None or r.phase != "presettled":
            return
        setlinfo = dict(reply.output.get("setlinfo") or {})
        if "medfee_sumamt" not in setlinfo:  # adopted from 5204: the setl_id only; 5203 reads the rest
            r.phase, r.setl_id, r.settle_msgid = "confirming", _text(setlinfo.get("setl_id")), reply.msgid
        else:
            _settled(cfg, fx, s, r, setlinfo, reply.msgid, infno)

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is not None and r.phase == "presettled":
            if s.kind == "inpatient" and _await_discharge(fx, s, r, refusal, not_discharged, stay_discharged):
                return
            reject_refused(fx, s, r, infno, refusal)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        rows = detail_rows(output)
        setl_ids = {str(r.get("setl_id") or "") for r in rows if str(r.get("feedetl_sn")) in sns}
        held = {str(r.get("feedetl_sn")) for r in rows}
        if sns and sns <= held and len(setl_ids) == 1 and "" not in setl_ids:
            return {"setlinfo": {"setl_id": setl_ids.pop()}}
        return None

    return Call(f"{infno}:{req.tag}", infno, {"data": data}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_5204(st, found), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def confirm_settlement_call(cfg: ChainConfig, st: SettlementState, req: SettleRequest) -> Call[SettlementState]:
    """5203 of a settlement adopted from 5204: is it ours (medins_setl_id), and what is its split?"""
    infno = "2207" if st.kind == "outpatient" else "2304"

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is None or r.phase != "confirming":
            return
        setlinfo = dict(reply.output.get("setlinfo") or {})
        if str(setlinfo.get("refd_setl_flag") or "0") != "0" or str(setlinfo.get("vali_flag") or "1") != "1":
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"5203: settlement {r.setl_id} of request {r.id} is not an active settlement")
        else:
            _settled(cfg, fx, s, r, setlinfo, r.settle_msgid or "", infno)

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        r = find_request(s, "settle", req.id, req.message_id)
        if r is not None and r.phase == "confirming":
            s.hold = Parked(reason_code="unknown_outcome",
                            reason=f"5203 could not confirm settlement {r.setl_id} of request {r.id}: {refusal.text}")

    return Call(f"5203:{req.tag}", "5203", {"data": {**who(st), "setl_id": req.setl_id}}, on_ok=on_ok,
                on_refused=on_refused, psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def _settled(cfg: ChainConfig, fx: Effects, s: SettlementState, r: SettleRequest, setlinfo: dict[str, Any],
             msgid: str, infno: str) -> None:
    """Book a settlement the platform made (answered, or confirmed by 5203) and tell HIS and registration."""
    split = split_of(setlinfo)
    book = LineBook(s.lines.all(), merged=s.merged)
    settled_total = money.money(sum((book.net_amount(book.by_sn[sn]) for sn in r.sns if sn in book.by_sn),
                                    Decimal("0")))
    problem = split_problem(split, settled_total)
    medins = setlinfo.get("medins_setl_id")
    if not problem and medins and str(medins) != msgid:
        problem = f"medins_setl_id {medins} is not our msgid {msgid}"
    setl_id = str(setlinfo.get("setl_id") or r.setl_id or "")
    if not setl_id:
        problem = problem or "setlinfo.setl_id missing"
    if problem:
        s.hold = Parked(reason_code="inconsistent_split",
                        reason=f"{infno} settlement {setl_id or '?'} of request {r.id}: {problem}; the platform holds "
                               "it — a person must decide (never guessed)")
        r.setl_id, r.settle_msgid = setl_id or r.setl_id, msgid
        if r.phase == "presettled":
            r.phase = "confirming"
        return
    p = s.person
    s.lines.set_status(r.sns, "settled", setl_id=setl_id, only_from=("uploaded",))
    settlement = Settlement(
        setl_id=setl_id, request_id=r.id, infno=infno, msgid=msgid,
        mid_setl_flag=r.mid_setl_flag if s.kind == "inpatient" else "0", setl_time=setl_time_of(setlinfo),
        med_type=str(setlinfo.get("med_type") or p.med_type or "") or None,
        clr_type=_text(setlinfo.get("clr_type")), clr_way=_text(setlinfo.get("clr_way")),
        clr_optins=_text(setlinfo.get("clr_optins")), split=split, chrg_bchno=_bchno(cfg, s), sns=list(r.sns),
        sheet_of=r.sheet_of)
    s.settlements.append(settlement)
    if s.kind == "outpatient":
        s.round += 1
    r.phase, r.setl_id, r.settle_msgid = "settled", setl_id, msgid
    fields: dict[str, Any] = dict(
        step_infno=infno, msgid=msgid, med_type=settlement.med_type, setl_id=setl_id, setl_time=settlement.setl_time,
        clr_type=settlement.clr_type, clr_way=settlement.clr_way, clr_optins=settlement.clr_optins,
        refd_setl_flag="0", mid_setl_flag=settlement.mid_setl_flag if s.kind == "inpatient" else None,
        split=SettlementSplit(**split))
    if r.sheet_of:  # 血透: the answer belongs to the inpatient account, where HIS clears and invoices
        emit_result(fx, s, kind="settled", request_id=r.id, id_parts=(r.message_id,), his_visit_id=r.sheet_of,
                    visit_kind="inpatient", detail=hemodialysis.sheet_detail(fx.key, r.sheet_of, r.id), **fields)
    else:
        emit_result(fx, s, kind="settled", request_id=r.id, id_parts=(r.message_id,), **fields)
    emit_fact(fx, kind="settled", request_id=r.id, id_parts=(setl_id,), setl_id=setl_id,
              mid_setl_flag=settlement.mid_setl_flag)
    count_final(fx, r, "settled")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
