"""Typed shapes of the mobile-pay 2.0 messages (mobilepay.md), checked at the boundary in both directions.

Requests (``In6201`` … ``In6401``) are checked before anything is sent: a missing or malformed field raises
:class:`~yibao.envelope.errors.EnvelopeValidationError` naming the transaction, the field and the rule, and
nothing leaves the process. Answers (``Out6201`` …) and the settlement-result notification
(:class:`SettlementNotice`) are read leniently (platforms add fields) but the fields the bridge acts on are
typed: amounts are Decimal (a float is refused), statuses and ids text.

Field names are the platform's (camelCase); provinces' extra fields pass through untouched.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from yibao.envelope.errors import EnvelopeValidationError

__all__ = [
    "Amount",
    "FeeDetail",
    "In6201",
    "In6202",
    "In6203",
    "In6301",
    "In6401",
    "Out6201",
    "OrderView",
    "Out6203",
    "Out6401",
    "SettlementNotice",
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "check_input",
    "read_output",
]


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, float):
        raise ValueError("amounts must not be floats")
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


def _two_places(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite():
        raise ValueError("not a finite amount")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("at most two decimal places")
    return value


Amount = Annotated[Decimal, BeforeValidator(_exact)]
OptAmount = Annotated[Decimal | None, BeforeValidator(_exact)]
Text = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, (int, Decimal)) and not isinstance(v, bool)
                                      else v)]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="allow", hide_input_in_errors=True, str_strip_whitespace=True)


class FeeDetail(_In):
    """One line of 6201 ``feedetailList``."""

    feedetlSn: str = Field(min_length=1, max_length=30)
    medListCodg: str = Field(min_length=1, max_length=50)
    medinsListCodg: str = Field(min_length=1, max_length=150)
    detItemFeeSumamt: Amount
    cnt: Amount
    pric: Amount
    feeOcurTime: str = Field(min_length=1, max_length=19)
    chrgBchno: str | None = Field(None, max_length=30)
    medType: str | None = Field(None, max_length=6)
    bilgDeptCodg: str | None = Field(None, max_length=30)
    bilgDeptName: str | None = Field(None, max_length=100)
    medinsListName: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _money(self) -> FeeDetail:
        _two_places(self.detItemFeeSumamt)
        return self


class _Auth(_In):
    payAuthNo: str | None = Field(None, max_length=64, repr=False)
    ecToken: str | None = Field(None, max_length=1024, repr=False)


class In6201(_Auth):
    """费用明细上传."""

    orgCodg: str = Field(min_length=1, max_length=30)
    psnNo: str = Field(min_length=1, max_length=30)
    insutype: str = Field(min_length=1, max_length=6)
    medOrgOrd: str = Field(min_length=1, max_length=40)
    medType: str = Field(min_length=1, max_length=6)
    medfeeSumamt: Amount
    feedetailList: list[FeeDetail] = Field(min_length=1)
    begntime: str | None = Field(None, max_length=19)
    idNo: str | None = Field(None, max_length=50, repr=False)
    userName: str | None = Field(None, max_length=50, repr=False)
    idType: str | None = Field(None, max_length=6)
    insuCode: str | None = Field(None, max_length=6)
    iptOtpNo: str | None = Field(None, max_length=30)
    deptName: str | None = Field(None, max_length=100)
    deptCode: str | None = Field(None, max_length=30)
    caty: str | None = Field(None, max_length=10)
    feeType: str | None = Field(None, max_length=6)
    psnSetlway: str | None = Field(None, max_length=6)
    chrgBchno: str | None = Field(None, max_length=30)
    pubHospRfomFlag: str | None = Field(None, max_length=3)
    mdtrtId: str | None = Field(None, max_length=30)

    @model_validator(mode="after")
    def _rules(self) -> In6201:
        if not (self.payAuthNo or self.ecToken):
            raise ValueError("payAuthNo or ecToken: one is required")
        _two_places(self.medfeeSumamt)
        total = sum((d.detItemFeeSumamt for d in self.feedetailList), Decimal("0"))
        if total != self.medfeeSumamt:
            raise ValueError("medfeeSumamt: differs from the sum of feedetailList[].detItemFeeSumamt")
        return self


class In6202(_In):
    """支付下单."""

    payAuthNo: str = Field(min_length=1, max_length=64, repr=False)
    payOrdId: str = Field(min_length=1, max_length=40)
    payToken: str = Field(min_length=1, max_length=64)
    orgCodg: str = Field(min_length=1, max_length=30)
    orgBizSer: str = Field(min_length=1, max_length=40)
    acctUsedFlag: Literal["0", "1"] = "0"
    chrgBchno: str | None = Field(None, max_length=30)
    feeType: str | None = Field(None, max_length=6)
    mdtrtId: str | None = Field(None, max_length=30)


class In6203(_Auth):
    """医保退费."""

    payOrdId: str = Field(min_length=1, max_length=40)
    appRefdSn: str = Field(min_length=1, max_length=40)
    appRefdTime: str = Field(pattern=r"^\d{14}$")
    totlRefdAmt: Amount
    cashRefdAmt: Amount
    psnAcctRefdAmt: Amount
    fundRefdAmt: Amount
    refdType: Literal["ALL", "CASH", "HI"]
    orgCodg: str | None = Field(None, max_length=30)
    expContent: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _adds_up(self) -> In6203:
        for name in ("totlRefdAmt", "cashRefdAmt", "psnAcctRefdAmt", "fundRefdAmt"):
            value = _two_places(getattr(self, name))
            if value is not None and value < 0:
                raise ValueError(f"{name}: must not be negative")
        if self.cashRefdAmt + self.psnAcctRefdAmt + self.fundRefdAmt != self.totlRefdAmt:
            raise ValueError("totlRefdAmt: differs from cashRefdAmt + psnAcctRefdAmt + fundRefdAmt")
        if self.refdType == "CASH" and (self.psnAcctRefdAmt or self.fundRefdAmt):
            raise ValueError("refdType CASH refunds cash only (psnAcctRefdAmt and fundRefdAmt must be 0)")
        if self.refdType == "HI" and self.cashRefdAmt:
            raise ValueError("refdType HI refunds the insurance part only (cashRefdAmt must be 0)")
        return self


class In6301(_In):
    """医保订单结算结果查询."""

    payOrdId: str = Field(min_length=1, max_length=40)
    payToken: str = Field(min_length=1, max_length=64)
    orgCodg: str = Field(min_length=1, max_length=30)
    idNo: str | None = Field(None, max_length=50, repr=False)
    userName: str | None = Field(None, max_length=50, repr=False)
    idType: str | None = Field(None, max_length=6)


class In6401(In6301):
    """费用明细上传撤销 (the fields of 6301)."""


class Out6201(_Out):
    payOrdId: Text = Field(min_length=1)
    payToken: Text = Field(min_length=1)


class Refund(_Out):
    """One refund of an order as 6301 lists it (the simulator's ``refdList``; assumed field names)."""

    appRefdSn: Text
    refStatus: Text
    refdType: Text | None = None
    totlRefdAmt: OptAmount = None
    cashRefdAmt: OptAmount = None
    psnAcctRefdAmt: OptAmount = None
    fundRefdAmt: OptAmount = None
    hiDocSn: Text | None = None


class OrderView(_Out):
    """An order as 6202 and 6301 answer it (6301 adds medOrgOrd, traceTime, setlType … and the refunds)."""

    payOrdId: Text = Field(min_length=1)
    ordStas: Text
    feeSumamt: OptAmount = None
    ownPayAmt: OptAmount = None
    psnAcctPay: OptAmount = None
    fundPay: OptAmount = None
    medOrgOrd: Text | None = None
    traceTime: Text | None = None
    setlType: Text | None = None
    callType: Text | None = None
    revsToken: Text | None = None
    hiDocSn: Text | None = None
    hiRgstSn: Text | None = None
    refdList: list[Refund] = Field(default_factory=list)


class Out6203(_Out):
    refStatus: Text
    payOrdId: Text | None = None
    appRefdSn: Text | None = None
    hiDocSn: Text | None = None
    message: Text | None = None


class Out6401(_Out):
    success: bool | Text | None = None
    message: Text | None = None


class SettlementNotice(_Out):
    """医保结算结果通知 — the settlement-result callback's data, once verified and decrypted."""

    payOrdId: Text = Field(min_length=1, max_length=40)
    ordStas: Text = Field(min_length=1, max_length=6)
    traceTime: Text = Field(min_length=1, max_length=20)
    medOrgOrd: Text | None = Field(None, max_length=40)
    callType: Text | None = None
    feeSumamt: OptAmount = None
    ownpayAmt: OptAmount = None
    psnAcctPay: OptAmount = None
    fundPay: OptAmount = None
    hiChrgTime: Text | None = None
    hiDocSn: Text | None = None
    hiRgstSn: Text | None = None
    orgCode: Text | None = None
    setlType: Text | None = None
    revsToken: Text | None = None
    extData: dict[str, Any] | None = None


INPUT_MODELS: dict[str, type[_In]] = {"6201": In6201, "6202": In6202, "6203": In6203, "6301": In6301,
                                      "6401": In6401}
OUTPUT_MODELS: dict[str, type[_Out]] = {"6201": Out6201, "6202": OrderView, "6203": Out6203, "6301": OrderView,
                                        "6401": Out6401}


def _first(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(p) for p in err["loc"]) or "data"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return path, msg


def check_input(infno: str, data: Any) -> dict[str, Any]:
    """``data`` checked against the transaction's model: the plain dict to send (None members left out), or
    EnvelopeValidationError(infno, data.<field>, rule)."""
    model = INPUT_MODELS.get(infno)
    if not isinstance(data, dict):
        raise EnvelopeValidationError(infno, "data", "object_required")
    if model is None:
        return dict(data)
    try:
        checked = model.model_validate(data)
    except ValidationError as exc:
        path, msg = _first(exc)
        raise EnvelopeValidationError(infno, f"data.{path}", msg) from None
    return checked.model_dump(mode="python", exclude_none=True)


def read_output(infno: str, data: Any) -> Any:
    """The typed answer of ``infno`` (ValueError naming the field when it lacks what the bridge needs)."""
    model = OUTPUT_MODELS.get(infno)
    if model is None:
        return data
    try:
        return model.model_validate(data if isinstance(data, dict) else {})
    except ValidationError as exc:
        path, msg = _first(exc)
        raise ValueError(f"{infno} answer: {path}: {msg}") from None
