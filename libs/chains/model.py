"""What a chain definition works with: the visit, and the actions it can ask the engine to take."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel
from sqlalchemy import Connection

from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError

__all__ = [
    "Visit",
    "Emission",
    "Step",
    "QuerySpec",
    "UnknownPolicy",
    "Wait",
    "Idle",
    "LocalChange",
    "Park",
    "Action",
    "ChainDefinition",
    "OnOk",
    "OnRefused",
]


@dataclass(frozen=True)
class Emission:
    topic_id: str  #: a catalog topic id (yibao.core.topics)
    message: BaseModel  #: a HisResult / VisitFact / SettlementFact (has ``message_id`` and ``to_json()``)


@dataclass
class Visit:
    """One HIS visit as one service sees it. ``state`` is the definition's (JSON-able) state."""

    service: str
    key: str
    kind: str
    state: dict[str, Any]
    status: str = "ready"
    version: int = 0
    attempts: int = 0
    emitted: list[Emission] = field(default_factory=list)

    def emit(self, topic_id: str, message: BaseModel) -> None:
        """Publish ``message`` (keyed by this visit) when the unit of work commits."""
        self.emitted.append(Emission(topic_id, message))


OnOk = Callable[[Connection, Visit, dict[str, Any], str], None]
OnRefused = Callable[[Connection, Visit, "BusinessRejection | EnvelopeValidationError"], None]


@dataclass(frozen=True)
class QuerySpec:
    """A read-only platform call that tells whether an earlier step took effect."""

    infno: str
    input: dict[str, Any]
    #: from the query's output and the unknown call's msgid: the step's output as if it had answered (for
    #: ``on_ok``), or None when the platform shows no trace of it
    found: Callable[[dict[str, Any], str], dict[str, Any] | None]
    insuplc_admdvs: str | None = None


@dataclass(frozen=True)
class UnknownPolicy:
    """How an unknown outcome of this step is resolved (see README "Unknown outcomes").

    * ``retry`` — the step changes nothing on the platform (a query, a pre-settlement): send it again;
    * ``query`` — ask the platform (``query``); adopt what it did, else send again;
    * ``reverse`` — 冲正 2601 the original msgid (undoes it, or the platform says nothing was done), then
      send again;
    * ``query_then_reverse`` — ask first and adopt; if there is no trace, 2601 to make sure, then send again.
    """

    kind: Literal["retry", "query", "reverse", "query_then_reverse"]
    query: Callable[[Visit, str], QuerySpec] | None = None

    def __post_init__(self) -> None:
        if self.kind in ("query", "query_then_reverse") and self.query is None:
            raise ValueError(f"unknown-outcome policy {self.kind} needs a query")


RETRY = UnknownPolicy("retry")


@dataclass(frozen=True)
class Step:
    """One platform call the chain wants made now."""

    name: str  #: stable within the chain, e.g. "2207:settle:<request id>"
    infno: str
    input: dict[str, Any]
    on_ok: OnOk
    on_refused: OnRefused
    unknown: UnknownPolicy = RETRY
    psn_no: str | None = None  #: needed for 2601
    insuplc_admdvs: str | None = None
    read_timeout_s: float | None = None


@dataclass(frozen=True)
class Wait:
    """Nothing to do until another message arrives (``until`` None) or until a moment (a deadline to enforce)."""

    reason: str
    until: _dt.datetime | None = None


@dataclass(frozen=True)
class Idle:
    """All done for now."""


@dataclass(frozen=True)
class LocalChange:
    """A change of state with no platform call (e.g. refusing a request whose deadline passed)."""

    name: str
    apply: Callable[[Connection, Visit], None]


@dataclass(frozen=True)
class Park:
    """Stop for a person: the visit is parked (status, ``on_parked``, a dead letter) until ``yibao replay`` — for
    what a chain must never guess about (e.g. a platform answer that does not add up). An unresolved call is
    left as it is (never marked superseded by a Park)."""

    reason_code: str
    reason: str


Action = Step | Wait | Idle | LocalChange | Park


class ChainDefinition(Protocol):
    """What a service supplies to the engine."""

    service: str

    def new_state(self, visit_kind: str) -> dict[str, Any]: ...

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime) -> Action: ...

    def on_parked(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        """Record in the state and tell HIS that the visit's pending work is parked."""
        ...
