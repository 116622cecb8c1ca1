"""The wire contracts of workinjury-sync (pydantic at every boundary).

* :data:`WorkInjuryRequest` (topic ``yibao.workinjury.requests.v1``, keyed by :func:`case_key`) — what HIS asks: a
  filing audit (GYU001), a local filing (GYU006 with its attachments, GYU002 first), a filing update (GYU007), an
  admission (GYU101), fee lines (GYU102), a discharge settlement (GYU103), a device settlement (GYU303), a deduction
  (GYU004), a revocation (GYR001-GYR004, in the order the platform needs), a month-end (GYU003), an institution
  (GYU009). Structure and types are checked here (a message that is not one of these is parked with the field
  named); lengths, required platform fields and code lists are the catalog's, checked before sending.
* :class:`WorkInjuryResult` (``yibao.workinjury.results.v1``) — what HIS gets back for each request: uploaded (with
  the platform's numbers), refused (the platform's words), invalid (our check: the field named; also parked on the
  dead-letter topic), revoked, parked — and how long it took against its deadline.
* :class:`DownloadedRecord` (``yibao.workinjury.filings.v1`` / ``.visits.v1`` / ``.deductions.v1`` /
  ``.revocations.v1`` / ``.institutions.v1``) — a record downloaded from the platform (stored here, then confirmed
  with GYU008), for HIS.

Every message has a stable ``message_id`` (the consumers' inbox key): the same record or answer produced twice — a
redownload, a unit of work run again — carries the same id.
"""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from yibao.core import clock

__all__ = [
    "Attachment",
    "FilingAudited",
    "FilingRegistered",
    "FilingUpdated",
    "Admitted",
    "FeeLine",
    "FeeLines",
    "DischargeSettled",
    "DeviceItem",
    "DeviceSettled",
    "Deducted",
    "Revocation",
    "MonthItem",
    "MonthEnd",
    "InstitutionChanged",
    "WorkInjuryRequest",
    "REQUEST_ADAPTER",
    "parse_request",
    "case_key",
    "WorkInjuryResult",
    "ResultKind",
    "DownloadedRecord",
]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must not be floats: send them as text or exact JSON numbers")
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float)]
Time = Annotated[_dt.datetime, AfterValidator(clock.as_shanghai)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Id = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\s:]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)


class _Request(_Strict):
    event_id: Annotated[str, Field(min_length=1, max_length=80)]  #: unique per HIS event (the inbox key)
    #: when the business event happened in HIS: the 30-minute upload deadline starts here
    occurred_at: Time


class Attachment(_Strict):
    atta_no: Id  #: HIS's number of the file (unique per case)
    atta_name: Text
    atta_type: str = Field("99", max_length=3)
    file_content: str = Field(min_length=1, description="the file, Base64")


class FilingAudited(_Request):
    """GYU001: HIS audited an application downloaded with GYD001."""

    type: Literal["filing_audited"] = "filing_audited"
    apply_no: Id
    audit_result: Literal["1", "2"]  #: 1 审核通过, 2 审核不通过 (then audit_opinion is required)
    audit_opinion: str | None = None
    auditor: Text
    audit_time: Time
    org_code: str | None = None


class FilingRegistered(_Request):
    """GYU006: a filing applied and approved through the province's own channel; its attachments go up first."""

    type: Literal["filing_registered"] = "filing_registered"
    filing_no: Id
    psn_no: Text
    certno: Text
    psn_name: Text
    insu_admdvs: Text
    mdtrt_admdvs: Text
    org_type: str
    org_code: str | None = None
    begin_date: _dt.date
    end_date: _dt.date
    filing_status: str = "1"
    audit_time: Time
    attachments: list[Attachment] = Field(default_factory=list)


class FilingUpdated(_Request):
    """GYU007: a filing changed (status, place of treatment, end date)."""

    type: Literal["filing_updated"] = "filing_updated"
    filing_no: Id
    filing_status: str
    mdtrt_admdvs: str | None = None
    end_date: _dt.date | None = None
    change_reason: Text
    change_time: Time


class Admitted(_Request):
    """GYU101: an admission of a stay (stay_id: HIS's own id of the stay)."""

    type: Literal["admitted"] = "admitted"
    stay_id: Id
    ipt_no: Text
    filing_no: Text
    psn_no: Text
    certno: Text
    psn_name: Text
    visit_type: str = "1"
    adm_time: Time
    adm_dept_code: Text
    adm_dept_name: Text
    adm_diag_code: Text
    adm_diag_name: Text
    injury_part: str | None = None
    doctor_name: str | None = None
    org_code: str | None = None  #: default: the hospital's (YIBAO_WORKINJURY_PLATFORM_ORG_CODE)


class FeeLine(_Strict):
    fee_sn: Id
    fee_time: Time
    item_code: Text
    item_name: Text
    price: Amount
    cnt: Amount
    amount: Amount
    pool_amt: Amount
    self_amt: Amount
    dept_code: str | None = None
    doctor_name: str | None = None


class FeeLines(_Request):
    """GYU102: charge lines of a stay (any number; they go up in batches of at most 500)."""

    type: Literal["fee_lines"] = "fee_lines"
    stay_id: Id
    lines: list[FeeLine] = Field(min_length=1, max_length=5000)


class DischargeSettled(_Request):
    """GYU103: the discharge settlement of a stay, once every line of it is on the platform."""

    type: Literal["discharge_settled"] = "discharge_settled"
    stay_id: Id
    setl_no: Id
    dscg_time: Time
    setl_time: Time
    dscg_diag_code: Text
    dscg_diag_name: Text
    medfee_sumamt: Amount
    pool_amt: Amount
    self_amt: Amount
    fee_count: int | None = Field(None, ge=0)  #: when given, checked against the lines HIS sent
    attachments: list[Attachment] = Field(default_factory=list)  #: a rehabilitation plan (optional)


class DeviceItem(_Strict):
    device_code: Text
    device_name: Text
    price: Amount
    cnt: Amount
    amount: Amount


class DeviceSettled(_Request):
    """GYU303: an assistive-device settlement (after GYD051 verified the filing)."""

    type: Literal["device_settled"] = "device_settled"
    setl_no: Id
    filing_no: Text
    psn_no: Text
    certno: Text
    mdtrt_admdvs: str | None = None
    setl_time: Time
    medfee_sumamt: Amount
    pool_amt: Amount
    self_amt: Amount
    items: list[DeviceItem] = Field(min_length=1, max_length=500)
    org_code: str | None = None


class Deducted(_Request):
    """GYU004: the agency's audit deducted from a stay's settlement."""

    type: Literal["deduction"] = "deduction"
    stay_id: Id
    deduct_no: Id
    setl_no: Text
    deduct_amt: Amount
    deduct_reason: Text
    deduct_time: Time
    auditor: str | None = None


class Revocation(_Request):
    """GYR001-GYR004: revoke a stay's details, admission, settlement or one deduction — the bridge sends what the
    platform needs first (details before the admission, deductions before the settlement). A device settlement is
    revoked with ``setl_no`` and target ``settlement``."""

    type: Literal["revocation"] = "revocation"
    stay_id: Id | None = None
    setl_no: str | None = None  #: a device settlement (GYU303) instead of a stay
    target: Literal["details", "admission", "settlement", "deduction"]
    deduct_no: str | None = None
    reason: Text


class MonthItem(_Strict):
    setl_no: Text
    medfee_sumamt: Amount
    pool_amt: Amount
    deduct_amt: Amount = Decimal("0")


class MonthEnd(_Request):
    """GYU003: the institution's month-end (once per month)."""

    type: Literal["month_end"] = "month_end"
    month: Annotated[str, Field(pattern=r"^\d{4}(0[1-9]|1[0-2])$")]  #: yyyyMM
    org_code: str | None = None
    visit_count: int
    medfee_sumamt: Amount
    pool_amt: Amount
    self_amt: Amount
    deduct_amt: Amount
    revoke_amt: Amount
    pay_amt: Amount
    items: list[MonthItem] = Field(max_length=500)


class InstitutionChanged(_Request):
    """GYU009: a new or changed, approved agreement institution."""

    type: Literal["institution_changed"] = "institution_changed"
    org_code: Id
    org_name: Text
    org_type: str
    admdvs: Text
    agreement_begin: _dt.date
    agreement_end: _dt.date
    org_status: str = "1"
    addr: str | None = None
    tel: str | None = None


WorkInjuryRequest = Annotated[
    FilingAudited | FilingRegistered | FilingUpdated | Admitted | FeeLines | DischargeSettled | DeviceSettled
    | Deducted | Revocation | MonthEnd | InstitutionChanged,
    Field(discriminator="type"),
]
REQUEST_ADAPTER: TypeAdapter[Any] = TypeAdapter(WorkInjuryRequest)


def parse_request(raw: bytes | str | dict[str, Any]) -> Any:
    """A request from its JSON — numbers read as exact decimals, never floats — or a pydantic ValidationError naming
    the field (ValueError when it is not JSON at all)."""
    if isinstance(raw, dict):
        return REQUEST_ADAPTER.validate_python(raw)
    return REQUEST_ADAPTER.validate_python(json.loads(raw, parse_float=Decimal))


def case_key(request: Any, org_code: str) -> tuple[str, str]:
    """(chain key, chain kind) of a request: which case it belongs to. Also the Kafka key HIS should use."""
    if isinstance(request, FilingAudited):
        return f"application:{request.apply_no}", "filing"
    if isinstance(request, (FilingRegistered, FilingUpdated)):
        return f"filing:{request.filing_no}", "filing"
    if isinstance(request, DeviceSettled):
        return f"device:{request.setl_no}", "device"
    if isinstance(request, Revocation) and request.stay_id is None:
        if not request.setl_no:
            raise ValueError("a revocation names the stay (stay_id) or a device settlement (setl_no)")
        return f"device:{request.setl_no}", "device"
    if isinstance(request, MonthEnd):
        return f"month:{request.org_code or org_code}:{request.month}", "month"
    if isinstance(request, InstitutionChanged):
        return f"org:{request.org_code}", "org"
    return f"stay:{request.stay_id}", "stay"


ResultKind = Literal["uploaded", "refused", "invalid", "revoked", "parked", "audited"]


class WorkInjuryResult(BaseModel):
    """What HIS gets back for one of its requests (or one part of it: a fee-line request answers per batch)."""

    model_config = ConfigDict(extra="forbid")

    message_id: str
    case_key: str
    case_kind: str
    his_event_id: str | None = None
    request: str  #: admission, fee_lines, settlement, deduction, revocation, filing_audit, filing, filing_update,
    #: device_settlement, month_end, institution, attachments
    kind: ResultKind
    infno: str | None = None  #: the platform transaction behind this result
    trans_no: str | None = None  #: its serial (transNo)
    platform_ids: dict[str, str] | None = None
    reason_code: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None
    occurred_at: Time | None = None  #: the HIS event's time
    answered_at: Time = Field(default_factory=clock.now)
    age_s: float | None = None  #: answered_at − occurred_at
    deadline_s: int | None = None
    on_time: bool | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class DownloadedRecord(BaseModel):
    """One record downloaded from the platform and stored before its GYU008 confirmation."""

    model_config = ConfigDict(extra="forbid")

    message_id: str
    stream: str  #: the download transaction (GYD001 …)
    kind: str  #: filing_application, filing, admission, fee_detail, settlement, deduction, detail_revocation,
    #: admission_revocation, settlement_revocation, deduction_revocation, month_end, clearing, institution, attachment
    record_id: str
    trans_no: str  #: the serial of the download that delivered it
    downloaded_at: Time
    record: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()
