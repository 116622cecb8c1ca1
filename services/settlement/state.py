"""The settlement chain's state of one HIS visit (persisted as JSON in ``chain_visits.state``).

The charge lines live in their own table, ``fee_lines``: the state store (:mod:`yibao.settlement.store`) reads them
with the visit into :attr:`SettlementState.lines` (and, for a 血透 sheet, the inpatient account's view into
:attr:`SettlementState.sheets`), and writes back what changed. The JSON holds everything else
:func:`~yibao.settlement.chain.SettlementChain.next_action` decides from: what registration told us (the
person, mdtrt_id, visit info uploaded, discharged …), the HIS requests (settle, refund) and registration's unwind
requests with their progress, the settlements this visit holds, and the platform work decided but not finished
(an upload batch, a withdrawal) — so a crash between deciding and hearing back always finds the same step again.

Personal data (mdtrt_cert_no) is kept because 2206/2207/2303/2304 need it; ``repr`` hides it.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from yibao.chains.model import ChainState
from yibao.core.results import stable_id
from yibao.settlement.hemodialysis import SheetMove, SheetView
from yibao.settlement.lines import FeeLines

__all__ = [
    "VisitKind",
    "Person",
    "Upload",
    "Withdrawal",
    "SettleRequest",
    "RefundRequest",
    "UnwindRequest",
    "DischargeRequest",
    "Request",
    "AnyRequest",
    "Settlement",
    "Parked",
    "SettlementState",
    "IN_FLIGHT_PHASES",
]

VisitKind = Literal["outpatient", "inpatient"]

#: request phases during which a platform call was decided and must be finished before anything else happens
IN_FLIGHT_PHASES = frozenset({"presettled", "confirming", "cancelling", "confirming_refund", "withdrawing"})


class _Model(BaseModel):
    # persisted state outlives the code that wrote it: a field a later version dropped is ignored, not fatal
    model_config = ConfigDict(extra="ignore")


class Person(_Model):
    """What registration told us about the visit on the platform (VisitFact registered/admitted …)."""

    psn_no: str | None = None
    insutype: str | None = None
    insuplc_admdvs: str | None = None
    psn_cert_type: str | None = None
    mdtrt_cert_type: str | None = None
    mdtrt_cert_no: str | None = Field(None, repr=False)
    med_type: str | None = None
    mdtrt_id: str | None = None
    ipt_otp_no: str | None = None
    begntime: _dt.datetime | None = None


class Upload(_Model):
    """A batch of fee lines decided for one 2204/2301 call (frozen, so its unknown outcome can be resolved)."""

    no: int
    sns: list[str]
    chrg_bchno: str | None = None


class Withdrawal(_Model):
    """A 2205/2302 decided: ``code`` is the chrg_bchno (2205) or feedetl_sn (2302), "0000" for everything."""

    no: int
    infno: Literal["2205", "2302"]
    #: redo: revoked to net a reversal, then uploaded again; reorder: revoked because lines HIS charged after the
    #: settlement request (``request_id``) were on the platform, then this settlement's lines uploaded again;
    #: refund: the refunded settlement's lines; unwind: everything, the visit is being cancelled
    purpose: Literal["redo", "reorder", "refund", "unwind"]
    code: str
    sns: list[str]
    request_id: str | None = None


class _Request(_Model):
    id: str  #: the HIS request id (settle/refund) or the unwind's request id
    message_id: str  #: the event / fact that asked (unique)
    occurred_at: _dt.datetime
    received_at: _dt.datetime
    reason_code: str | None = None
    reason: str | None = None

    @property
    def tag(self) -> str:
        """A short stable id for step names (the journal's step column holds 64 characters)."""
        return stable_id(getattr(self, "kind"), self.id, self.message_id)[:16]


class SettleRequest(_Request):
    """结算 asked by the HIS cashier (outpatient 2206→2207, inpatient 2303→2304)."""

    kind: Literal["settle"] = "settle"
    phase: Literal["waiting", "presettled", "confirming", "settled", "rejected"] = "waiting"
    medfee_sumamt: Decimal
    acct_used_flag: str = "0"
    psn_setlway: str = "01"
    mid_setl_flag: str = "0"
    invono: str | None = None
    chrg_bchno: str | None = None
    mdtrt_cert_type: str | None = None
    mdtrt_cert_no: str | None = Field(None, repr=False)
    insutype: str | None = None
    #: 血透: the inpatient account whose pre-settlement sheet this outpatient request settles
    sheet_of: str | None = None
    #: inpatient final settlement short of lines that arrived after the 2402: the stay's reopening was asked of
    #: registration (2405 → 2301 → 2402 again); "done" once registration's own 2402 ended it (its ``discharged``
    #: names this request) — a final settlement never goes before that, even if the stay was discharged again
    #: another way meanwhile, for registration's 2405 would still follow; "failed" when registration could not
    #: (reason in reopen_reason)
    reopen: Literal["asked", "done", "failed"] | None = None
    reopen_reason: str | None = None
    #: how many times the reopening was asked (a second ask has message ids of its own)
    reopens: int = 0
    #: the platform refused the final settlement (2303/2304) because the stay is not discharged there: it waits
    #: for the discharge again (registration's next ``discharged``), until ``prerequisite_wait`` after this moment
    not_discharged_at: _dt.datetime | None = None
    not_discharged_reason: str | None = None
    #: the platform refused the 中途结算 (2303/2304) because the stay is discharged there, before settlement heard
    #: of the discharge: it waits for registration's ``discharged`` (then reopens the stay for it, as for a discharge
    #: it knew of), until ``prerequisite_wait`` after this moment
    discharged_on_platform_at: _dt.datetime | None = None
    discharged_on_platform_reason: str | None = None
    #: decided at 2206/2303: the lines being settled and the platform's preview
    sns: list[str] = Field(default_factory=list)
    presettle: dict[str, Any] | None = None
    settle_msgid: str | None = None
    setl_id: str | None = None

    @property
    def open(self) -> bool:
        return self.phase not in ("settled", "rejected")


class RefundRequest(_Request):
    """退费 asked by the HIS cashier (outpatient 2208 then 2205; inpatient 2305)."""

    kind: Literal["refund"] = "refund"
    phase: Literal["waiting", "cancelling", "confirming_refund", "withdrawing", "refunded", "rejected"] = "waiting"
    settlement_request_id: str | None = None
    setl_id: str | None = None  #: as the HIS named it
    target_setl_id: str | None = None  #: the settlement being cancelled, once decided
    cancel_msgid: str | None = None
    cancel_setl_id: str | None = None

    @property
    def open(self) -> bool:
        return self.phase not in ("refunded", "rejected")


class UnwindRequest(_Request):
    """Registration asks whether settlement stands in the way of a rollback (and to withdraw details).

    ``expected``: the HIS cancellation was read from the HIS events but registration has not asked yet — it holds
    its place in HIS order, so that no later settlement request overtakes it; ``closed``: registration finished
    the cancellation without asking (refused it, or nothing was on the platform)."""

    kind: Literal["unwind"] = "unwind"
    phase: Literal["expected", "waiting", "withdrawing", "unwound", "refused", "closed"] = "waiting"
    #: False while registration asked for a HIS cancellation settlement has not read on the HIS events yet: the
    #: HIS events committed before it are still on their way to settlement, so it is not answered until then
    his_read: bool = True
    target: Literal["registration", "admission", "discharge"]
    self_pay: bool = False  #: the visit becomes self-pay (改自费): its charges stand, paid by the patient

    @property
    def open(self) -> bool:
        return self.phase not in ("unwound", "refused", "closed")


class DischargeRequest(_Request):
    """Registration is about to send 2402 (HIS discharged the patient, or a reopen ends): every line that arrived is
    uploaded first, then ``ready_for_discharge`` — 2301 is refused after 2402. ``expected`` and ``closed`` as for
    :class:`UnwindRequest` (a HIS discharge read from the HIS events before registration asked)."""

    kind: Literal["discharge"] = "discharge"
    phase: Literal["expected", "waiting", "answered", "closed"] = "waiting"
    his_read: bool = True  #: as for :class:`UnwindRequest` (the HIS discharge)

    @property
    def open(self) -> bool:
        return self.phase in ("expected", "waiting")


Request = Annotated[SettleRequest | RefundRequest | UnwindRequest | DischargeRequest, Field(discriminator="kind")]
AnyRequest = SettleRequest | RefundRequest | UnwindRequest | DischargeRequest


class Settlement(_Model):
    """A settlement this visit made (2207/2304) and, once refunded, its cancellation (2208/2305)."""

    setl_id: str
    request_id: str
    infno: str
    msgid: str  #: medins_setl_id
    mid_setl_flag: str = "0"
    setl_time: _dt.datetime | None = None
    med_type: str | None = None
    clr_type: str | None = None
    clr_way: str | None = None
    clr_optins: str | None = None
    split: dict[str, Decimal]
    chrg_bchno: str | None = None
    sns: list[str] = Field(default_factory=list)
    sheet_of: str | None = None
    status: Literal["active", "cancelled"] = "active"
    cancel_setl_id: str | None = None


class Parked(_Model):
    reason_code: str
    reason: str


class SettlementState(ChainState):
    kind: VisitKind
    person: Person = Field(default_factory=Person)
    registered: bool = False
    self_pay: bool = False
    visit_info_uploaded: bool = False
    discharged: bool = False
    endtime: _dt.datetime | None = None
    failed: str | None = None  #: registration_failed: why the visit will never be registered
    cancelled: str | None = None  #: registration_cancelled / admission_cancelled
    closing: bool = False  #: an unwind withdrew the details: nothing more is uploaded
    #: ready_for_discharge answered (request id): no upload until registration says discharged (or not)
    discharge_pending: str | None = None
    #: an unwind of the discharge was agreed (request id): registration is cancelling the discharge (2405) to send
    #: what the platform takes only in the ward — no final settlement until that is done (discharge_cancelled,
    #: then discharged again) or registration closes the request
    discharge_unwinding: str | None = None
    #: the platform refused a 2301 because it holds the stay discharged (registration sent 2402 without our
    #: ``ready_for_discharge``, after ``discharge_wait``) before registration's ``discharged`` reached us: nothing
    #: goes up until it does (the lines wait for the stay's reopening) or ``discharge_cancelled`` comes; if neither
    #: comes within ``prerequisite_wait``, the lines are taken as refused
    platform_discharged_at: _dt.datetime | None = None
    #: lines whose 2301 the platform refused because the stay was discharged (line → its answer): pending, never
    #: refused — they go up once the stay is reopened (2405)
    discharge_refused: dict[str, str] = Field(default_factory=dict)
    #: discharges and cancellations registration finished (request_closed), kept so that their HIS event,
    #: should it arrive after that, holds no place in the queue
    closed_requests: list[str] = Field(default_factory=list)
    round: int = 1  #: outpatient settlement round (its chrg_bchno); +1 after every settlement
    counter: int = 0  #: numbers upload batches and withdrawals (step names)
    upload: Upload | None = None
    withdrawal: Withdrawal | None = None
    merged: dict[str, str] = Field(default_factory=dict)  #: reversal line → the line it was netted into
    refused: dict[str, str] = Field(default_factory=dict)  #: line → why the platform refused it
    requests: list[Request] = Field(default_factory=list)
    settlements: list[Settlement] = Field(default_factory=list)
    #: a rule stopped the chain (an answer that does not add up …): the visit is parked for a person; a replay
    #: clears it and the chain looks again
    hold: Parked | None = None
    parked: Parked | None = None  #: why the visit was last parked (kept for the record)

    _lines: FeeLines | None = PrivateAttr(default=None)
    _sheets: dict[str, SheetView] = PrivateAttr(default_factory=dict)
    _sheet_moves: list[SheetMove] = PrivateAttr(default_factory=list)

    # --- what the store reads besides the JSON ---------------------------------------------------------------

    @property
    def lines(self) -> FeeLines:
        """The visit's charge lines (read and written by the state store)."""
        if self._lines is None:
            self._lines = FeeLines("")
        return self._lines

    @property
    def sheets(self) -> dict[str, SheetView]:
        """血透: the inpatient accounts named by open requests, as the store read them."""
        return self._sheets

    @property
    def sheet_moves(self) -> list[SheetMove]:
        """血透 lines claimed from / released to their accounts in this unit of work (the store carries them out)."""
        return self._sheet_moves

    # --- reading -----------------------------------------------------------------------------------------------

    def open_requests(self) -> list[AnyRequest]:
        return [r for r in self.requests if r.open]

    def in_flight(self) -> AnyRequest | None:
        """The request whose platform call was decided (at most one)."""
        return next((r for r in self.requests if r.phase in IN_FLIGHT_PHASES), None)

    def request(self, kind: str, request_id: str) -> AnyRequest | None:
        found = [r for r in self.requests if r.kind == kind and r.id == request_id]
        return found[-1] if found else None

    def settlement(self, setl_id: str) -> Settlement | None:
        return next((s for s in self.settlements if s.setl_id == setl_id), None)

    def settlement_of_request(self, request_id: str) -> Settlement | None:
        found = [s for s in self.settlements if s.request_id == request_id]
        return found[-1] if found else None

    def active_settlements(self) -> list[Settlement]:
        return [s for s in self.settlements if s.status == "active"]

    def chrg_bchno(self, prefix: str) -> str:
        """The outpatient 收费批次号 of the current round (never "0000", which 2205 reads as "all")."""
        return f"{prefix}{self.round:03d}"

    # --- changing ----------------------------------------------------------------------------------------------

    def next_no(self) -> int:
        self.counter += 1
        return self.counter

    def add_request(self, request: AnyRequest) -> None:
        """Queue a request in HIS order (``occurred_at``): requests of different HIS tables may arrive out of
        order. Never ahead of a request whose platform call is already decided."""
        start = 0
        for i, r in enumerate(self.requests):
            if r.phase in IN_FLIGHT_PHASES or not r.open:
                start = i + 1
        position = len(self.requests)
        for i in range(start, len(self.requests)):
            if self.requests[i].open and self.requests[i].occurred_at > request.occurred_at:
                position = i
                break
        self.requests.insert(position, request)

