"""Mobile pay 2.0 (医保移动支付): 6201 upload → 6202 order (settles) → callback; 6203 refund, 6301 query,
6401 revoke — the order state machine.

A mobile-pay settlement is a settlement of the national platform too, as on the real platform: 6202 books a
national ledger entry (infno ``6202``, its own setl_id — answered as ``hiDocSn`` — on a visit, ``hiRgstSn``: the
visit 6202's ``mdtrtId`` names, or one the platform opens for the order), with ``orgBizSer`` (the hospital's
serial of the 6202) as its msgid. So 3201/3202, 5203 and the counter's 2208 see it like any outpatient
settlement. A 6203 that returns the insurance part (ALL, HI) books the cancellation entry (its setl_id answered
as ``hiDocSn``); a cash-only refund (CASH) moves no fund money and books nothing nationally. A 2208 at the
counter cancels the settlement; the order then shows the insurance part refunded (its refunds list a ``2208``
entry), the patient's cash part still paid.

Order states (ordStas), inside the ranges mobilepay.md reports (0-2 processing, 3-6 settled, 7-13 cancelled,
14-16 failed): 1 uploaded, 4 settled, 7 revoked, 9 refunded (all of it), 10 insurance part refunded (cash
kept), 11 cash part refunded (insurance kept).

Versions: a 6201 sent with a 1.x envelope version makes a 1.0 order: served the same way, but the platform sends
no settlement callback for it (the hospital asks 6301), and a call of the other version on it is refused.

Refunds: ``appRefdSn`` is the idempotency key — the same appRefdSn with the same amounts gets the recorded
answer again; with other amounts it is refused. A refund's amounts must be exactly what remains refundable of
its part(s). The fault ``6203:expire`` answers ``EXP`` (nothing moved; a later refund under a new appRefdSn may
succeed). ``refund_requires_auth`` (setting ``mp_refund_requires_auth``) refuses a 6203 without payAuthNo or
ecToken — where the province says so, a hospital-initiated refund must then go through the counter (2208).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.money import ZERO, money

from .errors import MobilePayRefusal
from .national import NationalPlatform
from .policy import settle
from .settlement import CLR_TYPE, CLR_WAY
from .state import MobileOrder, Settlement, Visit

__all__ = ["ORD_UPLOADED", "ORD_SETTLED", "ORD_REVOKED", "ORD_REFUNDED", "ORD_HI_REFUNDED", "ORD_CASH_REFUNDED",
           "ORD_STATES", "MobilePlatform", "MP_PATHS", "mp_timestamp", "version_of"]

ORD_UPLOADED = "1"
ORD_SETTLED = "4"
ORD_REVOKED = "7"
ORD_REFUNDED = "9"
ORD_HI_REFUNDED = "10"
ORD_CASH_REFUNDED = "11"
ORD_STATES = {ORD_UPLOADED: "已上传待支付", ORD_SETTLED: "已结算", ORD_REVOKED: "已撤销", ORD_REFUNDED: "已退款",
              ORD_HI_REFUNDED: "医保部分已退", ORD_CASH_REFUNDED: "现金部分已退"}
_PAID = frozenset({ORD_SETTLED, ORD_HI_REFUNDED, ORD_CASH_REFUNDED})

#: path tail -> transaction number (mobilepay.md, "paths as seen in one province")
MP_PATHS = {"uldFeeInfo": "6201", "pay_order": "6202", "refund_Order": "6203", "query_order_info": "6301",
            "revoke_order": "6401"}


def version_of(envelope_version: Any) -> str:
    """The order version an envelope's ``version`` names: 1.x → "1.0", anything else "2.0"."""
    return "1.0" if str(envelope_version or "").strip().startswith("1.") else "2.0"


def _need(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or str(value).strip() == "":
        raise MobilePayRefusal(f"{key}: required, empty or missing")
    return str(value).strip()


def _amount(data: dict[str, Any], key: str) -> Decimal:
    value = data.get(key)
    if value is None or value == "" or isinstance(value, (bool, float, dict, list)):
        raise MobilePayRefusal(f"{key}: required decimal amount")
    try:
        number = Decimal(str(value))
    except Exception:  # noqa: BLE001
        raise MobilePayRefusal(f"{key}: not a decimal number") from None
    if not number.is_finite() or number != money(number):
        raise MobilePayRefusal(f"{key}: at most two decimal places")
    return number


class MobilePlatform:
    """The mobile-pay business rules. ``handle`` returns the plain response data; the HTTP layer seals it."""

    def __init__(self, national: NationalPlatform) -> None:
        self.national = national
        self.ledger = national.ledger
        self.settled: list[MobileOrder] = []  # the HTTP layer drains it to send callbacks

    def handle(self, infno: str, data: Any, *, version: str = "2.0", expire: bool = False) -> dict[str, Any]:
        """One transaction; ``expire`` (the fault ``6203:expire``) makes a refund answer EXP."""
        if not isinstance(data, dict):
            raise MobilePayRefusal("data: must be a JSON object")
        with self.ledger.lock:
            if infno == "6201":
                return self._upload(data, version)
            if infno == "6203":
                return self._refund(data, version, expire=expire)
            return {"6202": self._pay, "6301": self._query, "6401": self._revoke}[infno](data, version)

    def _order(self, data: dict[str, Any], version: str) -> MobileOrder:
        order = self.ledger.orders.get(_need(data, "payOrdId"))
        if order is None:
            raise MobilePayRefusal("payOrdId: no such order")
        if data.get("orgCodg") and str(data["orgCodg"]) != order.org_codg:
            raise MobilePayRefusal("orgCodg: not the institution of this order")
        if order.version != version:
            raise MobilePayRefusal(f"version: the order is a {order.version} order (sent as {version})")
        return order

    def _token(self, data: dict[str, Any], order: MobileOrder) -> None:
        if _need(data, "payToken") != order.pay_token:
            raise MobilePayRefusal("payToken: does not match the order")

    # --- 6201 ---------------------------------------------------------------------------------------------------

    def _upload(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        if not (data.get("payAuthNo") or data.get("ecToken")):
            raise MobilePayRefusal("payAuthNo or ecToken: one is required")
        org = _need(data, "orgCodg")
        if org not in self.ledger.institutions:
            raise MobilePayRefusal("orgCodg: unknown institution")
        person = self.ledger.persons.get(_need(data, "psnNo"))
        if person is None:
            raise MobilePayRefusal("psnNo: unknown person")
        if data.get("ecToken") and not data.get("payAuthNo") and person.ec_token \
                and str(data["ecToken"]) != person.ec_token:
            raise MobilePayRefusal("ecToken: does not identify the person of psnNo")
        insutype = _need(data, "insutype")
        if insutype != person.insutype:
            raise MobilePayRefusal("insutype: the person is not insured under this insutype")
        med_org_ord = _need(data, "medOrgOrd")
        for o in self.ledger.orders.values():
            if o.org_codg == org and o.med_org_ord == med_org_ord and o.status != ORD_REVOKED:
                raise MobilePayRefusal("medOrgOrd: already uploaded (repeat upload)")
        med_type = _need(data, "medType")
        total = _amount(data, "medfeeSumamt")
        rows = data.get("feedetailList")
        if not isinstance(rows, list) or not rows:
            raise MobilePayRefusal("feedetailList: required non-empty list")
        items: list[tuple[str, Decimal]] = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise MobilePayRefusal(f"feedetailList[{i}]: must be an object")
            items.append((_need(row, "medListCodg"), _amount(row, "detItemFeeSumamt")))
        if money(sum((a for _, a in items), ZERO)) != money(total):
            raise MobilePayRefusal("medfeeSumamt: differs from the sum of feedetailList")
        now = self.national.clock.now()
        pay_ord_id = "ORD" + self.national.new_id()
        order = MobileOrder(pay_ord_id=pay_ord_id, pay_token="PT" + self.national.new_id(10), org_codg=org,
                            psn_no=person.psn_no, insutype=insutype, med_org_ord=med_org_ord, med_type=med_type,
                            fee_sumamt=money(total), items=items, status=ORD_UPLOADED, created=now,
                            request={k: v for k, v in data.items() if k not in ("idNo", "userName", "payAuthNo",
                                                                                 "ecToken")},
                            version=version, mdtrt_id=str(data.get("mdtrtId") or ""))
        self.ledger.orders[pay_ord_id] = order
        return {"payOrdId": pay_ord_id, "payToken": order.pay_token, "ordStas": order.status}

    # --- 6202 ---------------------------------------------------------------------------------------------------

    def _visit_for(self, order: MobileOrder, mdtrt_id: str, now: dt.datetime) -> Visit:
        """The national visit the settlement belongs to: the one the hospital named (its own person and
        institution), else one the platform opens for the order."""
        visit = self.ledger.visits.get(mdtrt_id) if mdtrt_id else None
        if visit is not None:
            if visit.psn_no != order.psn_no or visit.fixmedins_code != order.org_codg:
                raise MobilePayRefusal("mdtrtId: not a visit of this person at this institution")
            return visit
        if mdtrt_id:
            raise MobilePayRefusal("mdtrtId: no such visit (就诊ID不存在)")
        visit = Visit(mdtrt_id=self.national.new_id(), kind="outpatient", psn_no=order.psn_no,
                      insutype=order.insutype, fixmedins_code=order.org_codg, ipt_otp_no=order.med_org_ord,
                      begntime=clock.format_datetime(now), created_msgid=order.org_biz_ser, med_type=order.med_type,
                      created=now)
        self.ledger.visits[visit.mdtrt_id] = visit
        return visit

    def _pay(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        order = self._order(data, version)
        self._token(data, order)
        _need(data, "payAuthNo")
        if order.status != ORD_UPLOADED:
            raise MobilePayRefusal(f"payOrdId: the order is {ORD_STATES.get(order.status, order.status)}, "
                                   "not payable")
        flag = str(data.get("acctUsedFlag", "0"))
        if flag not in {"0", "1"}:
            raise MobilePayRefusal("acctUsedFlag: must be 0 or 1")
        now = self.national.clock.now()
        order.org_biz_ser = str(data.get("orgBizSer") or "")
        visit = self._visit_for(order, str(data.get("mdtrtId") or order.mdtrt_id or ""), now)
        person = self.ledger.persons[order.psn_no]
        split = settle(order.items, insutype=order.insutype, med_type=order.med_type, acct_used=flag == "1",
                       balance=person.balance, policy=self.national.policy)
        person.balance = money(person.balance - split.acct_pay)
        amounts = {k: v for k, v in split.amounts().items() if k != "balc"}
        setl_id = self.national.new_id()
        info = {"mdtrt_id": visit.mdtrt_id, "setl_id": setl_id, "psn_no": person.psn_no, "insutype": order.insutype,
                "psn_type": person.psn_type, "setl_time": clock.format_datetime(now), "med_type": order.med_type,
                **{k: money(v) for k, v in amounts.items()}, "balc": person.balance,
                "medins_setl_id": order.org_biz_ser, "clr_optins": person.insuplc_admdvs, "clr_way": CLR_WAY,
                "clr_type": CLR_TYPE["outpatient"]}
        self.ledger.settlements[setl_id] = Settlement(
            setl_id=setl_id, mdtrt_id=visit.mdtrt_id, psn_no=person.psn_no, fixmedins_code=order.org_codg,
            infno="6202", msgid=order.org_biz_ser or order.pay_ord_id, setl_time=now, insutype=order.insutype,
            med_type=order.med_type, clr_type=CLR_TYPE["outpatient"], clr_way=CLR_WAY,
            clr_optins=person.insuplc_admdvs, refd_setl_flag="0", amounts=amounts, setlinfo=info)
        order.amounts = {"feeSumamt": split.medfee_sumamt, "ownPayAmt": split.psn_cash_pay,
                         "psnAcctPay": split.acct_pay, "fundPay": split.fund_pay_sumamt}
        order.status = ORD_SETTLED
        order.setl_time = now
        order.setl_id, order.mdtrt_id = setl_id, visit.mdtrt_id
        if order.version == "2.0":
            self.settled.append(order)
        return {"payOrdId": order.pay_ord_id, "ordStas": order.status, **order.amounts,
                "hiDocSn": setl_id, "hiRgstSn": visit.mdtrt_id}

    # --- 6203 ---------------------------------------------------------------------------------------------------

    def _refund(self, data: dict[str, Any], version: str, *, expire: bool) -> dict[str, Any]:
        order = self._order(data, version)
        self._reflect_counter_cancellation(order)
        refd_sn = _need(data, "appRefdSn")
        _need(data, "appRefdTime")
        kind = _need(data, "refdType")
        if kind not in ("ALL", "CASH", "HI"):
            raise MobilePayRefusal("refdType: must be ALL, CASH or HI")
        asked = {k: money(_amount(data, k)) for k in ("totlRefdAmt", "cashRefdAmt", "psnAcctRefdAmt", "fundRefdAmt")}
        earlier = next((r for r in order.refunds if r.get("appRefdSn") == refd_sn), None)
        if earlier is not None:
            if earlier.get("refdType") == kind and all(earlier.get(k) == v for k, v in asked.items()):
                return self._refund_answer(order, earlier)  # the same request again: the same answer
            raise MobilePayRefusal("appRefdSn: already used (by a refund of other amounts)")
        if self.national.settings.mp_refund_requires_auth and not (data.get("payAuthNo") or data.get("ecToken")):
            raise MobilePayRefusal("payAuthNo or ecToken: required for a refund (this province)")
        record: dict[str, Any] = {"appRefdSn": refd_sn, "refdType": kind, **asked,
                                  "time": clock.format_datetime(self.national.clock.now())}
        if order.status not in _PAID:
            record.update(refStatus="FAIL", message="order is not settled")
        elif expire:
            record.update(refStatus="EXP", message="the refund expired before the fund answered (退费超时)")
        else:
            problem = self._refundable(order, kind, asked)
            if problem:
                record.update(refStatus="FAIL", message=problem)
            else:
                self._apply_refund(order, kind, asked, record)
        order.refunds.append(record)
        return self._refund_answer(order, record)

    @staticmethod
    def _refund_answer(order: MobileOrder, record: dict[str, Any]) -> dict[str, Any]:
        answer = {"refStatus": record["refStatus"], "payOrdId": order.pay_ord_id, "appRefdSn": record["appRefdSn"]}
        if record.get("hiDocSn"):
            answer["hiDocSn"] = record["hiDocSn"]
        if record.get("message"):
            answer["message"] = record["message"]
        return answer

    def _refundable(self, order: MobileOrder, kind: str, asked: dict[str, Decimal]) -> str | None:
        a = order.amounts
        cash_left = money(a["ownPayAmt"] - order.cash_refunded)
        acct_left, fund_left = (ZERO, ZERO) if order.hi_refunded else (a["psnAcctPay"], a["fundPay"])
        want = {"ALL": (cash_left, acct_left, fund_left), "CASH": (cash_left, ZERO, ZERO),
                "HI": (ZERO, acct_left, fund_left)}[kind]
        got = (asked["cashRefdAmt"], asked["psnAcctRefdAmt"], asked["fundRefdAmt"])
        if got != want or asked["totlRefdAmt"] != money(sum(want, ZERO)):
            return (f"refdType {kind} must refund what remains of its part(s): cash {want[0]}, account {want[1]}, "
                    f"fund {want[2]}")
        if kind in ("ALL", "HI") and order.hi_refunded:
            return "the insurance part is refunded already"
        if kind == "CASH" and cash_left == ZERO:
            return "no cash part left to refund"
        if asked["totlRefdAmt"] == ZERO:
            return "nothing to refund"
        return None

    def _apply_refund(self, order: MobileOrder, kind: str, asked: dict[str, Decimal], record: dict[str, Any]) -> None:
        now = self.national.clock.now()
        if kind in ("ALL", "HI"):
            original = self.ledger.settlements[order.setl_id]
            person = self.ledger.persons[order.psn_no]
            person.balance = money(person.balance + original.amounts.get("acct_pay", ZERO))
            cancel_id = self.national.new_id()
            negative = {k: -v for k, v in original.amounts.items()}
            self.ledger.settlements[cancel_id] = Settlement(
                setl_id=cancel_id, mdtrt_id=original.mdtrt_id, psn_no=original.psn_no,
                fixmedins_code=original.fixmedins_code, infno="6203", msgid=str(record["appRefdSn"]), setl_time=now,
                insutype=original.insutype, med_type=original.med_type, clr_type=original.clr_type,
                clr_way=original.clr_way, clr_optins=original.clr_optins, refd_setl_flag="1", amounts=negative,
                orig_setl_id=original.setl_id,
                setlinfo={**original.setlinfo, **{k: money(v) for k, v in negative.items()}, "setl_id": cancel_id,
                          "setl_time": clock.format_datetime(now), "balc": person.balance})
            original.status = "cancelled"
            original.cancel_setl_id = cancel_id
            order.hi_refunded = True
            record["hiDocSn"] = cancel_id
        order.cash_refunded = money(order.cash_refunded + asked["cashRefdAmt"])
        record["refStatus"] = "SUCC"
        self._restate(order)

    def _restate(self, order: MobileOrder) -> None:
        cash_left = money(order.amounts.get("ownPayAmt", ZERO) - order.cash_refunded)
        if order.hi_refunded and cash_left == ZERO:
            order.status = ORD_REFUNDED
        elif order.hi_refunded:
            order.status = ORD_HI_REFUNDED
        elif order.cash_refunded > ZERO:
            order.status = ORD_CASH_REFUNDED if cash_left == ZERO else ORD_SETTLED
        # else: unchanged

    def _reflect_counter_cancellation(self, order: MobileOrder) -> None:
        """A 2208 at the counter cancelled the order's settlement: the insurance part is refunded."""
        if not order.setl_id or order.hi_refunded:
            return
        settlement = self.ledger.settlements.get(order.setl_id)
        if settlement is None or settlement.status != "cancelled":
            return
        order.hi_refunded = True
        order.refunds.append({"appRefdSn": "", "refdType": "HI", "refStatus": "SUCC", "via": "2208",
                              "totlRefdAmt": money(order.amounts["psnAcctPay"] + order.amounts["fundPay"]),
                              "cashRefdAmt": ZERO, "psnAcctRefdAmt": order.amounts["psnAcctPay"],
                              "fundRefdAmt": order.amounts["fundPay"], "hiDocSn": settlement.cancel_setl_id,
                              "time": clock.format_datetime(self.national.clock.now())})
        self._restate(order)

    # --- 6301, 6401 ---------------------------------------------------------------------------------------------

    def order_view(self, order: MobileOrder) -> dict[str, Any]:
        self._reflect_counter_cancellation(order)
        trace = order.setl_time or order.created
        view: dict[str, Any] = {
            "payOrdId": order.pay_ord_id, "ordStas": order.status, "feeSumamt": order.fee_sumamt,
            **{k: v for k, v in order.amounts.items() if k != "feeSumamt"},
            "setlType": "2" if order.amounts else "", "callType": "SETL", "medOrgOrd": order.med_org_ord,
            "traceTime": trace.strftime("%Y%m%d%H%M%S"), "revsToken": "RT" + order.pay_ord_id[3:],
            "psnNo": order.psn_no, "insutype": order.insutype,
            "refdList": [{k: v for k, v in r.items() if k not in ("time", "message")} for r in order.refunds],
        }
        if order.setl_id:
            view.update(hiDocSn=order.setl_id, hiRgstSn=order.mdtrt_id)
        return view

    def _query(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        order = self._order(data, version)
        self._token(data, order)
        return self.order_view(order)

    def _revoke(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        order = self._order(data, version)
        self._token(data, order)
        if order.status == ORD_REVOKED:
            return {"success": True, "message": "revoked"}  # the same revocation again
        if order.status != ORD_UPLOADED:
            raise MobilePayRefusal(f"payOrdId: the order is {ORD_STATES.get(order.status, order.status)}; "
                                   "only an unpaid upload can be revoked")
        order.status = ORD_REVOKED
        return {"success": True, "message": "revoked"}

    # --- the callback -------------------------------------------------------------------------------------------

    def callback_data(self, order: MobileOrder, org_name: str = "定点医疗机构", *, partial: bool = False
                      ) -> dict[str, Any]:
        """The settlement-result notification; ``partial`` (the fault ``callback:partial``): one without the
        final status (ordStas 2, no amounts), which the hospital must confirm by 6301."""
        when = order.setl_time or self.national.clock.now()
        data: dict[str, Any] = {
            "ordStas": order.status, "callType": "SETL", "payOrdId": order.pay_ord_id, "medOrgOrd": order.med_org_ord,
            "traceTime": when.strftime("%Y%m%d%H%M%S"), "feeSumamt": order.amounts.get("feeSumamt", ZERO),
            "ownpayAmt": order.amounts.get("ownPayAmt", ZERO), "psnAcctPay": order.amounts.get("psnAcctPay", ZERO),
            "fundPay": order.amounts.get("fundPay", ZERO), "hiChrgTime": when.strftime("%Y%m%d%H%M%S"),
            "hiDocSn": order.setl_id, "hiRgstSn": order.mdtrt_id, "orgName": org_name,
            "orgCode": order.org_codg, "ecCode": "", "setlType": "2", "revsToken": "RT" + order.pay_ord_id[3:],
            "extData": {},
        }
        if partial:
            data["ordStas"] = "2"
            for key in ("feeSumamt", "ownpayAmt", "psnAcctPay", "fundPay", "hiDocSn", "hiRgstSn"):
                data.pop(key)
        return data


def mp_timestamp(now: dt.datetime, epoch_ms: bool) -> str:
    return str(int(now.timestamp() * 1000)) if epoch_ms else now.strftime("%Y%m%d%H%M%S")
