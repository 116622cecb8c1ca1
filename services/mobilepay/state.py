"""The mobile-pay chain's state of one HIS visit (persisted as JSON in ``chain_visits.state``).

What :func:`~yibao.mobilepay.chain.MobilePayChain.next_action` decides from: the visit as HIS registered it
(patient, department, the settlement type chosen) and as registration established it on the platform (psn_no,
insutype, 参保地, mdtrt_id); its charge lines, each pending, in an order, paid, reversed or claimed by the counter;
and its orders — every channel order is one :class:`Order`, a small state machine whose platform calls
(6201 → 6202 → 6301, 6401, 6203) are decided here and resolved by the engine, so a crash or a lost answer always
finds the very same call again.

Personal data (the patient's certificate number and name, sent in 6201; the payment authorisation) is kept because
the calls need it; ``repr`` hides it.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from yibao.chains.model import ChainState
from yibao.core.money import ZERO, money
from yibao.core.results import stable_id

__all__ = [
    "Version",
    "PayType",
    "LineStatus",
    "OrderPhase",
    "FINAL_PHASES",
    "Patient",
    "Line",
    "Callback",
    "Refund",
    "WeChatOrder",
    "WeChatNotice",
    "Order",
    "Parked",
    "MobilePayState",
    "order_id_for",
    "refund_id_for",
]

Version = Literal["2.0", "1.0"]
PayType = Literal["insurance", "self_pay"]
LineStatus = Literal["pending", "ordered", "paid", "reversed", "counter"]
#: an order's life:
#:   requested → (lines claimed) new → (6201) uploaded → [pay asked: 6202] paid → (callback with the final
#:   status, or 6301) settled
#:   uploaded → (expired, cancelled, a fee reversed) revoking → (6401) revoked
#:   confirming: asking 6301 what the order is (a callback without the final status, no callback in time, a 6202
#:   answer still "paying", a refused 6202/6401 that may mean it was paid)
#:   WeChat cash part: settled on the platform → cash_pending (统一支付下单) → cash_paid … (see steps/wechat.py)
#:   refused: the order could not be made (told to the channel, nothing on the platform); failed: the platform
#:   refused it (revoked if it was uploaded)
OrderPhase = Literal["requested", "new", "uploaded", "paid", "confirming", "wechat_ordering", "wechat_pending",
                     "wechat_confirming", "settled", "revoking", "revoked", "refused", "failed"]
FINAL_PHASES: frozenset[str] = frozenset({"settled", "revoked", "refused", "failed"})


def order_id_for(channel: str, channel_order_id: str) -> str:
    """Our order id: the same channel order always names the same order (a channel's retry creates nothing)."""
    return "MP" + stable_id("mobilepay-order", channel, channel_order_id)[:16].upper()


def refund_id_for(order_id: str, channel: str, refund_request_id: str) -> str:
    return "MR" + stable_id("mobilepay-refund", order_id, channel, refund_request_id)[:16].upper()


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Patient(_Model):
    """The visit as HIS registered it (patient_registered) and registration established it (VisitFact)."""

    his_patient_id: str | None = None
    channel: str | None = None
    settle_choice: Literal["insurance", "self_pay"] = "insurance"
    med_type: str | None = None
    begntime: _dt.datetime | None = None
    ipt_otp_no: str | None = None
    dept_code: str | None = None
    dept_name: str | None = None
    caty: str | None = None
    certno: str | None = Field(None, repr=False)
    psn_name: str | None = Field(None, repr=False)
    psn_cert_type: str | None = None
    # from registration (VisitFact registered)
    psn_no: str | None = None
    insutype: str | None = None
    insuplc_admdvs: str | None = None
    mdtrt_id: str | None = None
    registered: bool = False
    self_pay: bool = False
    failed: str | None = None


class Line(_Model):
    """A charge line of the visit (2204's fields the mobile upload needs)."""

    feedetl_sn: str
    seq: int
    amount: Decimal
    cnt: Decimal
    pric: Decimal
    med_list_codg: str
    medins_list_codg: str
    medins_list_name: str | None = None
    fee_ocur_time: _dt.datetime
    med_type: str | None = None
    chrg_bchno: str | None = None
    bilg_dept_codg: str | None = None
    bilg_dept_name: str | None = None
    status: LineStatus = "pending"
    order_id: str | None = None
    init_feedetl_sn: str | None = None  #: a reversal line: the line it reverses
    reversed_by: str | None = None


class Callback(_Model):
    """A verified settlement-result notification recorded on its order (what it says; the chain decides)."""

    ord_stas: str
    trace_time: str
    received_at: _dt.datetime
    fee_sumamt: Decimal | None = None
    own_pay_amt: Decimal | None = None
    psn_acct_pay: Decimal | None = None
    fund_pay: Decimal | None = None
    hi_doc_sn: str | None = None
    hi_rgst_sn: str | None = None
    hi_chrg_time: str | None = None
    applied: bool = False  #: the chain has acted on it (settled the order, or asked 6301)


class Refund(_Model):
    """A refund of a paid order (6203): asked by a channel (the patient, the HIS window) or by finance."""

    id: str  #: appRefdSn
    request_id: str  #: the channel's refund id
    channel: str
    operator: str | None = None
    message_id: str
    refd_type: Literal["ALL", "CASH", "HI"]
    cash: Decimal
    acct: Decimal
    fund: Decimal
    pay_auth_no: str | None = Field(None, repr=False)
    ec_token: str | None = Field(None, repr=False)
    asked_at: _dt.datetime
    phase: Literal["asked", "requested", "wechat", "succeeded", "failed", "expired"] = "asked"
    internal: bool = False  #: the bridge's own (a WeChat cash part never paid: the insurance part returned)
    hi_doc_sn: str | None = None  #: the national cancellation's setl_id (ALL, HI)
    wechat_refund_id: str | None = None
    reason: str | None = None
    done_at: _dt.datetime | None = None

    @property
    def total(self) -> Decimal:
        return money(self.cash + self.acct + self.fund)


class WeChatNotice(_Model):
    """A verified WeChat Pay notification recorded on its order (what it says; the chain decides)."""

    mix_pay_status: str | None = None
    self_pay_status: str | None = None
    received_at: _dt.datetime
    applied: bool = False


class WeChatOrder(_Model):
    """The WeChat side of an order: 统一支付下单 for the cash part (see steps/wechat.py)."""

    mix_pay_type: Literal["CASH_ONLY", "INSURANCE_ONLY", "CASH_AND_INSURANCE"] = "CASH_AND_INSURANCE"
    out_trade_no: str
    cash_fee: Decimal = ZERO
    insurance_fee: Decimal = ZERO
    mix_trade_no: str | None = None
    status: Literal["new", "created", "paid", "unpaid"] = "new"
    deadline: _dt.datetime | None = None
    queries: int = 0
    notices: list[WeChatNotice] = Field(default_factory=list)


class Order(_Model):
    """One channel order and its platform order."""

    id: str
    channel: str
    channel_kind: str = "app"
    channel_order_id: str
    his_patient_id: str  #: the patient the channel says it pays for (checked against the visit)
    message_id: str  #: the request that created it
    version: Version = "2.0"
    pay_type: PayType = "insurance"
    asked_sns: list[str] | None = None  #: the lines the channel asked to pay (None: every pending line)
    asked_total: Decimal | None = None  #: the total the channel showed the patient (checked when given)
    sns: list[str] = Field(default_factory=list)
    total: Decimal = ZERO
    acct_used_flag: Literal["0", "1"] = "0"
    pay_auth_no: str | None = Field(None, repr=False)
    ec_token: str | None = Field(None, repr=False)
    auto_pay: bool = False  #: 6202 right after 6201 (a kiosk's one-step payment)
    pay_requested: bool = False  #: the patient confirmed: 6202
    cancel_requested: bool = False  #: the channel withdrew the order before paying
    operator: str | None = None
    created_at: _dt.datetime
    updated_at: _dt.datetime
    phase: OrderPhase = "requested"
    reason: str | None = None  #: why it was refused, failed or revoked
    reason_code: str | None = None
    # the platform order
    upload_no: int = 1  #: which medOrgOrd of the order (a lost 6201 is followed by the next)
    pay_ord_id: str | None = None
    pay_token: str | None = None
    uploaded_at: _dt.datetime | None = None
    expires_at: _dt.datetime | None = None  #: an uploaded order not paid by then is revoked
    pay_msgid: str | None = None  #: the 6202's msgid (orgBizSer)
    paid_at: _dt.datetime | None = None
    confirms: int = 0  #: 6301 asked so far
    confirm_at: _dt.datetime | None = None  #: when to ask 6301 (waiting for a callback or between polls)
    callbacks: list[Callback] = Field(default_factory=list)
    # the settlement
    ord_stas: str | None = None
    fee_sumamt: Decimal | None = None
    own_pay_amt: Decimal | None = None
    psn_acct_pay: Decimal | None = None
    fund_pay: Decimal | None = None
    hi_doc_sn: str | None = None  #: the national setl_id (3201/3202, 2208)
    hi_rgst_sn: str | None = None  #: the national mdtrt_id
    setl_time: _dt.datetime | None = None
    settled_by: str | None = None  #: 6202 | callback | 6301
    revoke_reason: str | None = None
    wechat: WeChatOrder | None = None
    refunds: list[Refund] = Field(default_factory=list)

    @property
    def med_org_ord(self) -> str:
        """The hospital's order number on the platform (WeChat's serial_no): the order id and its upload."""
        return f"{self.id}-{self.upload_no}"

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES

    @property
    def settled(self) -> bool:
        return self.phase == "settled"

    def refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.id == refund_id), None)

    def refunded(self) -> tuple[Decimal, Decimal, Decimal]:
        """(cash, account, fund) refunded or being refunded."""
        live = [r for r in self.refunds if r.phase in ("asked", "requested", "wechat", "succeeded")]
        return (money(sum((r.cash for r in live), ZERO)), money(sum((r.acct for r in live), ZERO)),
                money(sum((r.fund for r in live), ZERO)))

    def refundable(self) -> tuple[Decimal, Decimal, Decimal]:
        """(cash, account, fund) still refundable."""
        cash, acct, fund = self.refunded()
        return (money((self.own_pay_amt or ZERO) - cash), money((self.psn_acct_pay or ZERO) - acct),
                money((self.fund_pay or ZERO) - fund))


class Parked(_Model):
    reason_code: str
    reason: str


class MobilePayState(ChainState):
    patient: Patient = Field(default_factory=Patient)
    known: bool = False  #: HIS's registration event was read
    cancelled: bool = False  #: 退号: nothing more is paid on this visit
    lines: dict[str, Line] = Field(default_factory=dict)
    seq: int = 0
    orders: list[Order] = Field(default_factory=list)
    counter_requests: list[str] = Field(default_factory=list)  #: HIS settlement requests at the counter
    counter_applied: int = 0  #: how many of them the chain has acted on
    hold: Parked | None = None
    parked: Parked | None = None

    #: the index rows as they were loaded (the store writes only what changed)
    _index: dict[str, tuple] = PrivateAttr(default_factory=dict)
    _visit: tuple | None = PrivateAttr(default=None)

    # --- reading -----------------------------------------------------------------------------------------------

    def order(self, order_id: str) -> Order | None:
        return next((o for o in self.orders if o.id == order_id), None)

    def order_by_pay_ord_id(self, pay_ord_id: str) -> Order | None:
        return next((o for o in self.orders if o.pay_ord_id == pay_ord_id), None)

    def pending_lines(self) -> list[Line]:
        """Lines a channel may pay now, in HIS order (reversal lines are never paid)."""
        return sorted((line for line in self.lines.values() if line.status == "pending" and line.init_feedetl_sn
                       is None and line.amount > ZERO), key=lambda line: line.seq)

    def pending_total(self) -> Decimal:
        return money(sum((line.amount for line in self.pending_lines()), ZERO))

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders if not o.final]
