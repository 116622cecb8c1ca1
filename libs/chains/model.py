"""What a chain is made of: its typed state, the actions its decision returns, and the effects a decision may have.

A chain (registration, settlement, …) is a pure decision over a typed state::

    action = chain.next_action(state, now)   # no connection, no I/O

The :class:`~yibao.chains.engine.ChainEngine` loads the state, asks for the action, does the I/O the action names
(a platform call, a status change) and saves the state — with the journal row, the call log and the messages the
action emitted — in one transaction. A chain never loads, saves, or talks to the database or the platform.

Actions:

* :class:`Call` — one platform call. Its ``on_ok`` / ``on_refused`` change the state when the answer is known;
  ``lookup`` says how the platform is asked, when the answer is lost, whether the call took effect. *Whether*
  a lost answer is looked up, sent again or reversed by 2601 is the catalog's fact about the transaction
  (:mod:`yibao.chains.policy`), not the chain's;
* :class:`Change` — a change of state with no platform call (refusing a request, asking another service);
* :class:`Wait` — nothing to do until a message arrives, or until a moment;
* :class:`Idle` — all done for now;
* :class:`Park` — stop for a person (``yibao replay`` brings the visit back).

Every handler (``on_ok``, ``on_refused``, ``Change.apply``, ``on_parked``, an absorption's ``apply``) receives the
state as it is *now* (a message may have been absorbed while a call was in flight) and :class:`Effects`, through
which it emits messages; it applies a relative change — this request settled, this version uploaded — never a copy
taken before the call.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from yibao.core.privacy import mask_text
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError

__all__ = [
    "ChainState",
    "Emission",
    "Effects",
    "Reply",
    "Refusal",
    "Lookup",
    "Call",
    "Change",
    "Wait",
    "Idle",
    "Park",
    "Action",
    "Absorption",
    "Chain",
]

S = TypeVar("S", bound="ChainState")


class ChainState(BaseModel):
    """Base of a chain's state: persisted as JSON in ``chain_visits.state``. A field a later version dropped is
    ignored when an old state is read (persisted state outlives the code that wrote it)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False)


@dataclass(frozen=True)
class Emission:
    topic_id: str  #: a catalog topic id (yibao.core.topics)
    message: Any  #: a pydantic message with ``message_id`` and ``to_json()`` (HisResult, VisitFact, …)
    key: str  #: the Kafka key (the HIS visit id; another visit's for a 血透 backfill)


@dataclass
class Effects:
    """What a handler may do besides changing the state: emit messages (published when the unit of work commits,
    through the outbox) and run things after the commit (metrics, which must not count a unit rolled back)."""

    service: str
    key: str
    kind: str
    now: _dt.datetime
    version: int = 0  #: the visit's version when the unit of work began (stable ids of per-version messages)
    emissions: list[Emission] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)

    def emit(self, topic_id: str, message: Any, *, key: str | None = None) -> None:
        """Publish ``message`` on the catalog topic ``topic_id``, keyed by this visit (or ``key``)."""
        self.emissions.append(Emission(topic_id, message, key or self.key))

    def after_commit(self, fn: Callable[[], None]) -> None:
        self.after.append(fn)

    def fork(self) -> Effects:
        """A copy to try handlers on that may fail (their emissions are kept only if they succeed)."""
        return Effects(self.service, self.key, self.kind, self.now, self.version, list(self.emissions),
                       list(self.after))


@dataclass(frozen=True)
class Reply:
    """A call's answer: the platform's ``output`` and the msgid it answered — or, for a lost answer found by a
    lookup (``adopted``), the output as if the call had answered and the lost call's msgid."""

    output: dict[str, Any]
    msgid: str
    adopted: bool = False


@dataclass(frozen=True)
class Refusal:
    """The platform refused a call (``rejected``: its err_msg) or the input broke a catalog rule before anything
    was sent (``invalid_input``: which field broke which rule). ``text`` is masked."""

    reason_code: Literal["rejected", "invalid_input"]
    text: str
    infno: str
    infcode: str | None = None

    @classmethod
    def of(cls, exc: BusinessRejection | EnvelopeValidationError) -> Refusal:
        if isinstance(exc, BusinessRejection):
            return cls("rejected", mask_text(exc.err_msg or "refused without a message")[:1000], exc.infno,
                       exc.infcode)
        return cls("invalid_input", str(exc)[:1000], exc.infno)


@dataclass(frozen=True)
class Lookup:
    """How to ask the platform whether a call whose answer was lost took effect: the query ``infno`` (the catalog
    names it for the transaction; the engine checks they agree), its ``input``, and ``found(output, omsgid)``:
    the call's output as if it had answered, or None when the platform shows no trace of it."""

    infno: str
    input: dict[str, Any]
    found: Callable[[dict[str, Any], str], dict[str, Any] | None]


@dataclass(frozen=True)
class Call(Generic[S]):
    """One platform call the chain wants made now."""

    name: str  #: stable within the visit while the call is wanted, e.g. "2207:<request tag>" (≤ 64 chars)
    infno: str
    input: dict[str, Any]
    on_ok: Callable[[S, Reply, Effects], None]
    on_refused: Callable[[S, Refusal, Effects], None]
    lookup: Lookup | None = None
    psn_no: str | None = None  #: needed to reverse it (2601)
    insuplc_admdvs: str | None = None
    read_timeout_s: float | None = None


@dataclass(frozen=True)
class Change(Generic[S]):
    """A change of state with no platform call. A change that *gathers* what has arrived so far (a batch of charge
    lines to upload) is applied only by a driver about to send, never while a message is being absorbed: what
    arrives meanwhile joins it."""

    name: str
    apply: Callable[[S, Effects], None]
    gathers: bool = False


@dataclass(frozen=True)
class Wait:
    """Nothing to do until another message arrives (``until`` None) or until a moment (a deadline to enforce)."""

    reason: str
    until: _dt.datetime | None = None


@dataclass(frozen=True)
class Idle:
    """All done for now."""


@dataclass(frozen=True)
class Park:
    """Stop for a person: the visit is parked (status, ``on_parked``, a dead letter) until ``yibao replay`` — for
    what a chain must never guess about (e.g. a platform answer that does not add up). An unresolved call is left
    as it is."""

    reason_code: str
    reason: str


Action = Call[Any] | Change[Any] | Wait | Idle | Park


@dataclass(frozen=True)
class Absorption(Generic[S]):
    """What one incoming message does to one visit: ``apply`` records it in the state (never decides)."""

    message_id: str  #: unique per message (the inbox key)
    visit_key: str
    visit_kind: str
    apply: Callable[[S, Effects], None]


class Chain(Protocol[S]):
    """What a service supplies to the engine."""

    service: str

    def new_state(self, key: str, kind: str) -> S: ...

    def next_action(self, state: S, now: _dt.datetime) -> Action: ...

    def on_parked(self, state: S, fx: Effects, reason_code: str, reason: str) -> None:
        """Record in the state, and tell HIS, that the visit's pending work is parked."""
        ...
