"""Settlement mechanics shared by outpatient (2206/2207/2208) and inpatient (2303/2304/2305) handlers, and
by 2601: computing a split, committing it, cancelling it, and undoing either.

Booking rules (what 3201/3202 read): a settlement is a ledger entry with ``refd_setl_flag`` "0" and positive
amounts on its setl_time; its cancellation (2208/2305) is a separate entry with its own setl_id,
``refd_setl_flag`` "1" and negative amounts on the cancellation time; 2601 erases an entry (status
"reversed"), as if the reversed message had never been processed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.money import ZERO, money

from .calls import Call, amount, need
from .policy import Split, settle
from .population import SimPerson
from .state import FeeDetail, Settlement, Visit

__all__ = [
    "CLR_TYPE",
    "CLR_WAY",
    "load_visit",
    "load_person",
    "check_cert",
    "compute_split",
    "setlinfo_of",
    "commit",
    "settlement_to_cancel",
    "cancel",
    "undo_settlement",
    "undo_cancellation",
    "FUND_PAY_TYPE_NAMES",
]

#: clr_type by visit kind (dictionary clr_type: 11 门诊, 21 住院)
CLR_TYPE = {"outpatient": "11", "inpatient": "21"}
#: clr_way: 1 按项目
CLR_WAY = "1"
FUND_PAY_TYPE_NAMES = {"310100": "职工基本医疗保险统筹基金", "390100": "城乡居民基本医疗保险基金"}


def load_visit(call: Call, mdtrt_id: str, psn_no: str, kind: str) -> Visit:
    visit = call.platform.ledger.visits.get(mdtrt_id)
    if visit is None or visit.fixmedins_code != call.fixmedins_code:
        raise call.refuse(f"data.mdtrt_id: no such visit (就诊ID不存在)")
    if visit.kind != kind:
        raise call.refuse(f"data.mdtrt_id: the visit is {visit.kind}, this transaction is for {kind} visits")
    if visit.psn_no != psn_no:
        raise call.refuse("data.psn_no: not the person of this visit (跨人员操作)")
    return visit


def load_person(call: Call, psn_no: str) -> SimPerson:
    person = call.platform.ledger.persons.get(psn_no)
    if person is None:
        raise call.refuse("data.psn_no: unknown person (人员不存在)")
    return person


def check_cert(call: Call, data: dict[str, Any], person: SimPerson, path: str = "data") -> None:
    cert_type = need(call, data, "mdtrt_cert_type", path)
    if cert_type not in {"01", "02", "03"}:
        raise call.refuse(f"{path}.mdtrt_cert_type: must be 01 (电子凭证), 02 (身份证) or 03 (社保卡)")
    cert_no = need(call, data, "mdtrt_cert_no", path)
    if cert_no not in (person.certno, person.card_sn, person.ec_token, person.psn_no):
        raise call.refuse(f"{path}.mdtrt_cert_no: does not identify the person of psn_no")


def compute_split(call: Call, visit: Visit, details: list[FeeDetail], data: dict[str, Any], med_type: str) -> Split:
    """Check the hospital's claim (total, flags) against the details, and split. Nothing is committed."""
    if not details:
        raise call.refuse("no unsettled fee details to settle (upload details first)")
    claimed = amount(call, data, "medfee_sumamt")
    total = money(sum((d.det_item_fee_sumamt for d in details), ZERO))
    if money(claimed) != total:
        raise call.refuse(f"data.medfee_sumamt: {money(claimed)} differs from the unsettled details' total {total}")
    flag = need(call, data, "acct_used_flag")
    if flag not in {"0", "1"}:
        raise call.refuse("data.acct_used_flag: must be 0 or 1")
    setlway = need(call, data, "psn_setlway")
    if setlway not in {"01", "02"}:
        raise call.refuse("data.psn_setlway: must be 01 (按项目) or 02 (按定额)")
    insutype = need(call, data, "insutype")
    if insutype != visit.insutype:
        raise call.refuse("data.insutype: differs from the visit's insutype")
    person = load_person(call, visit.psn_no)
    return settle(
        [(d.med_list_codg, d.det_item_fee_sumamt) for d in details],
        insutype=visit.insutype,
        med_type=med_type,
        acct_used=flag == "1",
        balance=person.balance,
        policy=call.platform.policy,
    )


def setlinfo_of(call: Call, visit: Visit, split: Split | dict[str, Decimal], *, setl_id: str, med_type: str,
                sign: int = 1) -> dict[str, Any]:
    person = call.platform.ledger.persons[visit.psn_no]
    amounts = split.amounts() if isinstance(split, Split) else dict(split)
    balc = amounts.pop("balc", person.balance)
    zero_funds = {k: ZERO for k in ("cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay",
                                     "hosp_part_amt", "acct_mulaid_pay")}
    info: dict[str, Any] = {
        "mdtrt_id": visit.mdtrt_id,
        "setl_id": setl_id,
        "psn_no": person.psn_no,
        "psn_name": person.psn_name,
        "psn_cert_type": person.psn_cert_type,
        "certno": person.certno,
        "gend": person.gend,
        "naty": person.naty,
        "brdy": person.brdy,
        "age": Decimal(person.age(call.now.date())),
        "insutype": visit.insutype,
        "psn_type": person.psn_type,
        "cvlserv_flag": person.cvlserv_flag,
        "setl_time": clock.format_datetime(call.now),
        "mdtrt_cert_type": str(call.input.get("data", {}).get("mdtrt_cert_type", "")),
        "med_type": med_type,
        **{k: money(v) * sign for k, v in amounts.items()},
        **zero_funds,
        "balc": money(balc),
        "medins_setl_id": call.msgid,
        "clr_optins": person.insuplc_admdvs,
        "clr_way": CLR_WAY,
        "clr_type": CLR_TYPE[visit.kind],
    }
    return info


def setldetail_of(call: Call, visit: Visit, split: Split) -> list[dict[str, Any]]:
    fund_type = call.platform.policy.fund_pay_types.get(visit.insutype, "310100")
    return [{
        "fund_pay_type": fund_type,
        "inscp_scp_amt": split.inscp_scp_amt,
        "crt_payb_lmt_amt": split.cap,
        "fund_payamt": split.hifp_pay,
        "fund_pay_type_name": FUND_PAY_TYPE_NAMES.get(fund_type, "统筹基金"),
        "setl_proc_info": f"起付线{split.act_pay_dedc} 统筹{split.hifp_pay}",
    }]


def commit(call: Call, visit: Visit, details: list[FeeDetail], split: Split, *, med_type: str,
           mid_setl_flag: str = "0") -> dict[str, Any]:
    """Book the settlement: details settled, balance decremented, the message's effect recorded."""
    ledger = call.platform.ledger
    person = ledger.persons[visit.psn_no]
    setl_id = call.platform.new_id()
    info = setlinfo_of(call, visit, split, setl_id=setl_id, med_type=med_type)
    person.balance = money(person.balance - split.acct_pay)
    for d in details:
        d.status = "settled"
        d.setl_id = setl_id
    amounts = {k: v for k, v in split.amounts().items() if k != "balc"}
    ledger.settlements[setl_id] = Settlement(
        setl_id=setl_id, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no, fixmedins_code=visit.fixmedins_code,
        infno=call.infno, msgid=call.msgid, setl_time=call.now, insutype=visit.insutype, med_type=med_type,
        clr_type=CLR_TYPE[visit.kind], clr_way=CLR_WAY, clr_optins=person.insuplc_admdvs, refd_setl_flag="0",
        amounts=amounts, detail_sns=[d.feedetl_sn for d in details], mid_setl_flag=mid_setl_flag, setlinfo=info,
    )
    call.record.effect = {"kind": "settlement", "setl_id": setl_id, "mdtrt_id": visit.mdtrt_id}
    return {"setlinfo": info, "setldetail": setldetail_of(call, visit, split)}


def settlement_to_cancel(call: Call, visit: Visit, setl_id: str) -> Settlement:
    """The visit's settlement ``setl_id`` that a 2208/2305 may cancel: it exists, is not a cancellation entry, was
    not reversed (2601), belongs to this visit and is still active. Refused with the reason otherwise."""
    settlement = call.platform.ledger.settlements.get(setl_id)
    if settlement is None or settlement.refd_setl_flag != "0" or settlement.status == "reversed":
        raise call.refuse("data.setl_id: no such settlement (结算ID不存在)")
    if settlement.mdtrt_id != visit.mdtrt_id:
        raise call.refuse("data.setl_id: the settlement belongs to another visit")
    if settlement.status == "cancelled":
        raise call.refuse("data.setl_id: the settlement is already cancelled (已撤销)")
    return settlement


def cancel(call: Call, visit: Visit, original: Settlement) -> dict[str, Any]:
    """Book the cancellation of an active settlement: a negative entry, details unsettled, balance restored."""
    ledger = call.platform.ledger
    person = ledger.persons[visit.psn_no]
    setl_id = call.platform.new_id()
    negative = {k: -v for k, v in original.amounts.items()}
    person.balance = money(person.balance + original.amounts.get("acct_pay", ZERO))
    for sn in original.detail_sns:
        detail = visit.details.get(sn)
        if detail is not None and detail.setl_id == original.setl_id:
            detail.status = "uploaded"
            detail.setl_id = ""
    info = {**original.setlinfo, **{k: money(v) for k, v in negative.items()}, "setl_id": setl_id,
            "setl_time": clock.format_datetime(call.now), "medins_setl_id": call.msgid, "balc": person.balance}
    ledger.settlements[setl_id] = Settlement(
        setl_id=setl_id, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no, fixmedins_code=visit.fixmedins_code,
        infno=call.infno, msgid=call.msgid, setl_time=call.now, insutype=original.insutype,
        med_type=original.med_type, clr_type=original.clr_type, clr_way=original.clr_way,
        clr_optins=original.clr_optins, refd_setl_flag="1", amounts=negative, detail_sns=list(original.detail_sns),
        mid_setl_flag=original.mid_setl_flag, orig_setl_id=original.setl_id, setlinfo=info,
    )
    original.status = "cancelled"
    original.cancel_setl_id = setl_id
    call.record.effect = {"kind": "cancellation", "setl_id": setl_id, "orig_setl_id": original.setl_id,
                          "mdtrt_id": visit.mdtrt_id}
    return {"setlinfo": info}


def undo_settlement(call: Call, settlement: Settlement) -> str:
    """2601 of a 2207/2304: erase the settlement; refuses when it was cancelled meanwhile."""
    if settlement.status == "reversed":
        raise call.refuse("the original settlement has already been reversed (已冲正)")
    if settlement.status != "active":
        raise call.refuse("the original settlement was cancelled since; reverse the cancellation first")
    ledger = call.platform.ledger
    visit = ledger.visits[settlement.mdtrt_id]
    person = ledger.persons[settlement.psn_no]
    person.balance = money(person.balance + settlement.amounts.get("acct_pay", ZERO))
    for sn in settlement.detail_sns:
        detail = visit.details.get(sn)
        if detail is not None and detail.setl_id == settlement.setl_id:
            detail.status = "uploaded"
            detail.setl_id = ""
    settlement.status = "reversed"
    return f"settlement {settlement.setl_id} reversed"


def undo_cancellation(call: Call, cancellation: Settlement) -> str:
    """2601 of a 2208/2305: erase the cancellation and make the original settlement active again."""
    if cancellation.status == "reversed":
        raise call.refuse("the original cancellation has already been reversed (已冲正)")
    ledger = call.platform.ledger
    original = ledger.settlements[cancellation.orig_setl_id]
    visit = ledger.visits[original.mdtrt_id]
    for sn in original.detail_sns:
        detail = visit.details.get(sn)
        if detail is None or detail.status != "uploaded":
            raise call.refuse("the cancelled settlement's details changed since; cannot restore it")
    person = ledger.persons[original.psn_no]
    acct = original.amounts.get("acct_pay", ZERO)
    if acct > person.balance:
        raise call.refuse("the personal account no longer holds the amount to restore")
    person.balance = money(person.balance - acct)
    for sn in original.detail_sns:
        visit.details[sn].status = "settled"
        visit.details[sn].setl_id = original.setl_id
    cancellation.status = "reversed"
    original.status = "active"
    original.cancel_setl_id = ""
    return f"cancellation {cancellation.setl_id} reversed, settlement {original.setl_id} active again"
