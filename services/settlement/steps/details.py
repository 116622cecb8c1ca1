"""2204 门诊费用明细信息上传 / 2301 住院费用明细上传: a frozen batch of ≤ ``detail_batch_size`` lines.

A batch is decided (frozen in the state) before it is sent, so a lost answer finds the very same batch again.
Lost answer (catalog): the platform refuses a duplicate feedetl_sn, so 5204 is asked — the batch adopted when the
platform holds all its lines, else uploaded again. Each row carries the line's *net* quantity (reversals netted
into it locally). A refused batch is reported to HIS with its lines; they stay pending, marked refused — except
a 2301 refused because the platform holds the stay discharged (the catalog's wording ``stay_discharged``:
registration sent 2402 without settlement's confirmation): its lines stay pending, not refused, for the stay's
reopening (2405 → 2301 → 2402 again), and nothing more goes up until registration's ``discharged`` arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from yibao.chains.model import Call, Change, Effects, Refusal, Reply
from yibao.settlement.config import ChainConfig
from yibao.settlement.lines import FeeLine, LineBook
from yibao.settlement.results import emit_fact, emit_result
from yibao.settlement.state import SettlementState, Upload
from yibao.settlement.steps.common import clean, detail_rows, lookup_5204

__all__ = ["freeze_batch", "upload_call", "upload_row", "StayDischarged"]

log = logging.getLogger(__name__)

#: whether a refusal's text says the stay is discharged on the platform (the catalog's wording ``stay_discharged``)
StayDischarged = Callable[[str], bool]


def freeze_batch(cfg: ChainConfig, book_of: Any) -> Change[SettlementState]:
    """Decide the next batch: the first lines that may go up now, in arrival order."""
    def apply(st: SettlementState, fx: Effects) -> None:
        if st.upload is not None:
            return
        book: LineBook = book_of(st)
        batch = [line.feedetl_sn for line in book.uploadable(st.kind)][: cfg.detail_batch_size]
        if batch:
            bchno = st.chrg_bchno(cfg.outpatient_bchno_prefix) if st.kind == "outpatient" else None
            st.upload = Upload(no=st.next_no(), sns=batch, chrg_bchno=bchno)

    return Change("freeze an upload batch", apply, gathers=True)


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
        return clean({**common, "chrg_bchno": chrg_bchno, "dise_codg": e.dise_codg, "rxno": e.rxno,
                      "rx_circ_flag": e.rx_circ_flag or "0", "sin_dos_dscr": e.sin_dos_dscr,
                      "used_frqu_dscr": e.used_frqu_dscr, "prd_days": e.prd_days, "medc_way_dscr": e.medc_way_dscr})
    return clean({**common, "init_feedetl_sn": line.init_feedetl_sn, "drord_no": e.drord_no,
                  "med_type": e.med_type or person.med_type, "memo": e.memo})


def upload_call(st: SettlementState, book: LineBook, batch: Upload, *,
                stay_discharged: StayDischarged | None = None) -> Call[SettlementState]:
    kind = st.kind
    infno = "2204" if kind == "outpatient" else "2301"
    rows = [upload_row(kind, book.by_sn[sn], book, st, batch.chrg_bchno) for sn in batch.sns if sn in book.by_sn]
    sns = list(batch.sns)

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        if s.upload is None or s.upload.no != batch.no:
            return
        s.lines.set_status(sns, "uploaded", upload_msgid=reply.msgid, only_from=("pending",))
        s.upload = None
        for sn in sns:
            s.discharge_refused.pop(sn, None)
        emit_fact(fx, kind="details_uploaded", id_parts=(batch.no, reply.msgid))

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        if s.upload is None or s.upload.no != batch.no:
            return
        if (kind == "inpatient" and refusal.reason_code == "rejected" and stay_discharged is not None
                and stay_discharged(refusal.text)):
            _discharged_first(s, sns, refusal, fx)
            return
        for sn in sns:
            s.refused[sn] = refusal.text[:300]
        s.upload = None
        emit_result(fx, s, kind="rejected", request_id=None, id_parts=("details", batch.no), step_infno=infno,
                    reason_code="details_rejected", reason=f"fee details refused ({len(sns)} lines): {refusal.text}",
                    detail={"feedetl_sns": sns})

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        held = {str(r.get("feedetl_sn")): r for r in detail_rows(output)}
        if sns and all(sn in held for sn in sns):
            return {"result": [held[sn] for sn in sns]}
        return None

    return Call(f"{infno}:b{batch.no}", infno, {"feedetail": rows}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_5204(st, found), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)


def _discharged_first(s: SettlementState, sns: list[str], refusal: Refusal, fx: Effects) -> None:
    """The platform holds the stay discharged: a 2402 registration sent without our confirmation got there before
    this 2301. The lines are not refused: they stay pending for the stay's reopening. Until registration's
    ``discharged`` reaches us (it may be on its way), nothing more goes up — it would only be refused again."""
    s.upload = None
    for sn in sns:
        s.discharge_refused[sn] = refusal.text[:300]
    if not s.discharged:
        s.platform_discharged_at = fx.now
    count = len(sns)
    fx.after_commit(lambda: log.warning(
        "2301 refused: the platform holds the stay discharged; the lines wait for the stay's reopening",
        extra={"fields": {"service": "settlement", "lines": count}}))
