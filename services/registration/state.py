"""The registration chain's state of one HIS visit (persisted as JSON in ``chain_visits.state``).

Everything :func:`~yibao.registration.chain.RegistrationChain.next_action` decides from is here, so the decision
is a pure function of this model (and of the clock, for deadlines). The HIS events the chain still needs are
kept whole, as their canonical JSON (``event``), and read back with :func:`yibao.hisevents.models.parse_event`:
one source of truth for their fields and types.

Personal data (certificate numbers, names) sits in those events as it sits in the canonical topic: the state is
as sensitive as the HIS database. Nothing here is ever logged; ``repr`` of the models hides the events.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.chains.model import ChainState
from yibao.core.results import stable_id
from yibao.hisevents.models import Diagnosis, HisEventBase, parse_event

__all__ = [
    "Status",
    "Phase",
    "RequestKind",
    "Target",
    "Request",
    "Person",
    "Failure",
    "VisitInfoFields",
    "VisitInfoState",
    "SettlementView",
    "RegistrationState",
    "diagnosis_key",
]

#: pending: 1101/2001/2201(2401) not finished · registered: the platform holds the visit (mdtrt_id) ·
#: self_pay: no 医保 chain · rejected: the platform (or a rule) refused the registration · cancelled: 2202/2404 done
Status = Literal["pending", "registered", "self_pay", "rejected", "cancelled"]
#: a request's progress: new → (unwinding → unwound | refused) → done | rejected for rollbacks;
#: new → settling → ready → done | rejected for a discharge (settlement uploads the stay's lines first);
#: new → unwound (2405 done) → settling → ready → done | rejected for a reopen
Phase = Literal["new", "unwinding", "unwound", "refused", "settling", "ready", "done", "rejected"]
#: cancel (退号/取消入院/取消出院), self_pay_switch (医保 → 自费 for this visit), identity_refused (自费 → 医保, never
#: allowed: answered with a rejection), discharge (2402), admission_change (2403), reopen (settlement's request:
#: 2405 then 2402 again, so charge lines that arrived after the discharge can go up before the final settlement)
RequestKind = Literal["cancel", "self_pay_switch", "identity_refused", "discharge", "admission_change", "reopen"]
Target = Literal["registration", "admission", "discharge"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Request(_Model):
    """Something HIS asked of a registered visit, answered by one HisResult. Processed one at a time, in order."""

    id: str  #: the HIS request id (cancellations), else the id of the event that asked
    kind: RequestKind
    target: Target | None = None
    event: dict[str, Any] | None = Field(None, repr=False)  #: the canonical event (JSON) when a step needs it
    occurred_at: _dt.datetime
    received_at: _dt.datetime
    seq: int
    phase: Phase = "new"
    reason: str | None = None  #: settlement's reason when it refused to unwind; a discharge's fallback note
    asked_at: _dt.datetime | None = None  #: when settlement was asked (discharge_requested): the deadline's start
    #: a reopen settlement asked for again after the earlier one ended: the messages answering it are new ones
    round: int = 0

    @property
    def active(self) -> bool:
        return self.phase not in ("done", "rejected")

    @property
    def ident(self) -> tuple[object, ...]:
        """What the messages answering this request are named after (their stable ids)."""
        return (self.kind, self.id) if not self.round else (self.kind, self.id, self.round)

    @property
    def tag(self) -> str:
        """A short stable id for step names (the journal's step column is 64 characters)."""
        return stable_id(self.kind, self.id)[:16]

    def parsed(self) -> HisEventBase:
        if self.event is None:  # pragma: no cover - guarded by the callers
            raise ValueError(f"request {self.kind} carries no event")
        return parse_event(self.event)


class Person(_Model):
    """What 1101 told about the patient and which insurance this visit uses."""

    psn_no: str
    insutype: str
    insuplc_admdvs: str
    psn_cert_type: str | None = None
    psn_type: str | None = None
    age: Decimal | None = None


class Failure(_Model):
    reason_code: str
    reason: str
    step_infno: str | None = None


class VisitInfoFields(_Model):
    """The 2203 mdtrtinfo fields a visit_info event may set (absent: the registration's, or nothing)."""

    med_type: str | None = None
    begntime: _dt.datetime | None = None
    main_cond_dscr: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    birctrl_type: str | None = None
    birctrl_matn_date: _dt.date | None = None
    matn_type: str | None = None
    geso_val: int | None = None


class VisitInfoState(_Model):
    """Outpatient 就诊信息 (2203), merged from every visit_info event: fields (a later value wins) and diagnoses by
    (diag_type, diag_srt_no). ``version`` counts changes; 2203 is due while it exceeds ``uploaded_version``."""

    fields: VisitInfoFields = Field(default_factory=VisitInfoFields)
    diagnoses: dict[str, Diagnosis] = Field(default_factory=dict)
    version: int = 0
    uploaded_version: int = 0
    first_received_at: _dt.datetime | None = None
    last_changed_at: _dt.datetime | None = None
    last_event_id: str | None = None

    @property
    def due(self) -> bool:
        return self.version > self.uploaded_version

    @property
    def has_valid_diagnosis(self) -> bool:
        return any(d.vali_flag == "1" for d in self.diagnoses.values())


class SettlementView(_Model):
    """What settlement told about the visit (facts only; settlement decides its own refusals)."""

    details_uploaded: bool = False
    active_settlements: list[str] = Field(default_factory=list)


class RegistrationState(ChainState):
    kind: Literal["outpatient", "inpatient"]
    registration: dict[str, Any] | None = Field(None, repr=False)  #: PatientRegistered / Admission (JSON)
    registration_received_at: _dt.datetime | None = None
    self_pay: bool = False
    status: Status = "pending"
    person: Person | None = None
    treatment_checked: bool = False
    treatment: list[dict[str, Any]] = Field(default_factory=list)
    mdtrt_id: str | None = None
    registered_at: _dt.datetime | None = None
    visit_info: VisitInfoState = Field(default_factory=VisitInfoState)
    #: the patient's 门诊慢特病 备案 (5301 rows), asked once when a diagnosis falls under a listed disease
    chronic_filings: list[dict[str, Any]] | None = None
    #: inpatient: admission fields changed by 2403s that succeeded (JSON, merged over the admission event)
    admission_overlay: dict[str, Any] = Field(default_factory=dict, repr=False)
    admission_diagnoses: dict[str, Diagnosis] = Field(default_factory=dict)
    discharged: bool = False
    endtime: _dt.datetime | None = None
    requests: list[Request] = Field(default_factory=list)
    seq: int = 0
    settlement: SettlementView = Field(default_factory=SettlementView)
    failure: Failure | None = None
    parked: Failure | None = None

    # --- reading -----------------------------------------------------------------------------------------------

    def registration_event(self) -> HisEventBase:
        if self.registration is None:  # pragma: no cover - guarded by the callers
            raise ValueError("no registration event yet")
        return parse_event(self.registration)

    def request(self, request_id: str, kind: RequestKind | None = None) -> Request | None:
        for r in self.requests:
            if r.id == request_id and (kind is None or r.kind == kind):
                return r
        return None

    def last_discharge(self) -> Request | None:
        """The discharge the platform holds now: the last discharge (HIS's, or sent again after a reopening) that
        2402 completed, carrying its event."""
        done = [r for r in self.requests if r.kind in ("discharge", "reopen") and r.phase == "done" and r.event]
        return done[-1] if done else None

    def head(self) -> Request | None:
        """The request being worked on: the first active one (requests are served one at a time, in order)."""
        return next((r for r in self.requests if r.active), None)

    # --- changing ----------------------------------------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        """Queue a request in HIS order (``occurred_at``): events of different HIS tables may arrive out of
        order. Never ahead of the head request, whose step may already be in flight."""
        active = [i for i, r in enumerate(self.requests) if r.active]
        start = active[0] + 1 if active else len(self.requests)
        position = len(self.requests)
        for i in range(start, len(self.requests)):
            if self.requests[i].active and self.requests[i].occurred_at > request.occurred_at:
                position = i
                break
        self.requests.insert(position, request)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def diagnosis_key(diagnosis: Diagnosis) -> str:
    return f"{diagnosis.diag_type}/{diagnosis.diag_srt_no}"

