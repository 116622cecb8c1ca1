"""The mobile-pay service's wire contracts: the verified callbacks it publishes, and the bodies of its channel API.

* :class:`CallbackReceived` (topic ``yibao.mobilepay.callbacks.v1``, keyed by payOrdId) — a settlement-result
  notification whose SM2 signature verified and whose encData decrypted, as the order recorded it;
* the channel API's request bodies (:class:`OrderBody`, :class:`PayBody`, :class:`RefundBody`,
  :class:`IdentityBody`): strict (an unknown field is an error naming it), amounts exact (a float is refused),
  personal fields hidden from reprs and error messages.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from yibao.core import clock

__all__ = ["CallbackReceived", "OrderBody", "PayBody", "CancelBody", "RefundBody", "IdentityBody", "Amount"]


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, float):
        raise ValueError("floats are refused; send the amount as text")
    return value


def _cents(value: Decimal) -> Decimal:
    if not value.is_finite() or abs(value) >= Decimal("1e14"):
        raise ValueError("not an amount (at most 14 digits before the point)")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
        raise ValueError("an amount has at most two decimal places")
    if value < 0:
        raise ValueError("an amount is not negative")
    return value


Amount = Annotated[Decimal, BeforeValidator(_exact), AfterValidator(_cents)]


class CallbackReceived(BaseModel):
    """A verified settlement-result notification (what the platform said, nothing of the envelope)."""

    model_config = ConfigDict(extra="forbid")

    message_id: str
    pay_ord_id: str
    ord_stas: str
    trace_time: str
    med_org_ord: str | None = None
    call_type: str | None = None
    fee_sumamt: Decimal | None = None
    ownpay_amt: Decimal | None = None
    psn_acct_pay: Decimal | None = None
    fund_pay: Decimal | None = None
    hi_doc_sn: str | None = None
    hi_rgst_sn: str | None = None
    hi_chrg_time: str | None = None
    setl_type: str | None = None
    version: str | None = None
    received_at: _dt.datetime = Field(default_factory=clock.now)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)


class OrderBody(_Body):
    """``POST /mobilepay/orders``: pay (some of) a visit's pending fees."""

    channel_order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                                  description="the channel's own order id: the same id is the same order")
    his_visit_id: str = Field(min_length=1, max_length=64)
    his_patient_id: str = Field(min_length=1, max_length=64)
    feedetl_sns: list[Annotated[str, Field(min_length=1, max_length=30)]] | None = Field(
        None, max_length=500, description="the lines to pay; absent: every pending line of the visit")
    total: Amount | None = Field(None, description="the total the patient was shown (checked)")
    pay_type: Literal["insurance", "self_pay"] = "insurance"
    pay_auth_no: str | None = Field(None, min_length=1, max_length=64, repr=False)
    ec_token: str | None = Field(None, min_length=1, max_length=1024, repr=False)
    acct_used_flag: Literal["0", "1"] = "0"
    pay_now: bool = Field(False, description="upload and pay in one step (kiosks): 6202 right after 6201")
    operator: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _rules(self) -> "OrderBody":
        if self.pay_type == "insurance" and not (self.pay_auth_no or self.ec_token):
            raise ValueError("pay_auth_no or ec_token: one is required for a 医保 payment (the 电子凭证 "
                             "authorisation, or WeChat's 免密授权)")
        if self.feedetl_sns is not None and len(set(self.feedetl_sns)) != len(self.feedetl_sns):
            raise ValueError("feedetl_sns: a line is named twice")
        return self


class PayBody(_Body):
    """``POST /mobilepay/orders/{order_id}/pay``: the patient confirms (6202)."""

    request_id: str = Field("pay", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    acct_used_flag: Literal["0", "1"] | None = None
    pay_auth_no: str | None = Field(None, min_length=1, max_length=64, repr=False)
    operator: str | None = Field(None, max_length=64)


class CancelBody(_Body):
    """``POST /mobilepay/orders/{order_id}/cancel``: withdraw an order not yet paid (6401 when uploaded)."""

    operator: str | None = Field(None, max_length=64)


class RefundBody(_Body):
    """``POST /mobilepay/orders/{order_id}/refunds``: refund a paid order (6203)."""

    refund_request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                                   description="the channel's refund id: the same id is the same refund")
    refd_type: Literal["ALL", "CASH", "HI"] = "ALL"
    pay_auth_no: str | None = Field(None, min_length=1, max_length=64, repr=False)
    ec_token: str | None = Field(None, min_length=1, max_length=1024, repr=False)
    operator: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=200)


class IdentityBody(_Body):
    """``POST /mobilepay/identity``: check the settlement type a patient chose (建档 / 资料修改 / 挂号回执)."""

    his_patient_id: str = Field(min_length=1, max_length=64)
    settle_type: str = Field(min_length=1, max_length=32, description="one of the configured settlement types")
    contract_unit: str | None = Field(None, max_length=64, description="合同单位 (市直/区直 …), when the type has them")
    mdtrt_cert_type: Literal["01", "02", "03"] = "02"
    mdtrt_cert_no: str | None = Field(None, min_length=1, max_length=1024, repr=False)
    insuplc_admdvs: str | None = Field(None, pattern=r"^\d{6}$", description="参保地 the patient names (异地)")
    his_visit_id: str | None = Field(None, max_length=64, description="a registration's own settlement type "
                                                                      "(挂号回执): 医保 → 自费 only")
    registered_type: str | None = Field(None, max_length=32, description="the type the visit was registered with")
    operator: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _cert(self) -> "IdentityBody":
        if self.settle_type != "self_pay" and not self.mdtrt_cert_no:
            raise ValueError("mdtrt_cert_no: required to check a 医保 settlement type (1101)")
        return self
