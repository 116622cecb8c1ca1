"""Canonical HIS events: what the hospital's HIS did, in the national platform's vocabulary, with the HIS's own ids.

Every change the HIS makes that a 医保 chain cares about becomes exactly one of the event types below (a pydantic
discriminated union on ``type``). Field names follow the national interface (2201/2203/2204/2301/2401-2403/
2206-2207/2303-2304) wherever the HIS knows the value, so the chains copy fields instead of translating them;
fields only the platform knows (mdtrt_id, setl_id, psn_no) are *not* here — the chains look them up.

Conventions:

* ``his_visit_id`` is the HIS's outpatient registration id or inpatient admission id. It is the Kafka key of
  the canonical topic, which keeps the events of one visit in order.
* Money is Decimal (16,2), counts (16,4), prices (16,6) — quantized here with :mod:`yibao.core.money`; a float
  is refused, it has already lost the cents.
* Times are aware datetimes in Asia/Shanghai; a naive value is taken to be Shanghai wall time.
* Personal fields (certno, mdtrt_cert_no, psn_name, tel, coner_name, card_sn) are ``repr=False``: a repr, a
  ``str()`` or an f-string of an event never shows them. ``to_json()`` does carry them — the chains need them —
  so the canonical topic is as sensitive as the HIS database it mirrors.
* ``visit_info`` events may carry part of a visit's diagnoses: HIS doctor stations write diagnoses one row at a
  time. Consumers merge diagnoses by ``(diag_type, diag_srt_no)``; a later one replaces an earlier one and
  ``vali_flag == "0"`` withdraws it.
"""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from yibao.core import money as _money
from yibao.core.clock import ShanghaiTime
from yibao.core.errors import DecodeError

__all__ = [
    "PERSONAL_FIELDS",
    "EVENT_TYPES",
    "EVENT_MODELS",
    "Money",
    "Count",
    "Price",
    "EventSource",
    "Diagnosis",
    "HisEventBase",
    "PatientRegistered",
    "VisitInfo",
    "ChargeLineAdded",
    "ChargeLineReversed",
    "Admission",
    "AdmissionChanged",
    "Discharge",
    "SettlementRequested",
    "RefundRequested",
    "Cancellation",
    "FilingKind",
    "FILING_INFNOS",
    "FilingRequested",
    "FilingRevoked",
    "HisEvent",
    "event_object",
    "parse_event",
    "validation_reason",
]

#: fields whose values are personal data: never in a repr, a log line or an error message
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {"certno", "mdtrt_cert_no", "psn_name", "tel", "coner_name", "card_sn", "addr", "agnter_name", "agnter_certno",
     "agnter_tel", "agnter_addr"}
)


def _decimal_in(value: Any) -> Any:
    """Refuse floats before pydantic's own Decimal coercion (which would happily take 0.1 + 0.2)."""
    if isinstance(value, float):
        raise ValueError("amounts must not be floats; pass a str or Decimal")
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    return value


def _exact(what: str, digits: int, quantum: Decimal) -> Any:
    """An after-validator: the value fits the platform's (digits, scale) exactly and is returned at that scale.

    More decimals than the scale are refused, never rounded (0.00001 is not a 0.00 charge line), and so is a
    value beyond the precision (1E+400 is bad input, not a transient failure of the decimal context)."""
    scale = -quantum.as_tuple().exponent  # type: ignore[operator]
    integer_digits = digits - scale

    def check(value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError(f"{what} must be a finite number")
        if not value.is_zero() and value.adjusted() >= integer_digits:
            raise ValueError(f"{what} has more than {integer_digits} integer digits (the platform's "
                             f"({digits},{scale}))")
        exact = value.quantize(quantum)
        if exact != value:
            raise ValueError(f"{what} has more than {scale} decimals; it is refused, never rounded")
        return exact

    return check


Money = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_exact("an amount", 16, _money.MONEY))]
Count = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_exact("a count", 16, _money.COUNT))]
Price = Annotated[Decimal, BeforeValidator(_decimal_in), AfterValidator(_exact("a price", 16, _money.PRICE))]
_CENT = Decimal("0.01")

VisitKind = Literal["outpatient", "inpatient"]
Flag = Literal["0", "1"]


def _personal(**kwargs: Any) -> Any:
    return Field(default=None, repr=False, **kwargs)


class _Frozen(BaseModel):
    # hide_input_in_errors: a ValidationError's text must never carry a certno or a name
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)


class EventSource(_Frozen):
    """Where a canonical event came from: the CDC message and the database change behind it.

    ``position`` holds the connector's own coordinates of the change (Oracle scn/commit_scn, MySQL file/pos/row,
    PostgreSQL lsn, SQL Server change_lsn/commit_lsn/event_serial_no) as strings, when the message carried them.
    """

    topic: str
    partition: int
    offset: int
    table: str
    op: Literal["c", "u", "d", "r"] | None = None
    connector: str | None = None
    position: dict[str, str] = Field(default_factory=dict)
    ts_ms: int | None = None


class Diagnosis(_Frozen):
    """One diagnosis (2203/2401/2402 ``diseinfo``)."""

    diag_type: str
    diag_srt_no: int = Field(ge=0)
    diag_code: str
    diag_name: str
    diag_dept: str | None = None
    dise_dor_no: str | None = None
    dise_dor_name: str | None = None
    diag_time: ShanghaiTime | None = None
    vali_flag: Flag = "1"
    maindiag_flag: Flag = "0"
    adm_cond: str | None = None


class HisEventBase(_Frozen):
    """Fields every canonical HIS event carries."""

    #: model field names that are filled by the ingest machinery, never by a mapping file
    SYSTEM_FIELDS: ClassVar[frozenset[str]] = frozenset({"event_id", "type", "source"})

    event_id: str = Field(min_length=8, max_length=64)
    type: str
    his_visit_id: str = Field(min_length=1, max_length=64)
    visit_kind: VisitKind
    his_patient_id: str = Field(min_length=1, max_length=64)
    occurred_at: ShanghaiTime
    source: EventSource
    #: the HIS operator who caused the change (cashier, doctor), when the HIS records one (envelope opter)
    opter: str | None = None
    opter_name: str | None = None

    def to_json(self) -> bytes:
        """UTF-8 JSON; Decimals as strings (exact), datetimes ISO-8601 with +08:00."""
        return self.model_dump_json().encode("utf-8")


# ----------------------------------------------------------------------------------------------------------------
# outpatient


class PatientRegistered(HisEventBase):
    """门诊挂号: enough for 1101 (who is this) and 2201 (register the visit)."""

    type: Literal["patient_registered"] = "patient_registered"
    visit_kind: Literal["outpatient"] = "outpatient"
    ipt_otp_no: str
    mdtrt_cert_type: str = Field(description="01 电子凭证令牌, 02 身份证, 03 社保卡")
    mdtrt_cert_no: str | None = _personal()
    card_sn: str | None = _personal()
    psn_cert_type: str | None = None
    certno: str | None = _personal()
    psn_name: str | None = _personal()
    insutype: str | None = None
    med_type: str
    begntime: ShanghaiTime
    dept_code: str
    dept_name: str
    caty: str | None = None
    atddr_no: str | None = None
    dr_name: str | None = None
    reg_fee: Money | None = None
    reg_type: str | None = Field(default=None, description="挂号性质 (HIS code, e.g. 普通/专家/急诊)")
    channel: Literal["counter", "kiosk", "wechat", "other"] = "counter"
    settle_choice: Literal["insurance", "self_pay"] = "insurance"


class VisitInfo(HisEventBase):
    """就诊信息 (2203): the visit's medical facts and (some of) its diagnoses."""

    type: Literal["visit_info"] = "visit_info"
    med_type: str | None = None
    begntime: ShanghaiTime | None = None
    main_cond_dscr: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    birctrl_type: str | None = None
    birctrl_matn_date: _dt.date | None = None
    matn_type: str | None = None
    geso_val: int | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# charge lines (2204 outpatient, 2301 inpatient)


class _ChargeLine(HisEventBase):
    feedetl_sn: str = Field(min_length=1, max_length=30, description="the HIS line id, unique per visit")
    chrg_bchno: str | None = None
    rxno: str | None = None
    rx_circ_flag: Flag | None = None
    drord_no: str | None = None
    med_type: str | None = None
    dise_codg: str | None = None
    fee_ocur_time: ShanghaiTime
    med_list_codg: str = Field(min_length=1, max_length=50)
    medins_list_codg: str = Field(min_length=1, max_length=150)
    medins_list_name: str | None = None
    det_item_fee_sumamt: Money
    cnt: Count
    pric: Price
    sin_dos_dscr: str | None = None
    used_frqu_dscr: str | None = None
    prd_days: Count | None = None
    medc_way_dscr: str | None = None
    bilg_dept_codg: str | None = None
    bilg_dept_name: str | None = None
    bilg_dr_codg: str | None = None
    bilg_dr_name: str | None = None
    acord_dept_codg: str | None = None
    acord_dept_name: str | None = None
    orders_dr_code: str | None = None
    orders_dr_name: str | None = None
    hosp_appr_flag: str | None = None
    tcmdrug_used_way: str | None = None
    etip_flag: Flag | None = None
    etip_hosp_code: str | None = None
    dscg_tkdrug_flag: Flag | None = None
    matn_fee_flag: Flag | None = None
    memo: str | None = None
    trace_codes: list[str] = Field(default_factory=list, description="药品追溯码, one per dispensed package")

    @model_validator(mode="after")
    def _amount_is_cnt_times_pric(self) -> _ChargeLine:
        # the platform's own rule (2204/2301): det_item_fee_sumamt equals cnt × pric within a cent
        if self.pric < 0:
            raise ValueError("pric must not be negative (a reversal has a negative cnt, not a negative price)")
        if abs(_money.money(self.cnt * self.pric) - self.det_item_fee_sumamt) > _CENT:
            raise ValueError("det_item_fee_sumamt differs from cnt × pric by more than 0.01")
        return self


class ChargeLineAdded(_ChargeLine):
    """A charge line (费用明细) the HIS billed. Its cnt and amount are not negative: a negative line takes back
    an earlier one and must name it (a :class:`ChargeLineReversed` with ``init_feedetl_sn``)."""

    type: Literal["charge_line_added"] = "charge_line_added"

    @model_validator(mode="after")
    def _not_negative(self) -> ChargeLineAdded:
        if self.cnt < 0 or self.det_item_fee_sumamt < 0:
            raise ValueError("a negative cnt or det_item_fee_sumamt needs the line it reverses (init_feedetl_sn): "
                             "map such rows as charge_line_reversed")
        return self


class ChargeLineReversed(_ChargeLine):
    """A reversal line: a new HIS line whose ``init_feedetl_sn`` is the line it reverses; cnt and amount negative."""

    type: Literal["charge_line_reversed"] = "charge_line_reversed"
    init_feedetl_sn: str = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _negative(self) -> ChargeLineReversed:
        if self.cnt >= 0:
            raise ValueError("a reversal line must have a negative cnt")
        if self.det_item_fee_sumamt > 0:
            raise ValueError("a reversal line must not have a positive det_item_fee_sumamt")
        if self.init_feedetl_sn == self.feedetl_sn:
            raise ValueError("a reversal line needs its own feedetl_sn, distinct from init_feedetl_sn")
        return self


# ----------------------------------------------------------------------------------------------------------------
# inpatient


class _AdmissionFacts(HisEventBase):
    """2401 mdtrtinfo fields the HIS knows (everything optional here; Admission tightens what 2401 requires)."""

    visit_kind: Literal["inpatient"] = "inpatient"
    ipt_no: str | None = None
    medrcdno: str | None = None
    mdtrt_cert_type: str | None = None
    mdtrt_cert_no: str | None = _personal()
    card_sn: str | None = _personal()
    psn_cert_type: str | None = None
    certno: str | None = _personal()
    psn_name: str | None = _personal()
    insutype: str | None = None
    coner_name: str | None = _personal()
    tel: str | None = _personal()
    begntime: ShanghaiTime | None = None
    med_type: str | None = None
    atddr_no: str | None = None
    chfpdr_name: str | None = None
    adm_diag_dscr: str | None = None
    adm_dept_codg: str | None = None
    adm_dept_name: str | None = None
    adm_bed: str | None = None
    dscg_maindiag_code: str | None = None
    dscg_maindiag_name: str | None = None
    main_cond_dscr: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    oprn_oprt_code: str | None = None
    oprn_oprt_name: str | None = None
    fpsc_no: str | None = None
    matn_type: str | None = None
    birctrl_type: str | None = None
    latechb_flag: Flag | None = None
    geso_val: int | None = None
    fetts: int | None = None
    fetus_cnt: int | None = None
    pret_flag: Flag | None = None
    birctrl_matn_date: _dt.date | None = None
    dise_type_code: str | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)


class Admission(_AdmissionFacts):
    """入院 (2401)."""

    type: Literal["admission"] = "admission"
    ipt_no: str = Field(min_length=1)
    mdtrt_cert_type: str
    med_type: str
    begntime: ShanghaiTime
    adm_dept_codg: str
    adm_dept_name: str
    settle_choice: Literal["insurance", "self_pay"] = "insurance"


class AdmissionChanged(_AdmissionFacts):
    """入院信息变更 (2403): only the fields that changed need be set; ``endtime`` when the HIS corrects it."""

    type: Literal["admission_changed"] = "admission_changed"
    endtime: ShanghaiTime | None = None
    change_reason: str | None = None


class Discharge(HisEventBase):
    """出院 (2402 dscginfo)."""

    type: Literal["discharge"] = "discharge"
    visit_kind: Literal["inpatient"] = "inpatient"
    endtime: ShanghaiTime
    insutype: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    oprn_oprt_code: str | None = None
    oprn_oprt_name: str | None = None
    fpsc_no: str | None = None
    matn_type: str | None = None
    birctrl_type: str | None = None
    latechb_flag: Flag | None = None
    geso_val: int | None = None
    fetts: int | None = None
    fetus_cnt: int | None = None
    pret_flag: Flag | None = None
    birctrl_matn_date: _dt.date | None = None
    cop_flag: Flag | None = None
    dscg_dept_codg: str | None = None
    dscg_dept_name: str | None = None
    dscg_bed: str | None = None
    dscg_way: str = Field(min_length=1, description="离院方式, required by 2402")
    die_date: _dt.date | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# requests from the HIS cashier


class SettlementRequested(HisEventBase):
    """The cashier asks for a 医保 settlement (outpatient 2206→2207, inpatient 2303→2304, 中途结算 with
    mid_setl_flag). ``medfee_sumamt`` is the HIS's own total, kept for cross-checking the uploaded details.
    ``sheet_of_visit_id`` (血透) makes an outpatient request settle an inpatient account's pre-settlement sheet."""

    type: Literal["settlement_requested"] = "settlement_requested"
    his_request_id: str = Field(min_length=1, max_length=64)
    acct_used_flag: Flag = "0"
    psn_setlway: str = "01"
    mid_setl_flag: Flag = "0"
    invono: str | None = None
    medfee_sumamt: Money
    chrg_bchno: str | None = None
    mdtrt_cert_type: str | None = None
    mdtrt_cert_no: str | None = _personal()
    card_sn: str | None = _personal()
    insutype: str | None = None
    sheet_of_visit_id: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="血透 (seed 000 §6.3): the inpatient account (its his_visit_id) whose pre-settlement sheet this "
                    "outpatient request settles; the result is backfilled to that account",
    )

    @model_validator(mode="after")
    def _sheet_of_another_visit(self) -> SettlementRequested:
        if self.sheet_of_visit_id is not None and self.sheet_of_visit_id == self.his_visit_id:
            raise ValueError("sheet_of_visit_id names the inpatient account, not the visit settling its sheet")
        return self


class RefundRequested(HisEventBase):
    """退费: the cashier asks to undo a settlement (2208 / 2305). ``settlement_request_id`` names the HIS request
    that settled; ``setl_id`` is set when the HIS stored the platform's settlement id."""

    type: Literal["refund_requested"] = "refund_requested"
    his_request_id: str = Field(min_length=1, max_length=64)
    settlement_request_id: str | None = None
    setl_id: str | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _names_a_settlement(self) -> RefundRequested:
        if not self.settlement_request_id and not self.setl_id:
            raise ValueError("a refund must name the settlement: settlement_request_id or setl_id")
        return self


class Cancellation(HisEventBase):
    """退号 / 取消入院 / 取消出院: undo a registration (2202), an admission (2404) or a discharge (2405)."""

    type: Literal["cancellation"] = "cancellation"
    target: Literal["registration", "admission", "discharge"]
    his_request_id: str = Field(min_length=1, max_length=64)
    reason: str | None = None

    @model_validator(mode="after")
    def _target_fits_visit(self) -> Cancellation:
        if self.target == "registration" and self.visit_kind != "outpatient":
            raise ValueError("a registration cancellation belongs to an outpatient visit")
        if self.target in ("admission", "discharge") and self.visit_kind != "inpatient":
            raise ValueError(f"a {self.target} cancellation belongs to an inpatient visit")
        return self


# ----------------------------------------------------------------------------------------------------------------
# 备案 (filings) asked at the 医保 desk: 2501/2501A 转院, 2503 人员慢特病, 2505 人员定点, and their revocations


#: transfer (转院, 2501 — 2501A where the province uses it), chronic (人员慢特病, 2503), designated (人员定点, 2505)
FilingKind = Literal["transfer", "chronic", "designated"]
#: the filing transaction of each kind, and the one that revokes it
FILING_INFNOS: dict[str, tuple[str, str]] = {"transfer": ("2501", "2502"), "chronic": ("2503", "2504"),
                                             "designated": ("2505", "2506")}
#: what each kind needs from the HIS (the platform fields only the chain knows — psn_no, insutype — come from 1101)
_FILING_NEEDS: dict[str, tuple[str, ...]] = {
    "transfer": ("diag_code", "diag_name", "reflin_medins_no", "reflin_medins_name", "mdtrtarea_admdvs", "refl_type",
                 "refl_date", "refl_rea", "refl_opnn"),
    "chronic": ("opsp_dise_code", "opsp_dise_name", "hosp_ide_date", "diag_dr_codg", "diag_dr_name", "begndate"),
    "designated": ("biz_appy_type", "fix_srt_no", "fixmedins_code", "fixmedins_name", "begndate"),
}


class FilingRequested(HisEventBase):
    """备案 asked by the HIS. ``his_visit_id`` is the HIS filing record's own id (the key that keeps a filing and its
    revocation in order on the topic), ``his_request_id`` the request answered. The person is identified like a
    registration (mdtrt_cert_type/no for 1101); each kind needs its own fields (``_FILING_NEEDS``), named when
    missing."""

    type: Literal["filing_requested"] = "filing_requested"
    visit_kind: VisitKind = "outpatient"
    his_request_id: str = Field(min_length=1, max_length=64)
    filing: FilingKind
    mdtrt_cert_type: str = Field(description="01 电子凭证令牌, 02 身份证, 03 社保卡")
    mdtrt_cert_no: str | None = _personal()
    card_sn: str | None = _personal()
    psn_cert_type: str | None = None
    certno: str | None = _personal()
    psn_name: str | None = _personal()
    insutype: str | None = None
    tel: str | None = _personal()
    addr: str | None = _personal()
    begndate: _dt.date | None = None
    enddate: _dt.date | None = None
    memo: str | None = None
    # 转院 (2501 / 2501A)
    diag_code: str | None = None
    diag_name: str | None = None
    dise_cond_dscr: str | None = None
    reflin_medins_no: str | None = None
    reflin_medins_name: str | None = None
    mdtrtarea_admdvs: str | None = None
    hosp_agre_refl_flag: Flag | None = None
    refl_type: str | None = None
    refl_date: _dt.date | None = None
    refl_rea: str | None = None
    refl_opnn: str | None = None
    refl_old_mdtrt_id: str | None = None
    # 人员慢特病 (2503)
    opsp_dise_code: str | None = None
    opsp_dise_name: str | None = None
    hosp_ide_date: _dt.date | None = None
    diag_dr_codg: str | None = None
    diag_dr_name: str | None = None
    ide_fixmedins_no: str | None = None
    ide_fixmedins_name: str | None = None
    # 人员定点 (2505)
    biz_appy_type: str | None = None
    fix_srt_no: str | None = None
    fixmedins_code: str | None = None
    fixmedins_name: str | None = None
    agnter_name: str | None = _personal()
    agnter_cert_type: str | None = None
    agnter_certno: str | None = _personal()
    agnter_tel: str | None = _personal()
    agnter_addr: str | None = _personal()
    agnter_rlts: str | None = None

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> FilingRequested:
        missing = [f for f in _FILING_NEEDS[self.filing] if getattr(self, f) in (None, "")]
        if missing:
            raise ValueError(f"a {self.filing} filing needs {', '.join(missing)}")
        if not (self.mdtrt_cert_no or self.certno):
            raise ValueError("mdtrt_cert_no (or certno) is needed to identify the person (1101)")
        if self.enddate is not None and self.begndate is not None and self.enddate < self.begndate:
            raise ValueError("enddate is before begndate")
        return self


class FilingRevoked(HisEventBase):
    """备案撤销 (2502 / 2504 / 2506): ``filing_request_id`` names the filing (its ``his_request_id``); its
    ``his_visit_id`` is the filing record's id, like the filing's."""

    type: Literal["filing_revoked"] = "filing_revoked"
    visit_kind: VisitKind = "outpatient"
    his_request_id: str = Field(min_length=1, max_length=64)
    filing_request_id: str = Field(min_length=1, max_length=64)
    memo: str | None = None


HisEvent = Annotated[
    PatientRegistered
    | VisitInfo
    | ChargeLineAdded
    | ChargeLineReversed
    | Admission
    | AdmissionChanged
    | Discharge
    | SettlementRequested
    | RefundRequested
    | Cancellation
    | FilingRequested
    | FilingRevoked,
    Field(discriminator="type"),
]

#: event type name -> model class
EVENT_MODELS: dict[str, type[HisEventBase]] = {
    m.model_fields["type"].default: m
    for m in (
        PatientRegistered,
        VisitInfo,
        ChargeLineAdded,
        ChargeLineReversed,
        Admission,
        AdmissionChanged,
        Discharge,
        SettlementRequested,
        RefundRequested,
        Cancellation,
        FilingRequested,
        FilingRevoked,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(HisEvent)


def validation_reason(exc: ValidationError, *, limit: int = 3) -> str:
    """A ValidationError as a short reason naming fields and rules, never the input values (they may be personal)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        msg = err["msg"]
        if err["type"] == "value_error":
            # our own validators' messages name rules, not values
            msg = msg.removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def event_object(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """A canonical event's JSON object (fractions as Decimal), not yet validated: what a router peeks at (its
    ``type``) before it parses the event. Raises DecodeError naming the problem."""
    if isinstance(data, (bytes, bytearray, str)):
        try:
            data = json.loads(data, parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(f"canonical event is not valid JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise DecodeError("canonical event is not a JSON object")
    return data


def parse_event(data: bytes | str | dict[str, Any]) -> HisEventBase:
    """Read a canonical event from its JSON (bytes/str) or a dict. Raises DecodeError naming the problem."""
    data = event_object(data)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise DecodeError(f"not a canonical HIS event: {validation_reason(exc)}") from None
