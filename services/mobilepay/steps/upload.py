"""6201 费用明细上传: the order's charge lines go up with the patient's authorisation (payAuthNo from the 电子凭证 or
WeChat's 免密授权, or the 电子凭证 ecToken); the platform answers payOrdId and payToken.

* Sent once the order holds its lines and the visit is known on the platform (psn_no, insutype; the mdtrt_id
  registration's 2201 made, when there is one).
* Lost answer (catalog: resend): the same upload again — the platform refuses a repeated medOrgOrd (wording
  ``repeat_upload``), so the order takes its next medOrgOrd (``<order>-2`` …) and uploads again; the orphan upload
  is never paid (nobody holds its payToken) and lapses on the platform.
* Answered: the order is ``uploaded`` (and paid right away when the channel asked for a one-step payment); it must
  be confirmed (paid) before ``order_ttl_s`` or it is revoked. Refused: the order ``failed`` with the platform's
  reason, its lines pending again.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.core import clock
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.state import Line, MobilePayState, Order
from yibao.mobilepay.steps.common import end_order, envelope_input

__all__ = ["upload_data", "upload_call"]


def _line(line: Line, order: Order) -> dict[str, Any]:
    return {k: v for k, v in {
        "feedetlSn": line.feedetl_sn, "medListCodg": line.med_list_codg, "medinsListCodg": line.medins_list_codg,
        "medinsListName": line.medins_list_name, "detItemFeeSumamt": line.amount, "cnt": line.cnt,
        "pric": line.pric, "feeOcurTime": clock.format_datetime(line.fee_ocur_time), "chrgBchno": order.id,
        "medType": line.med_type, "bilgDeptCodg": line.bilg_dept_codg, "bilgDeptName": line.bilg_dept_name,
    }.items() if v is not None}


def upload_data(cfg: ChainConfig, st: MobilePayState, order: Order) -> dict[str, Any]:
    p = st.patient
    data: dict[str, Any] = {
        "payAuthNo": order.pay_auth_no, "ecToken": order.ec_token, "orgCodg": cfg.org_codg, "psnNo": p.psn_no,
        "insutype": p.insutype, "medOrgOrd": order.med_org_ord, "medType": p.med_type or "11",
        "medfeeSumamt": order.total, "begntime": clock.format_datetime(p.begntime) if p.begntime else None,
        "idNo": p.certno, "userName": p.psn_name, "idType": p.psn_cert_type or "01", "insuCode": p.insuplc_admdvs,
        "iptOtpNo": p.ipt_otp_no, "deptName": p.dept_name, "deptCode": p.dept_code, "caty": p.caty,
        "feeType": "01", "psnSetlway": "01", "chrgBchno": order.id, "pubHospRfomFlag": "0", "mdtrtId": p.mdtrt_id,
        "feedetailList": [_line(st.lines[sn], order) for sn in order.sns],
    }
    return {k: v for k, v in data.items() if v is not None and v != ""}


def upload_call(cfg: ChainConfig, st: MobilePayState, order: Order, *, repeat_upload: Any) -> Call[MobilePayState]:
    order_id, upload_no = order.id, order.upload_no

    def current(s: MobilePayState) -> Order | None:
        o = s.order(order_id)
        return o if o is not None and o.phase == "new" and o.upload_no == upload_no else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        o.pay_ord_id = str(reply.output.get("payOrdId") or "")
        o.pay_token = str(reply.output.get("payToken") or "")
        o.phase, o.uploaded_at, o.updated_at = "uploaded", fx.now, fx.now
        o.expires_at = fx.now + cfg.order_ttl
        if o.auto_pay:
            o.pay_requested = True

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        if repeat_upload(refusal.text):
            o.upload_no += 1  # the lost upload stays an orphan: the next medOrgOrd
            o.updated_at = fx.now
            return
        end_order(fx, s, o, "failed", reason=f"6201 refused: {refusal.text}",
                  reason_code="platform_rejected" if refusal.reason_code == "rejected" else "invalid_input")

    return Call(f"6201:{order.id}:{upload_no}", "6201", envelope_input(order, upload_data(cfg, st, order)),
                on_ok=on_ok, on_refused=on_refused)
