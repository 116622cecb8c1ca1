"""Messages between services and back to HIS (the wire contracts of the chains).

* :class:`HisResult` (topic ``yibao.his.results.v1``) — what HIS gets back, keyed by the HIS visit id: one
  result per step HIS cares about. Reconciliation builds the hospital-side ledger from the ``settled`` and
  ``refunded`` results.
* :class:`VisitFact` (topic ``yibao.visits.v1``) — what registration establishes and settlement needs
  (person, platform visit id, visit info uploaded, admitted/discharged, …), and the requests registration makes
  of settlement while orchestrating a cancellation (``unwind_requested``) or a discharge
  (``discharge_requested``).
* :class:`SettlementFact` (topic ``yibao.settlement.facts.v1``) — settlement's answers to those requests
  (``unwound``/``unwind_refused``, ``ready_for_discharge``), its own request to reopen a discharged stay for
  charge lines that came too late (``reopen_requested``), and the facts registration guards rollbacks with
  (details on the platform, an active settlement).

Requests between the services carry the HIS request they serve (``his_request_id``) and that request's own
time (``occurred_at``), so each service queues them in HIS order among the HIS requests it received directly.

Every message has a stable ``message_id`` (the consumers' inbox key): the same fact produced twice — a replay, a
retried unit of work — carries the same id.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from yibao.core import clock, money

__all__ = [
    "stable_id",
    "SettlementSplit",
    "HisResult",
    "HisResultKind",
    "VisitFact",
    "VisitFactKind",
    "SettlementFact",
    "SettlementFactKind",
]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("amounts must not be floats")
    return value


Money = Annotated[Decimal, BeforeValidator(_no_float), AfterValidator(money.money)]
Time = clock.ShanghaiTime


def stable_id(*parts: object) -> str:
    """A deterministic id from the parts (32 hex chars of SHA-256)."""
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str
    his_visit_id: str
    visit_kind: Literal["outpatient", "inpatient"]
    occurred_at: Time = Field(default_factory=clock.now)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class SettlementSplit(BaseModel):
    """The money of one settlement (or, negated, of its cancellation), as the platform answered it."""

    model_config = ConfigDict(extra="ignore")

    medfee_sumamt: Money
    fund_pay_sumamt: Money
    psn_part_amt: Money
    acct_pay: Money
    psn_cash_pay: Money
    hifp_pay: Money = Decimal("0.00")
    fulamt_ownpay_amt: Money = Decimal("0.00")
    overlmt_selfpay: Money = Decimal("0.00")
    preselfpay_amt: Money = Decimal("0.00")
    inscp_scp_amt: Money = Decimal("0.00")
    act_pay_dedc: Money = Decimal("0.00")
    pool_prop_selfpay: Money = Decimal("0.00")
    hosp_part_amt: Money = Decimal("0.00")
    balc: Money | None = None


HisResultKind = Literal[
    "registered",  # 2201 done: mdtrt_id (outpatient)
    "admitted",  # 2401 done: mdtrt_id (inpatient)
    "admission_changed",  # 2403 done
    "visit_info_uploaded",  # 2203 done
    "discharged",  # 2402 done
    "presettled",  # 2206/2303 done: split (nothing booked)
    "settled",  # 2207/2304 done: setl_id and split
    "refunded",  # 2208/2305 done: cancel_setl_id, orig_setl_id and the negated split
    "cancelled",  # 2202/2404/2405 done (target in detail)
    "self_pay",  # the patient chose self-pay: no 医保 chain for this visit
    "quote",  # 诊查费 pooled reimbursement quote at registration
    "filed",  # 备案 2501/2501A/2503/2505 done: the platform's trt_dcla_detl_sn in detail (his_visit_id: the filing)
    "rx_reviewed",  # 7102 received: the pharmacy's review of a prescription uploaded with 7101 (detail: hi_rxno …)
    "rx_purchased",  # 7103 received: what was bought on it and how it was settled (detail: exact amounts, lines)
    "rejected",  # the platform (or a chain rule) refused: reason (err_msg) kept
    "parked",  # we could not finish: reason kept; ops will replay
]


class HisResult(_Message):
    kind: HisResultKind
    service: str
    his_request_id: str | None = None
    step_infno: str | None = Field(None, description="the platform transaction behind this result")
    msgid: str | None = Field(None, description="msgid of that transaction (medins_setl_id for settlements)")
    psn_no: str | None = None
    insutype: str | None = None
    insuplc_admdvs: str | None = None
    med_type: str | None = None
    mdtrt_id: str | None = None
    setl_id: str | None = None
    orig_setl_id: str | None = Field(None, description="for refunds: the settlement that was cancelled")
    setl_time: Time | None = None
    clr_type: str | None = None
    clr_way: str | None = None
    clr_optins: str | None = Field(None, description="清算机构 = the 3201 setl_optins key")
    refd_setl_flag: Literal["0", "1"] | None = None
    mid_setl_flag: Literal["0", "1"] | None = None
    split: SettlementSplit | None = None
    target: str | None = Field(None, description="for cancellations: registration | admission | discharge | filing")
    reason_code: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None


VisitFactKind = Literal[
    "registered",  # person and platform visit established (mdtrt_id); self_pay visits too (no mdtrt_id)
    "visit_info_uploaded",
    "admitted",
    "admission_changed",
    "discharged",
    "discharge_cancelled",
    "registration_cancelled",
    "admission_cancelled",
    "registration_failed",  # the visit will never be registered (rejected/parked): settlement rejects its work
    "unwind_requested",  # registration asks settlement to withdraw details / confirm no active settlement
    "discharge_requested",  # HIS discharged the patient: settlement uploads every pending line, then answers
    "request_closed",  # a HIS discharge/cancellation registration owns is finished (reason set: refused/rejected)
    "reopen_failed",  # registration could not reopen the stay (2405) settlement asked for: reason kept
    "reopen_not_needed",  # the stay settlement asked to reopen is not discharged on the platform: nothing to reopen
]


class VisitFact(_Message):
    kind: VisitFactKind
    his_request_id: str | None = None
    self_pay: bool = False
    psn_no: str | None = None
    insutype: str | None = None
    insuplc_admdvs: str | None = None
    psn_cert_type: str | None = None
    mdtrt_cert_type: str | None = None
    mdtrt_cert_no: str | None = Field(None, repr=False)
    card_sn: str | None = Field(None, repr=False)
    med_type: str | None = None
    mdtrt_id: str | None = None
    ipt_otp_no: str | None = None
    begntime: Time | None = None
    endtime: Time | None = None
    unwind: Literal["registration", "admission", "discharge"] | None = None
    reason: str | None = None
    #: unwind_requested / discharge_requested serving a HIS request that is on the HIS events too (a 退号, 取消入院,
    #: 取消出院 or 出院 HIS made; not an admission change's or a reopening's): settlement answers it once it has
    #: read that HIS request there itself, so what HIS committed before it is queued first
    on_his_events: bool = False


SettlementFactKind = Literal[
    "details_uploaded",  # the platform holds unsettled details of this visit
    "settled",  # an active settlement exists (final or mid)
    "settlement_cancelled",
    "unwound",  # answer to unwind_requested: nothing of settlement's stands in the way (details withdrawn)
    "unwind_refused",  # answer to unwind_requested: e.g. an active settlement must be refunded first
    "ready_for_discharge",  # answer to discharge_requested: every line that arrived is uploaded; 2402 may go
    "reopen_requested",  # charge lines arrived after the 2402 that a final settlement needs: 2405, then 2402 again
]


class SettlementFact(_Message):
    kind: SettlementFactKind
    his_request_id: str | None = None
    setl_id: str | None = None
    mid_setl_flag: Literal["0", "1"] | None = None
    reason: str | None = None
