"""Fee-detail upload (2204 outpatient, 2301 inpatient) and its per-item answer.

Rules: every row names the same visit and person; feedetl_sn is unique among the visit's non-revoked
details; det_item_fee_sumamt equals cnt × pric within a cent; a negative line (inpatient reversal line) must
name an existing init_feedetl_sn.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.core.money import money

from .calls import Call, amount, need, opt
from .policy import split_item
from .state import FeeDetail, Visit

__all__ = ["upload_details", "detail_result"]


def detail_result(detail: FeeDetail, call: Call) -> dict[str, Any]:
    part = split_item(detail.med_list_codg, detail.det_item_fee_sumamt, call.platform.policy)
    return {
        "feedetl_sn": detail.feedetl_sn,
        "det_item_fee_sumamt": detail.det_item_fee_sumamt,
        "cnt": detail.cnt,
        "pric": detail.pric,
        "pric_uplmt_amt": detail.pric,
        "selfpay_prop": part.selfpay_prop,
        "fulamt_ownpay_amt": part.fulamt_ownpay_amt,
        "overlmt_amt": part.overlmt_amt,
        "preselfpay_amt": part.preselfpay_amt,
        "inscp_scp_amt": part.inscp_scp_amt,
        "chrgitm_lv": part.item_class,
        "med_chrgitm_type": "",
        "bas_medn_flag": "0",
        "hi_nego_drug_flag": "0",
        "chld_medc_flag": "0",
        "list_sp_item_flag": "0",
        "lmt_used_flag": "0",
        "drt_reim_flag": "0",
        "memo": "",
    }


def upload_details(call: Call, visit: Visit, items: list[dict[str, Any]], *, inpatient: bool) -> dict[str, Any]:
    seen: set[str] = set()
    staged: list[FeeDetail] = []
    for i, row in enumerate(items):
        path = f"feedetail[{i}]"
        if need(call, row, "mdtrt_id", path) != visit.mdtrt_id:
            raise call.refuse(f"{path}.mdtrt_id: every row of one upload must name the same visit")
        if need(call, row, "psn_no", path) != visit.psn_no:
            raise call.refuse(f"{path}.psn_no: not the person of this visit")
        sn = need(call, row, "feedetl_sn", path)
        existing = visit.details.get(sn)
        if sn in seen or (existing is not None and existing.status != "revoked"):
            raise call.refuse(f"{path}.feedetl_sn: already uploaded for this visit (明细流水号重复)")
        seen.add(sn)
        cnt = amount(call, row, "cnt", path, scale=4)
        pric = amount(call, row, "pric", path, scale=6)
        total = amount(call, row, "det_item_fee_sumamt", path)
        if abs(money(cnt * pric) - total) > Decimal("0.01"):
            raise call.refuse(f"{path}.det_item_fee_sumamt: differs from cnt × pric")
        if pric < 0:
            raise call.refuse(f"{path}.pric: must not be negative")
        init_sn = opt(call, row, "init_feedetl_sn", path=path)
        if cnt < 0 or total < 0:
            if not inpatient or not init_sn:
                raise call.refuse(f"{path}.cnt: a negative line needs init_feedetl_sn (inpatient reversal line)")
            original = visit.details.get(init_sn)
            if original is None or original.status != "uploaded" or original.cnt < 0:
                raise call.refuse(f"{path}.init_feedetl_sn: no unsettled original line to reverse")
        chrg_bchno = opt(call, row, "chrg_bchno", path=path) if not inpatient else opt(call, row, "drord_no", path=path)
        if not inpatient and not chrg_bchno:
            raise call.refuse(f"{path}.chrg_bchno: required")
        fee_time = need(call, row, "fee_ocur_time", path)
        staged.append(FeeDetail(
            feedetl_sn=sn, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no, chrg_bchno=chrg_bchno or "",
            med_list_codg=need(call, row, "med_list_codg", path),
            medins_list_codg=need(call, row, "medins_list_codg", path),
            det_item_fee_sumamt=money(total), cnt=cnt, pric=pric, fee_ocur_time=fee_time,
            item_class=split_item(str(row["med_list_codg"]), abs(money(total)), call.platform.policy).item_class,
            msgid=call.msgid, init_feedetl_sn=init_sn,
        ))
    for detail in staged:
        visit.details[detail.feedetl_sn] = detail
    call.record.effect = {"kind": "details", "mdtrt_id": visit.mdtrt_id, "feedetl_sns": [d.feedetl_sn for d in staged]}
    return {"result": [detail_result(d, call) for d in staged]}
