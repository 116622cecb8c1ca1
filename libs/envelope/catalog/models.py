"""Typed pydantic models of the chain transactions' inputs and outputs, for services.

Services build inputs with these and read outputs with them (money as :class:`~decimal.Decimal`, date-times
as aware Asia/Shanghai datetimes)::

    body = In2207(data=In2207Data(psn_no=..., medfee_sumamt=Decimal("120.50"), ...)).to_input()
    catalog.prepare_input("2207", body)          # the catalog formats and validates; the envelope sends
    result = Out2207.model_validate(output)      # output parsed with json.loads(..., parse_float=Decimal)

One source of truth: the YAML catalog is authoritative. These models are hand-written for readability and
static typing, and every field carries a :class:`Wire` marker with the catalog facts it claims (type, max
length, precision/scale); the unit tests walk each model against the catalog's field tree (names, required,
type, length) so they cannot drift apart. Length/dictionary enforcement is the catalog's job
(:meth:`Catalog.prepare_input`), not the models': output models must read whatever the platform sends.

Naming: ``In<infno>`` is the envelope ``input`` object, ``In<infno><Block>`` its blocks; ``Out<infno>`` the
``output`` object. Shared blocks have plain names (``Setldetail``, ``FeeResult``). Input models forbid unknown
fields (a typo fails at construction) and refuse floats; output models keep extra fields (platforms add
them). Empty strings the platform sends for absent numbers and dates read as ``None``. Validation errors never
echo input values (``hide_input_in_errors``): they may be personal data.
"""

from __future__ import annotations

import datetime as _dt
import functools
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from yibao.core.clock import as_shanghai

__all__ = [
    "Wire",
    "InputModel",
    "OutputModel",
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "FILE_ROW_MODELS",
    # 9001 / 9002
    "In9001SignIn", "In9001", "Out9001Signinoutb", "Out9001",
    "In9002SignOut", "In9002", "Out9002Signoutoutb", "Out9002",
    # 1101 / 2001
    "In1101Data", "In1101", "Out1101Baseinfo", "Out1101Insuinfo", "Out1101Idetinfo", "Out1101",
    "In2001Data", "In2001", "Out2001Trtinfo", "Out2001",
    # outpatient
    "In2201Data", "In2201", "Out2201Data", "Out2201",
    "In2202Data", "In2202", "Out2202",
    "In2203Mdtrtinfo", "Diseinfo2203", "In2203", "Out2203",
    "Feedetail2204", "In2204", "FeeResult", "Out2204",
    "In2205Data", "In2205", "Out2205",
    "In2206Data", "In2206", "Out2206Setlinfo", "Setldetail", "Out2206",
    "In2207Data", "In2207", "Out2207Setlinfo", "Out2207",
    "In2208Data", "In2208", "Out2208Setlinfo", "Out2208",
    # inpatient
    "Feedetail2301", "In2301", "Out2301",
    "In2302Data", "In2302", "Out2302",
    "In2303Data", "In2303", "Out2303",
    "In2304", "Out2304",
    "In2305Data", "In2305", "Out2305",
    "In2401Mdtrtinfo", "Diseinfo2401", "In2401", "Out2401Data", "Out2401",
    "In2402Dscginfo", "Diseinfo2402", "In2402", "Out2402",
    "In2403Adminfo", "Diseinfo2403", "In2403", "Out2403",
    "In2404Data", "In2404", "Out2404",
    "In2405Data", "In2405", "Out2405",
    "In2601Data", "In2601", "Out2601",
    # reconciliation, queries, files
    "In3201Data", "In3201", "Out3201Stmtinfo", "Out3201",
    "In3202Data", "In3202", "Out3202Fileinfo", "Out3202", "Row3202Detail", "Row3202Result",
    "In5203Data", "In5203", "Out5203Setlinfo", "Out5203",
    "In5204Data", "In5204", "Out5204Feedetail", "Out5204",
    "In5201Data", "In5201", "Out5201Mdtrtinfo", "Out5201",
    "In5303Data", "In5303", "Out5303Data", "Out5303",
    "In9101Upload", "In9101", "Out9101",
    "In9102Download", "In9102",
]


# ------------------------------------------------------------------------------------------------ wire types

@dataclass(frozen=True)
class Wire:
    """The catalog facts a model field claims: catalog type name, max length, precision, scale."""

    type: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None


def _is_text(annotation: Any) -> bool:
    """True when a field holds text (``str`` or ``str | None``, however annotated)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_text(a) for a in typing.get_args(annotation) if a is not type(None))
    return annotation is str


@functools.cache
def _non_text_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items() if not _is_text(info.annotation))


def _blank_as_none(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """The platform (and HIS) write "" for an absent number or date: read it as None (absent)."""
    if isinstance(value, str) and not value.strip() and info.field_name in _non_text_fields(model):
        return None
    return value


def _shanghai(value: _dt.datetime) -> _dt.datetime:
    return as_shanghai(value)


Text1 = Annotated[str, Wire("string", max_length=1)]
Text3 = Annotated[str, Wire("string", max_length=3)]
Text4 = Annotated[str, Wire("string", max_length=4)]
Text6 = Annotated[str, Wire("string", max_length=6)]
Text12 = Annotated[str, Wire("string", max_length=12)]
Text20 = Annotated[str, Wire("string", max_length=20)]
Text30 = Annotated[str, Wire("string", max_length=30)]
Text32 = Annotated[str, Wire("string", max_length=32)]
Text50 = Annotated[str, Wire("string", max_length=50)]
Text100 = Annotated[str, Wire("string", max_length=100)]
Text150 = Annotated[str, Wire("string", max_length=150)]
Text200 = Annotated[str, Wire("string", max_length=200)]
Text300 = Annotated[str, Wire("string", max_length=300)]
Text500 = Annotated[str, Wire("string", max_length=500)]
Text1000 = Annotated[str, Wire("string", max_length=1000)]
Text4000 = Annotated[str, Wire("string", max_length=4000)]

Money = Annotated[Decimal, Wire("decimal", precision=16, scale=2)]
Count = Annotated[Decimal, Wire("decimal", precision=16, scale=4)]
Price = Annotated[Decimal, Wire("decimal", precision=16, scale=6)]
Ratio = Annotated[Decimal, Wire("decimal", precision=5, scale=4)]
Age = Annotated[Decimal, Wire("decimal", precision=4, scale=1)]
Days = Annotated[Decimal, Wire("decimal", precision=4, scale=2)]

Int2 = Annotated[int, Wire("integer", max_length=2)]
Int3 = Annotated[int, Wire("integer", max_length=3)]
Int4 = Annotated[int, Wire("integer", max_length=4)]
Int10 = Annotated[int, Wire("integer", max_length=10)]

Date = Annotated[_dt.date, Wire("date")]
DateTime = Annotated[_dt.datetime, Wire("datetime"), AfterValidator(_shanghai)]
Bytes = Annotated[bytes, Wire("bytes")]


class InputModel(BaseModel):
    """Base of input models: unknown fields are errors, floats are refused (money is never a float)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, hide_input_in_errors=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float):
            raise ValueError("floats are refused; pass a Decimal, int or str")
        return _blank_as_none(cls, value, info)

    def to_input(self) -> dict[str, Any]:
        """The envelope ``input`` object (spec key spelling, absent optionals left out) for the catalog to
        format and validate."""
        return self.model_dump(by_alias=True, exclude_none=True)


class OutputModel(BaseModel):
    """Base of output models: extra fields are kept (platforms add them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, hide_input_in_errors=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blanks(cls, value: Any, info: ValidationInfo) -> Any:
        return _blank_as_none(cls, value, info)


# ------------------------------------------------------------------------------------------------ 9001 / 9002

class In9001SignIn(InputModel):
    opter_no: Text20
    mac: Text20 | None = None
    ip: Text20


class In9001(InputModel):
    signin: In9001SignIn = Field(alias="signIn")


class Out9001Signinoutb(OutputModel):
    sign_time: DateTime
    sign_no: Text30


class Out9001(OutputModel):
    signinoutb: Out9001Signinoutb


class In9002SignOut(InputModel):
    sign_no: Text30
    opter_no: Text20


class In9002(InputModel):
    signout: In9002SignOut = Field(alias="signOut")


class Out9002Signoutoutb(OutputModel):
    sign_time: DateTime


class Out9002(OutputModel):
    signoutoutb: Out9002Signoutoutb


# ------------------------------------------------------------------------------------------------ 1101 / 2001

class In1101Data(InputModel):
    mdtrt_cert_type: Text3
    mdtrt_cert_no: Text50
    card_sn: Text32 | None = None
    begntime: DateTime | None = None
    psn_cert_type: Text6 | None = None
    certno: Text50 | None = None
    psn_name: Text50 | None = None


class In1101(InputModel):
    data: In1101Data


class Out1101Baseinfo(OutputModel):
    psn_no: Text30
    psn_cert_type: Text6
    certno: Text50
    psn_name: Text50
    gend: Text6
    naty: Text3 | None = None
    brdy: Date | None = None
    age: Age


class Out1101Insuinfo(OutputModel):
    balc: Money
    insutype: Text6
    psn_type: Text6
    psn_insu_stas: Text6 | None = None
    psn_insu_date: Date | None = None
    paus_insu_date: Date | None = None
    cvlserv_flag: Text3
    insuplc_admdvs: Text6
    emp_name: Text200 | None = None


class Out1101Idetinfo(OutputModel):
    psn_idet_type: Text3
    psn_type_lv: Text3 | None = None
    memo: Text500 | None = None
    begntime: DateTime
    endtime: DateTime | None = None


class Out1101(OutputModel):
    baseinfo: Out1101Baseinfo
    insuinfo: list[Out1101Insuinfo] = Field(default_factory=list)
    idetinfo: list[Out1101Idetinfo] = Field(default_factory=list)


class In2001Data(InputModel):
    psn_no: Text30
    insutype: Text6
    fixmedins_code: Text12
    med_type: Text6
    begntime: DateTime
    endtime: DateTime | None = None
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    oprn_oprt_code: Text30 | None = None
    oprn_oprt_name: Text500 | None = None
    matn_type: Text6 | None = None
    birctrl_type: Text6 | None = None


class In2001(InputModel):
    data: In2001Data


class Out2001Trtinfo(OutputModel):
    psn_no: Text30
    trt_chk_type: Text6
    fund_pay_type: Text6
    trt_enjymnt_flag: Text3
    begndate: Date
    enddate: Date | None = None
    trt_chk_rslt: Text500 | None = None


class Out2001(OutputModel):
    trtinfo: list[Out2001Trtinfo] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ outpatient

class In2201Data(InputModel):
    psn_no: Text30
    insutype: Text6
    begntime: DateTime
    mdtrt_cert_type: Text3
    mdtrt_cert_no: Text50
    ipt_otp_no: Text30
    atddr_no: Text30
    dr_name: Text50
    dept_code: Text30
    dept_name: Text100
    caty: Text6


class In2201(InputModel):
    data: In2201Data


class Out2201Data(OutputModel):
    mdtrt_id: Text30
    psn_no: Text30
    ipt_otp_no: Text30


class Out2201(OutputModel):
    data: Out2201Data


class In2202Data(InputModel):
    psn_no: Text30
    mdtrt_id: Text30
    ipt_otp_no: Text30


class In2202(InputModel):
    data: In2202Data


class Out2202(OutputModel):
    """No output node."""


class In2203Mdtrtinfo(InputModel):
    mdtrt_id: Text30
    psn_no: Text30
    med_type: Text6
    begntime: DateTime
    main_cond_dscr: Text1000 | None = None
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    birctrl_type: Text6 | None = None
    birctrl_matn_date: Date | None = None
    matn_type: Text6 | None = None
    geso_val: Int2 | None = None


class Diseinfo2203(InputModel):
    diag_type: Text3
    diag_srt_no: Int2
    diag_code: Text20
    diag_name: Text100
    diag_dept: Text50
    dise_dor_no: Text30
    dise_dor_name: Text50
    diag_time: DateTime
    vali_flag: Text3


class In2203(InputModel):
    mdtrtinfo: In2203Mdtrtinfo
    diseinfo: list[Diseinfo2203]


class Out2203(OutputModel):
    """No output node."""


class Feedetail2204(InputModel):
    feedetl_sn: Text30
    mdtrt_id: Text30
    psn_no: Text30
    chrg_bchno: Text30
    dise_codg: Text30 | None = None
    rxno: Text30 | None = None
    rx_circ_flag: Text3
    fee_ocur_time: DateTime
    med_list_codg: Text50
    medins_list_codg: Text150
    det_item_fee_sumamt: Money
    cnt: Count
    pric: Price
    sin_dos_dscr: Text200 | None = None
    used_frqu_dscr: Text200 | None = None
    prd_days: Days | None = None
    medc_way_dscr: Text200 | None = None
    bilg_dept_codg: Text30
    bilg_dept_name: Text100
    bilg_dr_codg: Text30
    bilg_dr_name: Text50
    acord_dept_codg: Text30 | None = None
    acord_dept_name: Text100 | None = None
    orders_dr_code: Text30 | None = None
    orders_dr_name: Text50 | None = None
    hosp_appr_flag: Text3
    tcmdrug_used_way: Text6 | None = None
    etip_flag: Text3 | None = None
    etip_hosp_code: Text30 | None = None
    dscg_tkdrug_flag: Text3 | None = None
    matn_fee_flag: Text6 | None = None


class In2204(InputModel):
    feedetail: list[Feedetail2204]


class FeeResult(OutputModel):
    """One fee line as split by the platform (2204 / 2301 output ``result[]``)."""

    feedetl_sn: Text30
    det_item_fee_sumamt: Money
    cnt: Count
    pric: Price
    pric_uplmt_amt: Price
    selfpay_prop: Ratio | None = None
    fulamt_ownpay_amt: Money | None = None
    overlmt_amt: Money | None = None
    preselfpay_amt: Money | None = None
    inscp_scp_amt: Money | None = None
    chrgitm_lv: Text3
    med_chrgitm_type: Text6
    bas_medn_flag: Text3 | None = None
    hi_nego_drug_flag: Text3 | None = None
    chld_medc_flag: Text3 | None = None
    list_sp_item_flag: Text3 | None = None
    lmt_used_flag: Text3
    drt_reim_flag: Text3 | None = None
    memo: Text500 | None = None


class Out2204(OutputModel):
    result: list[FeeResult] = Field(default_factory=list)


class In2205Data(InputModel):
    mdtrt_id: Text30
    chrg_bchno: Text30
    psn_no: Text30


class In2205(InputModel):
    data: In2205Data


class Out2205(OutputModel):
    """No output node."""


class In2206Data(InputModel):
    psn_no: Text30
    mdtrt_cert_type: Text3
    mdtrt_cert_no: Text50
    med_type: Text6
    medfee_sumamt: Money
    psn_setlway: Text6
    mdtrt_id: Text30
    chrg_bchno: Text30
    acct_used_flag: Text1
    insutype: Text6


class In2206(InputModel):
    data: In2206Data


class Out2206Setlinfo(OutputModel):
    """Settlement figures of a pre-settlement (2206 / 2303): everything but ``setl_id``.

    Consistency the platform guarantees: medfee_sumamt = fund_pay_sumamt + psn_part_amt, and
    psn_part_amt = acct_pay + psn_cash_pay.
    """

    mdtrt_id: Text30
    psn_no: Text30
    psn_name: Text50
    psn_cert_type: Text6
    certno: Text50
    gend: Text6 | None = None
    naty: Text3 | None = None
    brdy: Date | None = None
    age: Age | None = None
    insutype: Text6 | None = None
    psn_type: Text6
    cvlserv_flag: Text3
    setl_time: DateTime
    mdtrt_cert_type: Text3 | None = None
    med_type: Text6
    medfee_sumamt: Money
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money
    act_pay_dedc: Money | None = None
    hifp_pay: Money
    pool_prop_selfpay: Ratio
    cvlserv_pay: Money
    hifes_pay: Money
    hifmi_pay: Money
    hifob_pay: Money
    maf_pay: Money
    oth_pay: Money
    fund_pay_sumamt: Money
    psn_part_amt: Money
    acct_pay: Money
    psn_cash_pay: Money
    hosp_part_amt: Money
    balc: Money
    acct_mulaid_pay: Money
    medins_setl_id: Text30
    clr_optins: Text6 | None = None
    clr_way: Text6 | None = None
    clr_type: Text6


class Setldetail(OutputModel):
    """One fund's share of a settlement (``setldetail[]``)."""

    fund_pay_type: Text6
    inscp_scp_amt: Money
    crt_payb_lmt_amt: Money
    fund_payamt: Money
    fund_pay_type_name: Text200 | None = None
    setl_proc_info: Text4000 | None = None


class Out2206(OutputModel):
    setlinfo: Out2206Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In2207Data(In2206Data):
    invono: Text20 | None = None
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money


class In2207(InputModel):
    data: In2207Data


class Out2207Setlinfo(Out2206Setlinfo):
    setl_id: Text30


class Out2207(OutputModel):
    setlinfo: Out2207Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In2208Data(InputModel):
    setl_id: Text30
    mdtrt_id: Text30
    psn_no: Text30


class In2208(InputModel):
    data: In2208Data


class Out2208Setlinfo(OutputModel):
    """The reversed settlement (2208 / 2305)."""

    mdtrt_id: Text30
    setl_id: Text30
    clr_optins: Text6 | None = None
    setl_time: DateTime
    medfee_sumamt: Money
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money
    act_pay_dedc: Money | None = None
    hifp_pay: Money
    pool_prop_selfpay: Ratio
    cvlserv_pay: Money
    hifes_pay: Money
    hifmi_pay: Money
    hifob_pay: Money
    maf_pay: Money
    oth_pay: Money
    fund_pay_sumamt: Money
    psn_part_amt: Money | None = None
    acct_pay: Money
    psn_cash_pay: Money
    hosp_part_amt: Money | None = None
    balc: Money
    acct_mulaid_pay: Money
    medins_setl_id: Text30
    hifdm_pay: Money | None = None


class Out2208(OutputModel):
    setlinfo: Out2208Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ inpatient

class Feedetail2301(InputModel):
    feedetl_sn: Text30
    init_feedetl_sn: Text30 | None = None
    mdtrt_id: Text30
    drord_no: Text30 | None = None
    psn_no: Text30
    med_type: Text6
    fee_ocur_time: DateTime
    med_list_codg: Text50
    medins_list_codg: Text150
    det_item_fee_sumamt: Money
    cnt: Count
    pric: Price
    bilg_dept_codg: Text30
    bilg_dept_name: Text100
    bilg_dr_codg: Text30
    bilg_dr_name: Text50
    acord_dept_codg: Text30 | None = None
    acord_dept_name: Text100 | None = None
    orders_dr_code: Text30 | None = None
    orders_dr_name: Text50 | None = None
    hosp_appr_flag: Text3 | None = None
    tcmdrug_used_way: Text6 | None = None
    etip_flag: Text3 | None = None
    etip_hosp_code: Text30 | None = None
    dscg_tkdrug_flag: Text3 | None = None
    matn_fee_flag: Text6 | None = None
    memo: Text500 | None = None


class In2301(InputModel):
    feedetail: list[Feedetail2301]


class Out2301(OutputModel):
    result: list[FeeResult] = Field(default_factory=list)


class In2302Data(InputModel):
    feedetl_sn: Text30
    mdtrt_id: Text30
    psn_no: Text30


class In2302(InputModel):
    data: In2302Data


class Out2302(OutputModel):
    """No output node."""


class In2303Data(InputModel):
    """Inpatient (pre-)settlement input, shared by 2303 and 2304."""

    psn_no: Text30
    mdtrt_cert_type: Text3
    mdtrt_cert_no: Text50
    medfee_sumamt: Money
    psn_setlway: Text6
    mdtrt_id: Text30
    insutype: Text6
    acct_used_flag: Text1
    invono: Text20 | None = None
    mid_setl_flag: Text3
    fulamt_ownpay_amt: Money | None = None
    overlmt_selfpay: Money | None = None
    preselfpay_amt: Money | None = None
    inscp_scp_amt: Money | None = None


class In2303(InputModel):
    data: In2303Data


class Out2303(OutputModel):
    setlinfo: Out2206Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In2304(InputModel):
    data: In2303Data


class Out2304(OutputModel):
    setlinfo: Out2207Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In2305Data(InputModel):
    mdtrt_id: Text30
    setl_id: Text30
    psn_no: Text30


class In2305(InputModel):
    data: In2305Data


class Out2305(OutputModel):
    setlinfo: Out2208Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In2401Mdtrtinfo(InputModel):
    psn_no: Text30
    insutype: Text6
    coner_name: Text50 | None = None
    tel: Text50 | None = None
    begntime: DateTime
    mdtrt_cert_type: Text3
    mdtrt_cert_no: Text50
    med_type: Text6
    ipt_no: Text30
    medrcdno: Text30 | None = None
    atddr_no: Text30
    chfpdr_name: Text50
    adm_diag_dscr: Text200
    adm_dept_codg: Text30
    adm_dept_name: Text100
    adm_bed: Text30
    dscg_maindiag_code: Text20
    dscg_maindiag_name: Text300
    main_cond_dscr: Text1000 | None = None
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    oprn_oprt_code: Text30 | None = None
    oprn_oprt_name: Text500 | None = None
    fpsc_no: Text50 | None = None
    matn_type: Text6 | None = None
    birctrl_type: Text6 | None = None
    latechb_flag: Text3 | None = None
    geso_val: Int2 | None = None
    fetts: Int3 | None = None
    fetus_cnt: Int3 | None = None
    pret_flag: Text3 | None = None
    birctrl_matn_date: Date | None = None
    dise_type_code: Text6 | None = None


class Diseinfo2401(InputModel):
    psn_no: Text30
    diag_type: Text3
    maindiag_flag: Text3
    diag_srt_no: Int2
    diag_code: Text20
    diag_name: Text100
    adm_cond: Text500 | None = None
    diag_dept: Text50
    dise_dor_no: Text30
    dise_dor_name: Text50
    diag_time: DateTime


class In2401(InputModel):
    mdtrtinfo: In2401Mdtrtinfo
    diseinfo: list[Diseinfo2401]


class Out2401Data(OutputModel):
    mdtrt_id: Text30


class Out2401(OutputModel):
    data: Out2401Data


class In2402Dscginfo(InputModel):
    mdtrt_id: Text30
    psn_no: Text30
    insutype: Text6
    endtime: DateTime
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    oprn_oprt_code: Text30 | None = None
    oprn_oprt_name: Text500 | None = None
    fpsc_no: Text50 | None = None
    matn_type: Text6 | None = None
    birctrl_type: Text6 | None = None
    latechb_flag: Text3 | None = None
    geso_val: Int2 | None = None
    fetts: Int3 | None = None
    fetus_cnt: Int3 | None = None
    pret_flag: Text3 | None = None
    birctrl_matn_date: Date | None = None
    cop_flag: Text3 | None = None
    dscg_dept_codg: Text30
    dscg_dept_name: Text100
    dscg_bed: Text30 | None = None
    dscg_way: Text3
    die_date: Date | None = None


class Diseinfo2402(InputModel):
    mdtrt_id: Text30
    psn_no: Text30
    diag_type: Text3
    maindiag_flag: Text3
    diag_srt_no: Int2
    diag_code: Text20
    diag_name: Text100
    diag_dept: Text50
    dise_dor_no: Text30
    dise_dor_name: Text50
    diag_time: DateTime


class In2402(InputModel):
    dscginfo: In2402Dscginfo
    diseinfo: list[Diseinfo2402]


class Out2402(OutputModel):
    """No output node."""


class In2403Adminfo(In2401Mdtrtinfo):
    """2401's admission data plus the visit it changes; insutype and mdtrt_cert_no become optional."""

    mdtrt_id: Text30
    endtime: DateTime | None = None
    insutype: Text6 | None = None  # type: ignore[assignment]
    mdtrt_cert_no: Text50 | None = None  # type: ignore[assignment]


class Diseinfo2403(Diseinfo2401):
    mdtrt_id: Text30


class In2403(InputModel):
    adminfo: In2403Adminfo
    diseinfo: list[Diseinfo2403] = Field(default_factory=list)


class Out2403(OutputModel):
    """No output node."""


class In2404Data(InputModel):
    mdtrt_id: Text30
    psn_no: Text30


class In2404(InputModel):
    data: In2404Data


class Out2404(OutputModel):
    """No output node."""


class In2405Data(In2404Data):
    pass


class In2405(InputModel):
    data: In2405Data


class Out2405(OutputModel):
    """No output node."""


class In2601Data(InputModel):
    psn_no: Text30
    omsgid: Text30
    oinfno: Text6


class In2601(InputModel):
    data: In2601Data


class Out2601(OutputModel):
    """No output node."""


# ------------------------------------------------------------------------------------------------ reconciliation

class In3201Data(InputModel):
    insutype: Text6
    clr_type: Text6
    setl_optins: Text6
    stmt_begndate: Date
    stmt_enddate: Date
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    acct_pay: Money
    fixmedins_setl_cnt: Int10
    refd_setl_flag: Text3 | None = None


class In3201(InputModel):
    data: In3201Data


class Out3201Stmtinfo(OutputModel):
    setl_optins: Text6 | None = None
    stmt_rslt: Text6
    stmt_rslt_dscr: Text200 | None = None


class Out3201(OutputModel):
    stmtinfo: Out3201Stmtinfo


class In3202Data(InputModel):
    setl_optins: Text6
    file_qury_no: Text30
    stmt_begndate: Date
    stmt_enddate: Date
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    cash_payamt: Money
    fixmedins_setl_cnt: Int10
    clr_type: Text6 | None = None
    refd_setl_flag: Text3 | None = None


class In3202(InputModel):
    data: In3202Data


class Out3202Fileinfo(OutputModel):
    file_qury_no: Text30
    filename: Text200
    dld_endtime: DateTime


class Out3202(OutputModel):
    fileinfo: Out3202Fileinfo


class Row3202Detail(InputModel):
    """One row of the 3202 detail file (uploaded by 9101; columns in this order)."""

    setl_id: Text30
    mdtrt_id: Text30
    psn_no: Text30
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    acct_pay: Money
    refd_setl_flag: Text3


class Row3202Result(OutputModel):
    """One row of the 3202 result file (downloaded by 9102)."""

    psn_no: Text30
    mdtrt_id: Text30
    setl_id: Text30
    msgid: Text30 | None = None
    stmt_rslt: Text6
    refd_setl_flag: Text3 | None = None
    memo: Text500 | None = None
    medfee_sumamt: Money | None = None
    fund_pay_sumamt: Money | None = None
    acct_pay: Money | None = None


# ------------------------------------------------------------------------------------------------ queries

class In5203Data(InputModel):
    psn_no: Text30
    setl_id: Text30
    mdtrt_id: Text30


class In5203(InputModel):
    data: In5203Data


class Out5203Setlinfo(OutputModel):
    setl_id: Text30
    mdtrt_id: Text30
    psn_no: Text30
    psn_name: Text50
    psn_cert_type: Text6
    certno: Text50
    gend: Text6
    naty: Text3 | None = None
    brdy: Date | None = None
    age: Age | None = None
    insutype: Text6
    psn_type: Text6
    cvlserv_flag: Text3
    flxempe_flag: Text3 | None = None
    nwb_flag: Text3 | None = None
    insu_optins: Text6 | None = None
    emp_name: Text200 | None = None
    pay_loc: Text6
    fixmedins_code: Text12
    fixmedins_name: Text200
    hosp_lv: Text6 | None = None
    fixmedins_poolarea: Text6 | None = None
    lmtpric_hosp_lv: Text6 | None = None
    dedc_hosp_lv: Text6 | None = None
    begndate: Date
    enddate: Date
    setl_time: DateTime
    mdtrt_cert_type: Text3 | None = None
    med_type: Text6
    clr_type: Text6
    clr_way: Text6 | None = None
    clr_optins: Text6 | None = None
    medfee_sumamt: Money
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money
    act_pay_dedc: Money
    hifp_pay: Money
    pool_prop_selfpay: Ratio
    cvlserv_pay: Money
    hifes_pay: Money
    hifmi_pay: Money
    hifob_pay: Money
    maf_pay: Money
    oth_pay: Money
    fund_pay_sumamt: Money
    psn_pay: Money
    acct_pay: Money
    cash_payamt: Money
    balc: Money
    acct_mulaid_pay: Money
    medins_setl_id: Text30
    refd_setl_flag: Text3
    year: Text4
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    invono: Text20 | None = None
    opter_id: Text20 | None = None
    opter_name: Text50 | None = None
    opt_time: DateTime | None = None


class Out5203(OutputModel):
    setlinfo: Out5203Setlinfo
    setldetail: list[Setldetail] = Field(default_factory=list)


class In5204Data(InputModel):
    psn_no: Text30
    setl_id: Text30 | None = None
    mdtrt_id: Text30


class In5204(InputModel):
    data: In5204Data


class Out5204Feedetail(OutputModel):
    mdtrt_id: Text30
    setl_id: Text30
    feedetl_sn: Text30
    rx_drord_no: Text30 | None = None
    med_type: Text6
    fee_ocur_time: DateTime
    cnt: Count
    pric: Price
    sin_dos_dscr: Text200 | None = None
    used_frqu_dscr: Text200 | None = None
    prd_days: Days | None = None
    medc_way_dscr: Text200 | None = None
    det_item_fee_sumamt: Money
    pric_uplmt_amt: Price
    selfpay_prop: Ratio | None = None
    fulamt_ownpay_amt: Money | None = None
    overlmt_amt: Money | None = None
    preselfpay_amt: Money | None = None
    inscp_scp_amt: Money | None = None
    chrgitm_lv: Text3
    hilist_code: Text50
    hilist_name: Text200
    list_type: Text6
    med_list_codg: Text50
    medins_list_codg: Text150
    medins_list_name: Text100
    med_chrgitm_type: Text6
    prodname: Text200 | None = None
    spec: Text200 | None = None
    dosform_name: Text200
    bilg_dept_codg: Text30 | None = None
    bilg_dept_name: Text100 | None = None
    bilg_dr_codg: Text30 | None = None
    bilg_dr_name: Text50 | None = None
    acord_dept_codg: Text30 | None = None
    acord_dept_name: Text100 | None = None
    orders_dr_code: Text30 | None = None
    orders_dr_name: Text50 | None = None
    lmt_used_flag: Text3 | None = None
    hosp_prep_flag: Text3 | None = None
    hosp_appr_flag: Text3 | None = None
    tcmdrug_used_way: Text6 | None = None
    prodplac_type: Text6 | None = None
    bas_medn_flag: Text3 | None = None
    hi_nego_drug_flag: Text3 | None = None
    chld_medc_flag: Text3 | None = None
    etip_flag: Text3 | None = None
    etip_hosp_code: Text30 | None = None
    dscg_tkdrug_flag: Text3 | None = None
    list_sp_item_flag: Text3 | None = None
    matn_fee_flag: Text6 | None = None
    drt_reim_flag: Text3 | None = None
    memo: Text500 | None = None
    opter_id: Text20 | None = None
    opter_name: Text50 | None = None
    opt_time: DateTime | None = None


class Out5204(OutputModel):
    feedetail: list[Out5204Feedetail] = Field(default_factory=list)


class In5201Data(InputModel):
    """Visits of one person that began in [begntime, endtime], optionally narrowed by med_type / mdtrt_id."""

    psn_no: Text30
    begntime: DateTime
    endtime: DateTime
    med_type: Text6 | None = None
    mdtrt_id: Text30 | None = None


class In5201(InputModel):
    data: In5201Data


class Out5201Mdtrtinfo(OutputModel):
    """One visit as the platform holds it. ``ipt_otp_no`` is the hospital's own number (2201 ipt_otp_no or
    2401 ipt_no): the key a chain matches after an unknown outcome. ``vali_flag`` is an assumed element (see
    schemas/5201.yaml): "0" marks a visit cancelled by 2202/2404; absent means valid."""

    mdtrt_id: Text30
    psn_no: Text30
    psn_cert_type: Text6
    certno: Text50
    psn_name: Text50
    gend: Text6
    naty: Text3 | None = None
    brdy: Date | None = None
    age: Age | None = None
    coner_name: Text50 | None = None
    tel: Text50 | None = None
    insutype: Text6
    psn_type: Text6
    maf_psn_flag: Text3 | None = None
    cvlserv_flag: Text3
    flxempe_flag: Text3 | None = None
    nwb_flag: Text3 | None = None
    insu_optins: Text6 | None = None
    emp_name: Text200 | None = None
    begntime: DateTime
    endtime: DateTime | None = None
    mdtrt_cert_type: Text3 | None = None
    med_type: Text6
    ars_year_ipt_flag: Text3 | None = None
    pre_pay_flag: Text3 | None = None
    ipt_otp_no: Text30 | None = None
    medrcdno: Text30 | None = None
    atddr_no: Text30 | None = None
    chfpdr_name: Text50 | None = None
    adm_dept_codg: Text30 | None = None
    adm_dept_name: Text100 | None = None
    adm_bed: Text30 | None = None
    dscg_maindiag_code: Text20 | None = None
    dscg_maindiag_name: Text300 | None = None
    dscg_dept_codg: Text30 | None = None
    dscg_dept_name: Text100 | None = None
    dscg_bed: Text30 | None = None
    dscg_way: Text3 | None = None
    main_cond_dscr: Text1000 | None = None
    dise_codg: Text30 | None = None
    dise_name: Text500 | None = None
    oprn_oprt_code: Text30 | None = None
    oprn_oprt_name: Text500 | None = None
    otp_diag_info: Text200 | None = None
    inhosp_stas: Text3 | None = None
    die_date: Date | None = None
    ipt_days: Int4 | None = None
    fpsc_no: Text50 | None = None
    matn_type: Text6 | None = None
    birctrl_type: Text6 | None = None
    latechb_flag: Text3 | None = None
    geso_val: Int2 | None = None
    fetts: Int3 | None = None
    fetus_cnt: Int3 | None = None
    pret_flag: Text3 | None = None
    birctrl_matn_date: Date | None = None
    cop_flag: Text3 | None = None
    opter_id: Text20 | None = None
    opter_name: Text50 | None = None
    opt_time: DateTime | None = None
    memo: Text500 | None = None
    vali_flag: Text3 | None = None

    @property
    def is_valid(self) -> bool:
        """False only when the platform says the visit was cancelled (vali_flag "0")."""
        return self.vali_flag != "0"


class Out5201(OutputModel):
    mdtrtinfo: list[Out5201Mdtrtinfo] = Field(default_factory=list)


class In5303Data(InputModel):
    """Open admissions in [begntime, endtime]; without psn_no, every open admission of the institution."""

    psn_no: Text30 | None = None
    begntime: DateTime
    endtime: DateTime


class In5303(InputModel):
    data: In5303Data


class Out5303Data(OutputModel):
    """One open admission. ``endtime`` (assumed element) is the 2402 discharge time of an admission discharged
    but not yet settled; absent while the person is in the ward."""

    mdtrt_id: Text30
    psn_no: Text30
    psn_cert_type: Text6
    certno: Text50
    psn_name: Text50
    gend: Text6
    brdy: Date | None = None
    age: Age
    insutype: Text6
    begndate: Date
    med_type: Text6
    ipt_otp_no: Text30 | None = None
    out_flag: Text3 | None = None
    endtime: DateTime | None = None


class Out5303(OutputModel):
    data: list[Out5303Data] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ files

class In9101Upload(InputModel):
    in_: Bytes | None = Field(default=None, alias="in")  # multipart uploads send the file as its own part
    filename: Text200
    fixmedins_code: Text30


class In9101(InputModel):
    fsuploadin: In9101Upload = Field(alias="fsUploadIn")


class Out9101(OutputModel):
    file_qury_no: Text30
    filename: Text200
    fixmedins_code: Text30 | None = None
    dld_endtime: Text30 | None = None


class In9102Download(InputModel):
    file_qury_no: Text30
    filename: Text200
    fixmedins_code: Text30


class In9102(InputModel):
    fsdownloadin: In9102Download = Field(alias="fsDownloadIn")


# ------------------------------------------------------------------------------------------------ registries

#: infno → the model of its envelope ``input`` object
INPUT_MODELS: dict[str, type[InputModel]] = {
    "9001": In9001, "9002": In9002, "1101": In1101, "2001": In2001,
    "2201": In2201, "2202": In2202, "2203": In2203, "2204": In2204, "2205": In2205,
    "2206": In2206, "2207": In2207, "2208": In2208,
    "2301": In2301, "2302": In2302, "2303": In2303, "2304": In2304, "2305": In2305,
    "2401": In2401, "2402": In2402, "2403": In2403, "2404": In2404, "2405": In2405,
    "2601": In2601, "3201": In3201, "3202": In3202, "5201": In5201, "5203": In5203, "5204": In5204,
    "5303": In5303, "9101": In9101, "9102": In9102,
}

#: infno → the model of its envelope ``output`` object (9102 answers with a zip stream: no model)
OUTPUT_MODELS: dict[str, type[OutputModel]] = {
    "9001": Out9001, "9002": Out9002, "1101": Out1101, "2001": Out2001,
    "2201": Out2201, "2202": Out2202, "2203": Out2203, "2204": Out2204, "2205": Out2205,
    "2206": Out2206, "2207": Out2207, "2208": Out2208,
    "2301": Out2301, "2302": Out2302, "2303": Out2303, "2304": Out2304, "2305": Out2305,
    "2401": Out2401, "2402": Out2402, "2403": Out2403, "2404": Out2404, "2405": Out2405,
    "2601": Out2601, "3201": Out3201, "3202": Out3202, "5201": Out5201, "5203": Out5203, "5204": Out5204,
    "5303": Out5303, "9101": Out9101,
}

#: (infno, file name in the catalog's ``files:``) → the model of one row
FILE_ROW_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("3202", "detail"): Row3202Detail,
    ("3202", "result"): Row3202Result,
}
