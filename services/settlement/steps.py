"""The platform steps of the settlement chain: their inputs, what their answers change, and how a lost answer is
resolved (:data:`UNKNOWN_POLICY`).

Every ``on_ok`` / ``on_refused`` receives the visit *as reloaded* after the call (a message may have been absorbed
while the call was in flight): it applies relative changes — these lines uploaded, this request settled — to
that state, never a copy taken before the call. Each also moves the state on, so no step is chosen again after
it succeeded or was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from yibao.chains.model import QuerySpec, Step, UnknownPolicy, Visit
from yibao.core import money
from yibao.core.privacy import is_personal_key, mask_text
from yibao.core.results import SettlementSplit
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError
from yibao.settlement import hemodialysis
from yibao.settlement.lines import FeeLine, LineBook, load_lines, set_status
from yibao.settlement.results import Emitter, negated, setl_time_of, split_of, split_problem
from yibao.settlement.settings import SettlementSettings
from yibao.settlement.state import (
    Parked,
    RefundRequest,
    Settlement,
    SettlementState,
    SettleRequest,
    UnwindRequest,
    Upload,
    Withdrawal,
    load_state,
    save_state,
)

__all__ = [
    "UNKNOWN_POLICY",
    "NOTHING_TO_REVOKE_MARKERS",
    "StepContext",
    "upload_step",
    "withdrawal_step",
    "presettle_step",
    "settle_step",
    "confirm_settlement_step",
    "cancel_step",
    "confirm_cancellation_step",
    "upload_row",
    "settle_data",
    "refusal_text",
]

#: How a lost answer (timeout, reset, unreadable reply, a crash mid-call) of each step is resolved, and why.
#: The engine journals which resolution was taken (chain_calls.resolution) and counts it
#: (yibao_unknown_outcomes_total{infno, resolution}).
UNKNOWN_POLICY: dict[str, tuple[str, str]] = {
    "2204": ("query", "5204 lists the visit's details: adopt the batch when the platform holds it, else upload it "
                      "again (a blind resend would be refused as duplicate feedetl_sn)"),
    "2301": ("query", "as 2204: 5204, adopt the lines the platform holds, upload the rest"),
    "2205": ("query", "5204: the lines gone from the platform means the revocation happened; else send it again"),
    "2302": ("query", "as 2205"),
    "2206": ("retry", "a pre-settlement books nothing: send it again"),
    "2303": ("retry", "as 2206"),
    "2207": ("query_then_reverse", "5204 shows the lines settled under a setl_id → adopt it, then 5203 confirms that "
                                   "its medins_setl_id is our msgid and reads the split; no trace → 2601 the msgid "
                                   "(undoes it or finds nothing done), then send again. Never resent blindly"),
    "2304": ("query_then_reverse", "as 2207"),
    "2208": ("query_then_reverse", "5203 of the settlement: cancelled (vali_flag 0, cancel_setl_id) → adopt, then "
                                   "5203 of the cancellation confirms our msgid; else 2601 and send again"),
    "2305": ("query_then_reverse", "as 2208"),
    "5203": ("retry", "a query changes nothing"),
    "5204": ("retry", "a query changes nothing"),
}

#: 2205/2302 refusals meaning "the platform holds nothing of that to revoke" (so the lines are gone already)
NOTHING_TO_REVOKE_MARKERS = ("no unsettled fee details", "no such fee detail", "无可撤销", "无未结算", "明细不存在")


def refusal_text(exc: BusinessRejection | EnvelopeValidationError) -> str:
    """The platform's err_msg (or our validation message), masked."""
    text = exc.err_msg if isinstance(exc, BusinessRejection) else str(exc)
    return mask_text(text or type(exc).__name__)[:1000]


@dataclass(frozen=True)
class StepContext:
    settings: SettlementSettings
    emitter: Emitter
    service: str = "settlement"


def _policy(infno: str, query: Callable[[Visit, str], QuerySpec] | None = None) -> UnknownPolicy:
    kind = UNKNOWN_POLICY[infno][0]
    return UnknownPolicy(kind, query=query)  # type: ignore[arg-type]


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _who(st: SettlementState) -> dict[str, Any]:
    return {"psn_no": st.person.psn_no, "mdtrt_id": st.person.mdtrt_id}


def _query_5204(st: SettlementState, found: Callable[[dict[str, Any], str], dict[str, Any] | None]
                ) -> Callable[[Visit, str], QuerySpec]:
    data = _who(st)
    return lambda visit, omsgid: QuerySpec("5204", {"data": data}, found=found,
                                           insuplc_admdvs=st.person.insuplc_admdvs)


def _rows(output: dict[str, Any]) -> list[dict[str, Any]]:
    rows = output.get("feedetail") or []
    return [r for r in rows if isinstance(r, dict)]


# --- 2204 / 2301: details ---------------------------------------------------------------------------------------


def upload_row(kind: str, line: FeeLine, book: LineBook, st: SettlementState, chrg_bchno: str | None
               ) -> dict[str, Any]:
    """One feedetail row of 2204 (outpatient) or 2301 (inpatient), with the line's net quantity."""
    e = line.event
    cnt, amount = book.net(line)
    person = st.person
    common = {
        "feedetl_sn": e.feedetl_sn, "mdtrt_id": person.mdtrt_id, "psn_no": person.psn_no,
        "fee_ocur_time": e.fee_ocur_time, "med_list_codg": e.med_list_codg, "medins_list_codg": e.medins_list_codg,
        "det_item_fee_sumamt": amount, "cnt": cnt, "pric": e.pric,
        "bilg_dept_codg": e.bilg_dept_codg, "bilg_dept_name": e.bilg_dept_name, "bilg_dr_codg": e.bilg_dr_codg,
        "bilg_dr_name": e.bilg_dr_name, "acord_dept_codg": e.acord_dept_codg, "acord_dept_name": e.acord_dept_name,
        "orders_dr_code": e.orders_dr_code, "orders_dr_name": e.orders_dr_name,
        # 医院审批标志: 1 已审批, 2 转自费 (public 2204 field tables); a line the HIS did not flag is approved
        "hosp_appr_flag": e.hosp_appr_flag or "1",
        "tcmdrug_used_way": e.tcmdrug_used_way, "etip_flag": e.etip_flag, "etip_hosp_code": e.etip_hosp_code,
        "dscg_tkdrug_flag": e.dscg_tkdrug_flag, "matn_fee_flag": e.matn_fee_flag,
    }
    if kind == "outpatient":
        return _clean({**common, "chrg_bchno": chrg_bchno, "dise_codg": e.dise_codg, "rxno": e.rxno,
                       "rx_circ_flag": e.rx_circ_flag or "0", "sin_dos_dscr": e.sin_dos_dscr,
                       "used_frqu_dscr": e.used_frqu_dscr, "prd_days": e.prd_days, "medc_way_dscr": e.medc_way_dscr})
    return _clean({**common, "init_feedetl_sn": line.init_feedetl_sn, "drord_no": e.drord_no,
                   "med_type": e.med_type or person.med_type, "memo": e.memo})


def upload_step(ctx: StepContext, visit: Visit, st: SettlementState, book: LineBook, batch: Upload) -> Step:
    kind = st.kind
    infno = "2204" if kind == "outpatient" else "2301"
    rows = [upload_row(kind, book.by_sn[sn], book, st, batch.chrg_bchno) for sn in batch.sns if sn in book.by_sn]
    sns = list(batch.sns)

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        if s.upload is None or s.upload.no != batch.no:
            return
        set_status(conn, visit.key, sns, "uploaded", upload_msgid=msgid, only_from=("pending",))
        s.upload = None
        ctx.emitter.fact(visit, kind="details_uploaded", id_parts=(batch.no, msgid))
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        if s.upload is None or s.upload.no != batch.no:
            return
        reason = refusal_text(exc)
        for sn in sns:
            s.refused[sn] = reason[:300]
        s.upload = None
        ctx.emitter.his(visit, s, kind="rejected", request_id=None, id_parts=("details", batch.no),
                        step_infno=infno, reason_code="details_rejected",
                        reason=f"fee details refused ({len(sns)} lines): {reason}", detail={"feedetl_sns": sns})
        save_state(visit, s)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        held = {str(r.get("feedetl_sn")): r for r in _rows(output)}
        if sns and all(sn in held for sn in sns):
            return {"result": [held[sn] for sn in sns]}
        return None

    return Step(name=f"{infno}:b{batch.no}", infno=infno, input={"feedetail": rows}, on_ok=on_ok,
                on_refused=on_refused, unknown=_policy(infno, _query_5204(st, found)), psn_no=st.person.psn_no,
                insuplc_admdvs=st.person.insuplc_admdvs)


# --- 2205 / 2302: withdrawing details -------------------------------------------------------------------------


def _withdrawn(conn: Connection, visit: Visit, s: SettlementState, w: Withdrawal, emitter: Emitter) -> None:
    """What a done 2205/2302 means, by purpose."""
    all_lines = load_lines(conn, visit.key)
    if w.purpose in ("redo", "reorder"):  # revoked to be netted / put in HIS order, and uploaded again
        set_status(conn, visit.key, w.sns, "pending", upload_msgid=None, only_from=("uploaded",))
    else:
        set_status(conn, visit.key, w.sns, "withdrawn", setl_id=None, only_from=("uploaded", "settled"))
        released = [x for x in all_lines if x.feedetl_sn in set(w.sns)
                    or (w.purpose == "unwind" and x.status == "pending")]
        hemodialysis.release_sheet(conn, visit.key, released)
    request = next((r for r in s.requests if r.id == w.request_id and r.phase == "withdrawing"), None)
    if isinstance(request, RefundRequest):
        request.phase = "refunded"
    elif isinstance(request, UnwindRequest):
        s.closing = True
        emitter.unwind_answer(visit, request)
    s.withdrawal = None


def withdrawal_step(ctx: StepContext, visit: Visit, st: SettlementState, w: Withdrawal) -> Step:
    who = _who(st)
    data = {**who, "chrg_bchno": w.code} if w.infno == "2205" else {"feedetl_sn": w.code, **who}
    sns = set(w.sns)

    def current(s: SettlementState) -> bool:
        return s.withdrawal is not None and s.withdrawal.no == w.no

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        if current(s):
            _withdrawn(conn, visit, s, w, ctx.emitter)
            save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        if not current(s):
            return
        reason = refusal_text(exc)
        if isinstance(exc, BusinessRejection) and any(m in reason for m in NOTHING_TO_REVOKE_MARKERS):
            _withdrawn(conn, visit, s, w, ctx.emitter)  # the platform holds none of them: as good as done
            save_state(visit, s)
            return
        request = next((r for r in s.requests if r.id == w.request_id and r.phase == "withdrawing"), None)
        if w.purpose == "reorder":  # the platform keeps lines it would settle with the request: it is refused
            settle = next((r for r in s.requests if isinstance(r, SettleRequest) and r.id == w.request_id
                           and r.phase == "waiting"), None)
            if settle is not None:
                _reject(ctx, visit, s, settle, w.infno, exc)
        elif w.purpose == "redo":  # the reversal cannot be netted: report it and leave it aside
            book = LineBook(load_lines(conn, visit.key), merged=s.merged, refused=s.refused)
            for r in book.reversals_of_uploaded():
                s.refused[r.feedetl_sn] = f"{w.infno} refused: {reason}"[:300]
        elif isinstance(request, RefundRequest):  # refunded, but its lines stay on the platform unsettled
            set_status(conn, visit.key, w.sns, "uploaded", setl_id=None, only_from=("settled",))
            request.phase = "refunded"
            request.reason = f"{w.infno} after the refund refused: {reason}"
        elif isinstance(request, UnwindRequest):
            ctx.emitter.unwind_answer(visit, request, refused=f"{w.infno} refused: {reason}")
        s.withdrawal = None
        save_state(visit, s)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        held = {str(r.get("feedetl_sn")) for r in _rows(output)}
        return {} if not (held & sns) else None

    return Step(name=f"{w.infno}:w{w.no}", infno=w.infno, input={"data": data}, on_ok=on_ok,
                on_refused=on_refused, unknown=_policy(w.infno, _query_5204(st, found)), psn_no=st.person.psn_no,
                insuplc_admdvs=st.person.insuplc_admdvs)


# --- 2206 / 2303 → 2207 / 2304: settling ----------------------------------------------------------------------


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
    return _clean(data)


def _find(s: SettlementState, req_id: str, message_id: str, kind: str) -> Any:
    return next((r for r in s.requests if r.kind == kind and r.id == req_id and r.message_id == message_id), None)


def _reject(ctx: StepContext, visit: Visit, s: SettlementState, req: SettleRequest | RefundRequest, infno: str,
            exc: BusinessRejection | EnvelopeValidationError) -> None:
    req.phase = "rejected"
    code = "platform_rejected" if isinstance(exc, BusinessRejection) else "invalid_input"
    ctx.emitter.rejected(visit, s, req, reason_code=code, reason=refusal_text(exc), step_infno=infno)


def presettle_step(ctx: StepContext, visit: Visit, st: SettlementState, req: SettleRequest, lines: list[FeeLine],
                   total: Decimal) -> Step:
    infno = "2206" if st.kind == "outpatient" else "2303"
    bchno = st.chrg_bchno(ctx.settings.outpatient_bchno_prefix) if st.kind == "outpatient" else None
    data = settle_data(st, req, total, chrg_bchno=bchno)
    sns = [line.feedetl_sn for line in lines]

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is None or r.phase != "waiting":
            return
        setlinfo = dict(output.get("setlinfo") or {})
        split = split_of(setlinfo)
        problem = split_problem(split, total)
        if problem:
            s.hold = Parked(reason_code="inconsistent_split",
                              reason=f"{infno} answer for request {r.id} does not add up: {problem}")
        else:
            r.phase, r.sns, r.presettle = "presettled", sns, _jsonable(setlinfo)
            ctx.emitter.his(visit, s, kind="presettled", request_id=r.id, id_parts=(r.message_id,),
                            step_infno=infno, msgid=msgid, med_type=s.person.med_type,
                            mid_setl_flag=r.mid_setl_flag if s.kind == "inpatient" else None,
                            split=SettlementSplit(**split))
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is not None and r.phase == "waiting":
            _reject(ctx, visit, s, r, infno, exc)
            save_state(visit, s)

    return Step(name=f"{infno}:{req.tag}", infno=infno, input={"data": data}, on_ok=on_ok, on_refused=on_refused,
                unknown=_policy(infno), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def _jsonable(setlinfo: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of a pre-settlement answer: its amounts and codes, never the person's data."""
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in setlinfo.items()
            if (isinstance(v, (str, int, Decimal)) or v is None) and not is_personal_key(k)}


def _lines_total(conn: Connection, visit: Visit, s: SettlementState, sns: list[str]) -> Decimal:
    book = LineBook(load_lines(conn, visit.key), merged=s.merged)
    return money.money(sum((book.net_amount(book.by_sn[sn]) for sn in sns if sn in book.by_sn), Decimal("0")))


def _settled(ctx: StepContext, conn: Connection, visit: Visit, s: SettlementState, r: SettleRequest,
             setlinfo: dict[str, Any], msgid: str, infno: str) -> None:
    """Book a settlement the platform made (answered, or confirmed by 5203) and tell HIS and registration."""
    split = split_of(setlinfo)
    problem = split_problem(split, _lines_total(conn, visit, s, r.sns))
    medins = setlinfo.get("medins_setl_id")
    if not problem and medins and str(medins) != msgid:
        problem = f"medins_setl_id {medins} is not our msgid {msgid}"
    setl_id = str(setlinfo.get("setl_id") or r.setl_id or "")
    if not setl_id:
        problem = problem or "setlinfo.setl_id missing"
    if problem:
        s.hold = Parked(reason_code="inconsistent_split",
                          reason=f"{infno} settlement {setl_id or '?'} of request {r.id}: {problem}; "
                                 "the platform holds it — a person must decide (never guessed)")
        r.setl_id, r.settle_msgid = setl_id or r.setl_id, msgid
        if r.phase == "presettled":
            r.phase = "confirming"
        return
    p = s.person
    bchno = s.chrg_bchno(ctx.settings.outpatient_bchno_prefix) if s.kind == "outpatient" else None
    set_status(conn, visit.key, r.sns, "settled", setl_id=setl_id, only_from=("uploaded",))
    settlement = Settlement(
        setl_id=setl_id, request_id=r.id, infno=infno, msgid=msgid,
        mid_setl_flag=r.mid_setl_flag if s.kind == "inpatient" else "0", setl_time=setl_time_of(setlinfo),
        med_type=str(setlinfo.get("med_type") or p.med_type or "") or None,
        clr_type=_text(setlinfo.get("clr_type")), clr_way=_text(setlinfo.get("clr_way")),
        clr_optins=_text(setlinfo.get("clr_optins")), split=split, chrg_bchno=bchno, sns=list(r.sns),
        sheet_of=r.sheet_of)
    s.settlements.append(settlement)
    if s.kind == "outpatient":
        s.round += 1
    r.phase, r.setl_id, r.settle_msgid = "settled", setl_id, msgid
    fields = dict(step_infno=infno, msgid=msgid, med_type=settlement.med_type, setl_id=setl_id,
                  setl_time=settlement.setl_time, clr_type=settlement.clr_type, clr_way=settlement.clr_way,
                  clr_optins=settlement.clr_optins, refd_setl_flag="0",
                  mid_setl_flag=settlement.mid_setl_flag if s.kind == "inpatient" else None,
                  split=SettlementSplit(**split))
    if r.sheet_of:
        result = ctx.emitter.his(visit, s, kind="settled", request_id=r.id, id_parts=(r.message_id,),
                                 his_visit_id=r.sheet_of, visit_kind="inpatient",
                                 detail=hemodialysis.sheet_detail(visit.key, r.sheet_of, r.id), **fields)
        ctx.emitter.backfill(conn, result)
    else:
        ctx.emitter.his(visit, s, kind="settled", request_id=r.id, id_parts=(r.message_id,), **fields)
    ctx.emitter.fact(visit, kind="settled", request_id=r.id, id_parts=(setl_id,), setl_id=setl_id,
                     mid_setl_flag=settlement.mid_setl_flag)
    ctx.emitter.final(visit, r, "settled")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def settle_step(ctx: StepContext, visit: Visit, st: SettlementState, req: SettleRequest) -> Step:
    infno = "2207" if st.kind == "outpatient" else "2304"
    pre = req.presettle or {}
    total = money.money(Decimal(str(pre.get("medfee_sumamt", req.medfee_sumamt))))
    bchno = st.chrg_bchno(ctx.settings.outpatient_bchno_prefix) if st.kind == "outpatient" else None
    data = settle_data(st, req, total, chrg_bchno=bchno)
    amounts = {k: money.money(Decimal(str(pre.get(k) or "0")))
               for k in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")}
    data.update(amounts)
    if st.kind == "outpatient" and req.invono:
        data["invono"] = req.invono
    sns = set(req.sns)

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is None or r.phase != "presettled":
            return
        setlinfo = dict(output.get("setlinfo") or {})
        if "medfee_sumamt" not in setlinfo:  # adopted from 5204: the setl_id only; 5203 reads the rest
            r.phase, r.setl_id, r.settle_msgid = "confirming", _text(setlinfo.get("setl_id")), msgid
        else:
            _settled(ctx, conn, visit, s, r, setlinfo, msgid, infno)
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is not None and r.phase == "presettled":
            _reject(ctx, visit, s, r, infno, exc)
            save_state(visit, s)

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        setl_ids = {str(r.get("setl_id") or "") for r in _rows(output) if str(r.get("feedetl_sn")) in sns}
        held = {str(r.get("feedetl_sn")) for r in _rows(output)}
        if sns and sns <= held and len(setl_ids) == 1 and "" not in setl_ids:
            return {"setlinfo": {"setl_id": setl_ids.pop()}}
        return None

    return Step(name=f"{infno}:{req.tag}", infno=infno, input={"data": data}, on_ok=on_ok, on_refused=on_refused,
                unknown=_policy(infno, _query_5204(st, found)), psn_no=st.person.psn_no,
                insuplc_admdvs=st.person.insuplc_admdvs)


def confirm_settlement_step(ctx: StepContext, visit: Visit, st: SettlementState, req: SettleRequest) -> Step:
    """5203 of a settlement adopted from 5204: is it ours (medins_setl_id), and what is its split?"""
    infno = "2207" if st.kind == "outpatient" else "2304"

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is None or r.phase != "confirming":
            return
        setlinfo = dict(output.get("setlinfo") or {})
        if str(setlinfo.get("refd_setl_flag") or "0") != "0" or str(setlinfo.get("vali_flag") or "1") != "1":
            s.hold = Parked(reason_code="unknown_outcome",
                              reason=f"5203: settlement {r.setl_id} of request {r.id} is not an active settlement")
        else:
            _settled(ctx, conn, visit, s, r, setlinfo, r.settle_msgid or "", infno)
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "settle")
        if r is not None and r.phase == "confirming":
            s.hold = Parked(reason_code="unknown_outcome",
                              reason=f"5203 could not confirm settlement {r.setl_id} of request {r.id}: "
                                     f"{refusal_text(exc)}")
            save_state(visit, s)

    data = {**_who(st), "setl_id": req.setl_id}
    return Step(name=f"5203:{req.tag}", infno="5203", input={"data": data}, on_ok=on_ok, on_refused=on_refused,
                unknown=_policy("5203"), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


# --- 2208 / 2305: refunds ---------------------------------------------------------------------------------------


def _refunded(ctx: StepContext, conn: Connection, visit: Visit, s: SettlementState, r: RefundRequest,
              setlinfo: dict[str, Any], msgid: str, infno: str) -> None:
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
    fields = dict(step_infno=infno, msgid=msgid, med_type=settlement.med_type, setl_id=cancel_setl_id,
                  orig_setl_id=settlement.setl_id, setl_time=setl_time_of(setlinfo) or settlement.setl_time,
                  clr_type=settlement.clr_type or _text(setlinfo.get("clr_type")),
                  clr_way=settlement.clr_way or _text(setlinfo.get("clr_way")),
                  clr_optins=settlement.clr_optins or _text(setlinfo.get("clr_optins")), refd_setl_flag="1",
                  mid_setl_flag=settlement.mid_setl_flag if s.kind == "inpatient" else None,
                  split=SettlementSplit(**split))
    if settlement.sheet_of:
        result = ctx.emitter.his(visit, s, kind="refunded", request_id=r.id, id_parts=(r.message_id,),
                                 his_visit_id=settlement.sheet_of, visit_kind="inpatient",
                                 detail=hemodialysis.sheet_detail(visit.key, settlement.sheet_of, r.id), **fields)
        ctx.emitter.backfill(conn, result)
    else:
        ctx.emitter.his(visit, s, kind="refunded", request_id=r.id, id_parts=(r.message_id,), **fields)
    ctx.emitter.fact(visit, kind="settlement_cancelled", request_id=r.id, id_parts=(settlement.setl_id,),
                     setl_id=settlement.setl_id, mid_setl_flag=settlement.mid_setl_flag)
    ctx.emitter.final(visit, r, "refunded")
    if s.kind == "outpatient":  # then the settled batch's details (2205), as the rollback order wants
        r.phase = "withdrawing"
        s.withdrawal = Withdrawal(no=s.next_no(), infno="2205", purpose="refund",
                                  code=settlement.chrg_bchno or "0000", sns=list(settlement.sns), request_id=r.id)
    else:  # the platform holds the lines again, unsettled
        set_status(conn, visit.key, settlement.sns, "uploaded", setl_id=None, only_from=("settled",))
        r.phase = "refunded"


def cancel_step(ctx: StepContext, visit: Visit, st: SettlementState, req: RefundRequest) -> Step:
    infno = "2208" if st.kind == "outpatient" else "2305"
    target = req.target_setl_id or ""

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "refund")
        if r is None or r.phase != "cancelling":
            return
        setlinfo = dict(output.get("setlinfo") or {})
        if "medfee_sumamt" not in setlinfo:  # adopted from 5203: the cancellation's setl_id only
            r.phase, r.cancel_setl_id, r.cancel_msgid = "confirming_refund", _text(setlinfo.get("setl_id")), msgid
        else:
            _refunded(ctx, conn, visit, s, r, setlinfo, msgid, infno)
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "refund")
        if r is not None and r.phase == "cancelling":
            _reject(ctx, visit, s, r, infno, exc)
            save_state(visit, s)

    def query(visit: Visit, omsgid: str) -> QuerySpec:
        def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
            info = output.get("setlinfo") or {}
            if str(info.get("vali_flag") or "") == "0" and info.get("cancel_setl_id"):
                return {"setlinfo": {"setl_id": str(info["cancel_setl_id"])}}
            return None

        return QuerySpec("5203", {"data": {**_who(st), "setl_id": target}}, found=found,
                         insuplc_admdvs=st.person.insuplc_admdvs)

    data = {"setl_id": target, **_who(st)}
    return Step(name=f"{infno}:{req.tag}", infno=infno, input={"data": data}, on_ok=on_ok, on_refused=on_refused,
                unknown=_policy(infno, query), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def confirm_cancellation_step(ctx: StepContext, visit: Visit, st: SettlementState, req: RefundRequest) -> Step:
    """5203 of a cancellation adopted from 5203 of its settlement: ours (medins_setl_id), and its amounts."""
    infno = "2208" if st.kind == "outpatient" else "2305"

    def on_ok(conn: Connection, visit: Visit, output: dict[str, Any], msgid: str) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "refund")
        if r is None or r.phase != "confirming_refund":
            return
        setlinfo = dict(output.get("setlinfo") or {})
        if str(setlinfo.get("refd_setl_flag") or "") != "1":
            s.hold = Parked(reason_code="unknown_outcome",
                              reason=f"5203: {r.cancel_setl_id} is not a cancellation (refund {r.id})")
        else:
            _refunded(ctx, conn, visit, s, r, setlinfo, r.cancel_msgid or "", infno)
        save_state(visit, s)

    def on_refused(conn: Connection, visit: Visit, exc: BusinessRejection | EnvelopeValidationError) -> None:
        s = load_state(visit)
        r = _find(s, req.id, req.message_id, "refund")
        if r is not None and r.phase == "confirming_refund":
            s.hold = Parked(reason_code="unknown_outcome",
                              reason=f"5203 could not confirm cancellation {r.cancel_setl_id} (refund {r.id}): "
                                     f"{refusal_text(exc)}")
            save_state(visit, s)

    data = {**_who(st), "setl_id": req.cancel_setl_id}
    return Step(name=f"5203:{req.tag}", infno="5203", input={"data": data}, on_ok=on_ok, on_refused=on_refused,
                unknown=_policy("5203"), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)
