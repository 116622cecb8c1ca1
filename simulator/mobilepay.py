"""Mobile pay 2.0 (医保移动支付): 6201 upload → 6202 order (settles) → callback; 6203 refund, 6301 query,
6401 revoke — the order state machine, kept apart from the national ledger (reconciliation reports mobile
orders separately).

Order states (ordStas), chosen inside the ranges mobilepay.md reports (0-2 processing, 3-6 settled,
7-13 cancelled, 14-16 failed):
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
from .state import MobileOrder

__all__ = ["ORD_UPLOADED", "ORD_SETTLED", "ORD_REVOKED", "ORD_REFUNDED", "ORD_STATES", "MobilePlatform", "MP_PATHS"]

ORD_UPLOADED = "1"
ORD_SETTLED = "4"
ORD_REVOKED = "7"
ORD_REFUNDED = "9"
ORD_STATES = {ORD_UPLOADED: "已上传待支付", ORD_SETTLED: "已结算", ORD_REVOKED: "已撤销", ORD_REFUNDED: "已退款"}

#: path tail -> transaction number (mobilepay.md, "paths as seen in one province")
MP_PATHS = {"uldFeeInfo": "6201", "pay_order": "6202", "refund_Order": "6203", "query_order_info": "6301",
            "revoke_order": "6401"}


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

    def handle(self, infno: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise MobilePayRefusal("data: must be a JSON object")
        with self.ledger.lock:
            return {"6201": self._upload, "6202": self._pay, "6203": self._refund, "6301": self._query,
                    "6401": self._revoke}[infno](data)

    def _order(self, data: dict[str, Any]) -> MobileOrder:
        order = self.ledger.orders.get(_need(data, "payOrdId"))
        if order is None:
            raise MobilePayRefusal("payOrdId: no such order")
        if data.get("orgCodg") and str(data["orgCodg"]) != order.org_codg:
            raise MobilePayRefusal("orgCodg: not the institution of this order")
        return order

    def _upload(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data.get("payAuthNo") or data.get("ecToken")):
            raise MobilePayRefusal("payAuthNo or ecToken: one is required")
        org = _need(data, "orgCodg")
        if org not in self.ledger.institutions:
            raise MobilePayRefusal("orgCodg: unknown institution")
        person = self.ledger.persons.get(_need(data, "psnNo"))
        if person is None:
            raise MobilePayRefusal("psnNo: unknown person")
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
                            request={k: v for k, v in data.items() if k not in ("idNo", "userName")})
        self.ledger.orders[pay_ord_id] = order
        return {"payOrdId": pay_ord_id, "payToken": order.pay_token, "ordStas": order.status}

    def _pay(self, data: dict[str, Any]) -> dict[str, Any]:
        order = self._order(data)
        if _need(data, "payToken") != order.pay_token:
            raise MobilePayRefusal("payToken: does not match the order")
        _need(data, "payAuthNo")
        if order.status != ORD_UPLOADED:
            raise MobilePayRefusal(f"payOrdId: the order is {ORD_STATES.get(order.status, order.status)}, not payable")
        flag = str(data.get("acctUsedFlag", "0"))
        if flag not in {"0", "1"}:
            raise MobilePayRefusal("acctUsedFlag: must be 0 or 1")
        person = self.ledger.persons[order.psn_no]
        split = settle(order.items, insutype=order.insutype, med_type=order.med_type, acct_used=flag == "1",
                       balance=person.balance, policy=self.national.policy)
        person.balance = money(person.balance - split.acct_pay)
        order.amounts = {"feeSumamt": split.medfee_sumamt, "ownPayAmt": split.psn_cash_pay,
                         "psnAcctPay": split.acct_pay, "fundPay": split.fund_pay_sumamt}
        order.status = ORD_SETTLED
        order.setl_time = self.national.clock.now()
        self.settled.append(order)
        return {"payOrdId": order.pay_ord_id, "ordStas": order.status, **order.amounts}

    def _refund(self, data: dict[str, Any]) -> dict[str, Any]:
        order = self._order(data)
        refd_sn = _need(data, "appRefdSn")
        if any(r["appRefdSn"] == refd_sn for r in order.refunds):
            raise MobilePayRefusal("appRefdSn: already used")
        _need(data, "appRefdTime")
        if order.status != ORD_SETTLED:
            return {"refStatus": "FAIL", "payOrdId": order.pay_ord_id, "message": "order is not settled"}
        total = _amount(data, "totlRefdAmt")
        cash, acct, fund = (_amount(data, k) for k in ("cashRefdAmt", "psnAcctRefdAmt", "fundRefdAmt"))
        kind = _need(data, "refdType")
        if kind != "ALL" or money(total) != order.amounts["feeSumamt"] or money(cash) != order.amounts["ownPayAmt"] \
                or money(acct) != order.amounts["psnAcctPay"] or money(fund) != order.amounts["fundPay"]:
            order.refunds.append({"appRefdSn": refd_sn, "refStatus": "FAIL"})
            return {"refStatus": "FAIL", "payOrdId": order.pay_ord_id,
                    "message": "only a full refund (refdType ALL, amounts equal to the order's) is accepted"}
        person = self.ledger.persons[order.psn_no]
        person.balance = money(person.balance + order.amounts["psnAcctPay"])
        order.status = ORD_REFUNDED
        order.refunds.append({"appRefdSn": refd_sn, "refStatus": "SUCC", "time": clock.format_datetime(self.national.clock.now())})
        return {"refStatus": "SUCC", "payOrdId": order.pay_ord_id, "appRefdSn": refd_sn}

    def order_view(self, order: MobileOrder) -> dict[str, Any]:
        trace = order.setl_time or order.created
        return {"payOrdId": order.pay_ord_id, "ordStas": order.status, "feeSumamt": order.fee_sumamt,
                **{k: v for k, v in order.amounts.items() if k != "feeSumamt"},
                "setlType": "2" if order.amounts else "", "callType": "SETL", "medOrgOrd": order.med_org_ord,
                "traceTime": trace.strftime("%Y%m%d%H%M%S"), "revsToken": "RT" + order.pay_ord_id[3:]}

    def _query(self, data: dict[str, Any]) -> dict[str, Any]:
        order = self._order(data)
        if _need(data, "payToken") != order.pay_token:
            raise MobilePayRefusal("payToken: does not match the order")
        return self.order_view(order)

    def _revoke(self, data: dict[str, Any]) -> dict[str, Any]:
        order = self._order(data)
        if _need(data, "payToken") != order.pay_token:
            raise MobilePayRefusal("payToken: does not match the order")
        if order.status != ORD_UPLOADED:
            raise MobilePayRefusal(f"payOrdId: the order is {ORD_STATES.get(order.status, order.status)}; only an unpaid upload can be revoked")
        order.status = ORD_REVOKED
        return {"success": True, "message": "revoked"}

    def callback_data(self, order: MobileOrder, org_name: str = "定点医疗机构") -> dict[str, Any]:
        when = order.setl_time or self.national.clock.now()
        return {
            "ordStas": order.status, "callType": "SETL", "payOrdId": order.pay_ord_id, "medOrgOrd": order.med_org_ord,
            "traceTime": when.strftime("%Y%m%d%H%M%S"), "feeSumamt": order.amounts.get("feeSumamt", ZERO),
            "ownpayAmt": order.amounts.get("ownPayAmt", ZERO), "psnAcctPay": order.amounts.get("psnAcctPay", ZERO),
            "fundPay": order.amounts.get("fundPay", ZERO), "hiChrgTime": when.strftime("%Y%m%d%H%M%S"),
            "hiDocSn": "DOC" + order.pay_ord_id[3:], "hiRgstSn": "RGS" + order.pay_ord_id[3:], "orgName": org_name,
            "orgCode": order.org_codg, "ecCode": "", "setlType": "2", "revsToken": "RT" + order.pay_ord_id[3:],
            "extData": {},
        }


def mp_timestamp(now: dt.datetime, epoch_ms: bool) -> str:
    return str(int(now.timestamp() * 1000)) if epoch_ms else now.strftime("%Y%m%d%H%M%S")
