"""The chain state of one work-injury case (persisted as JSON in ``chain_visits.state``, sealed at rest).

A case is what one chain drives, keyed by :func:`yibao.workinjury_sync.models.case_key`:

* ``stay`` — one stay of a patient: its admission (GYU101), fee lines (GYU102, in batches), the requests served in
  HIS order (settlement GYU103, deductions GYU004, revocations GYR001-GYR004) and their attachments (GYU002);
* ``filing`` — an application's audit (GYU001), or a filing made here (GYU006 after its attachments) and its updates
  (GYU007);
* ``device`` — an assistive-device settlement (GYD051 then GYU303) and its revocation;
* ``month`` — an institution's month-end (GYU003), once;
* ``org`` — an agreement institution (GYU009);
* ``download`` — one download stream (GYD001 …): its schedule, the batch stored and waiting for GYU008, the
  deliveries to ask again (GYR005), what follows a record (GYD102 details, GYD054 attachments).

Records are kept as the catalog expects them (times and amounts as text), so a decision can check them against the
catalog without I/O. Everything a decision needs is here; the deadlines the worker reports are derived from it
(:meth:`WorkInjuryState.watch`).
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.chains.model import ChainState

__all__ = [
    "Status",
    "Failure",
    "Part",
    "Line",
    "Tally",
    "Batch",
    "AttachmentPart",
    "StayRequest",
    "StayCase",
    "FilingCase",
    "DeviceCase",
    "MonthCase",
    "OrgCase",
    "Delivery",
    "FollowUp",
    "StreamState",
    "WorkInjuryState",
    "CaseKind",
    "amount",
]

#: pending: to be sent · invalid: refused by our checks (the field named; HIS fixes and sends again) · done: on the
#: platform · refused: the platform said no · revoked: taken back on the platform · superseded: replaced by a later
#: version before it was sent
Status = Literal["pending", "invalid", "done", "refused", "revoked", "superseded"]
CaseKind = Literal["stay", "filing", "device", "month", "org", "download"]


def amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class Failure(_Model):
    reason_code: str
    reason: str


class Part(_Model):
    """One record HIS asked for, and how far it got."""

    event_id: str
    occurred_at: _dt.datetime
    received_at: _dt.datetime
    record: dict[str, Any] = Field(default_factory=dict, repr=False)
    status: Status = "pending"
    reason_code: str | None = None
    reason: str | None = None
    trans_no: str | None = None
    platform_no: str | None = None
    done_at: _dt.datetime | None = None
    #: passed our checks and chosen to be sent: from now on its call may be in flight, so a later version of it
    #: never replaces it (it is answered on its own)
    checked: bool = False

    @property
    def open(self) -> bool:
        return self.status == "pending"


class Line(Part):
    """A fee line (GYU102)."""

    fee_sn: str
    batch: int | None = None  #: the batch it is frozen in (while the batch is in flight)
    #: a later version of a line that was in flight or on the platform already: decided once the original ended
    conflict: bool = False


class Tally(_Model):
    """One fee-line request of HIS: answered once every line of it ended (uploaded, invalid, refused)."""

    occurred_at: _dt.datetime
    received_at: _dt.datetime
    sns: list[str]
    answered: bool = False


class Batch(_Model):
    no: int
    sns: list[str]


class AttachmentPart(Part):
    atta_no: str
    atta_id: str | None = None
    batch: int | None = None


class StayRequest(Part):
    """A settlement, a deduction or a revocation of a stay, served one at a time in HIS order."""

    kind: Literal["settle", "deduct", "revoke"]
    target: Literal["details", "admission", "settlement", "deduction"] | None = None
    seq: int = 0
    #: a revocation's progress: what the platform needs first is revoked first (details before the admission,
    #: deductions before the settlement)
    step: str | None = None


class StayCase(_Model):
    stay_id: str
    org_code: str
    admission: Part | None = None
    later_admissions: list[Part] = Field(default_factory=list)  #: versions that came once one was chosen
    admissions: int = 0  #: admissions uploaded (a revoked one may be followed by a corrected one)
    admitted: bool = False  #: the platform holds an active admission of this stay
    lines: dict[str, Line] = Field(default_factory=dict)
    tallies: dict[str, Tally] = Field(default_factory=dict)
    batch: Batch | None = None
    batches: int = 0
    attachments: dict[str, AttachmentPart] = Field(default_factory=dict)
    atta_batch: Batch | None = None
    requests: list[StayRequest] = Field(default_factory=list)
    settled: StayRequest | None = None  #: the settlement the platform holds (active)
    deductions: dict[str, StayRequest] = Field(default_factory=dict)  #: deductions the platform holds (active)
    waiting_since: _dt.datetime | None = None  #: fee lines or requests waiting for the admission event

    def request(self, event_id: str) -> StayRequest | None:
        return next((r for r in self.requests if r.event_id == event_id), None)

    def head(self) -> StayRequest | None:
        return next((r for r in self.requests if r.open), None)

    def uploaded_lines(self) -> list[Line]:
        return [line for line in self.lines.values() if line.status == "done"]

    def pending_lines(self) -> list[Line]:
        return [line for line in self.lines.values() if line.status == "pending"]


class FilingCase(_Model):
    apply_no: str | None = None
    filing_no: str | None = None
    downloaded: bool = False  #: the application came with GYD001 (stored and confirmed)
    apply_chan: str | None = None
    audit: Part | None = None
    filing: Part | None = None  #: GYU006
    later: list[Part] = Field(default_factory=list)  #: later audits / local filings of the same case
    attachments: dict[str, AttachmentPart] = Field(default_factory=dict)
    atta_batch: Batch | None = None
    updates: list[Part] = Field(default_factory=list)  #: GYU007, in HIS order
    status: str | None = None  #: the filing's status on the platform as far as we know ("1" 有效, "0" 无效)
    waiting_since: _dt.datetime | None = None


class DeviceCase(_Model):
    setl_no: str
    settlement: Part | None = None
    later: list[Part] = Field(default_factory=list)  #: later versions of the settlement
    verified: bool = False  #: GYD051 passed for it
    settled: bool = False
    revocations: list[Part] = Field(default_factory=list)


class MonthCase(_Model):
    org_code: str
    month: str
    parts: list[Part] = Field(default_factory=list)

    def done(self) -> Part | None:
        return next((p for p in self.parts if p.status == "done"), None)


class OrgCase(_Model):
    org_code: str
    parts: list[Part] = Field(default_factory=list)


class Delivery(_Model):
    """A download stored (its records published) and waiting for — or confirmed with — GYU008."""

    infno: str
    trans_no: str
    ids: list[str]
    at: _dt.datetime


class FollowUp(_Model):
    """A download that follows a record: GYD102 (an admission's details) or GYD054 (an attachment)."""

    infno: Literal["GYD102", "GYD054"]
    org_code: str | None = None
    ipt_no: str | None = None
    atta_id: str | None = None
    no: int = 0


class StreamState(_Model):
    infno: str
    phase: Literal["check", "fetch", "done", "idle"] = "check"
    fetches: int = 0  #: download calls made (the call name of the next one)
    next_poll_at: _dt.datetime | None = None
    pending: list[Delivery] = Field(default_factory=list)  #: stored, to confirm with GYU008 (first first)
    lost: list[Delivery] = Field(default_factory=list)  #: delivered but not stored here: ask again (GYR005)
    follow_ups: list[FollowUp] = Field(default_factory=list)
    follow_no: int = 0
    #: GYD101: admissions downloaded and not yet settled or revoked — their new details are fetched at every poll
    open_admissions: list[list[str]] = Field(default_factory=list)
    held: list[Delivery] = Field(default_factory=list)  #: the last deliveries stored (what GYD008 is checked with)
    last_cycle_at: _dt.datetime | None = None  #: the last poll that ended with everything confirmed
    cycle_started_at: _dt.datetime | None = None
    first_started_at: _dt.datetime | None = None  #: the lag counts from here until a poll first completes
    records: int = 0
    confirmed: int = 0
    redownloads: int = 0
    unconfirmed_refusals: int = 0  #: "confirmations missing" refusals in a row (a poll gives up after a few)
    confirm_refusals: dict[str, int] = Field(default_factory=dict)  #: GYU008 refusals per delivery in this poll
    last_refusal: str | None = None

    def holds(self, trans_no: str) -> Delivery | None:
        return next((d for d in self.held if d.trans_no == trans_no), None)

    def keep(self, delivery: Delivery, *, limit: int = 100) -> None:
        self.held = [d for d in self.held if d.trans_no != delivery.trans_no][-(limit - 1):] + [delivery]


class WorkInjuryState(ChainState):
    kind: CaseKind
    key: str = ""
    stay: StayCase | None = None
    filing: FilingCase | None = None
    device: DeviceCase | None = None
    month: MonthCase | None = None
    org: OrgCase | None = None
    stream: StreamState | None = None
    seq: int = 0
    parked: Failure | None = None
    watch_sig: str = ""  #: what the store last wrote to workinjury_watch for this case

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- what the deadline gauges watch ------------------------------------------------------------------------

    def watch(self) -> list[tuple[str, str, _dt.datetime]]:
        """(kind, item, since) rows: ``upload``/<infno>/the oldest HIS event still waiting for that upload, and
        ``download``/<infno>/the end of the stream's last complete poll (the download lag starts there)."""
        rows: dict[tuple[str, str], _dt.datetime] = {}

        def wait(infno: str, part: Part | None) -> None:
            if part is not None and part.open:
                key = ("upload", infno)
                rows[key] = min(rows.get(key, part.occurred_at), part.occurred_at)

        if self.stay is not None:
            s = self.stay
            wait("GYU101", s.admission)
            for line in s.lines.values():
                wait("GYU102", line)
            for att in s.attachments.values():
                wait("GYU002", att)
            for r in s.requests:
                if r.kind != "revoke":  # revocations are realtime, not uploads with a deadline
                    wait("GYU103" if r.kind == "settle" else "GYU004", r)
        if self.filing is not None:
            f = self.filing
            wait("GYU001", f.audit)
            wait("GYU006", f.filing)
            for att in f.attachments.values():
                wait("GYU002", att)
            for u in f.updates:
                wait("GYU007", u)
        if self.device is not None:
            wait("GYU303", self.device.settlement)
        if self.month is not None:
            for p in self.month.parts:
                wait("GYU003", p)
        if self.org is not None:
            for p in self.org.parts:
                wait("GYU009", p)
        if self.stream is not None:
            since = self.stream.last_cycle_at or self.stream.first_started_at
            if since is not None:
                rows[("download", self.stream.infno)] = since
            for delivery in self.stream.pending:  # a confirmation is an upload with its deadline too
                key = ("upload", "GYU008")
                rows[key] = min(rows.get(key, delivery.at), delivery.at)
        return [(kind, item, since) for (kind, item), since in sorted(rows.items())]
