"""The reconciliation service's wire contracts and run vocabulary.

* :class:`ReconCommand` (topic ``yibao.recon.commands.v1``): finance or a scheduler asks for a run, or approves
  (or rejects) repairs of a run. ``command_id`` is the inbox key: the same command delivered twice acts once,
  and a ``run`` command's run id is derived from it, so a redelivered command names the same run.
* :class:`ReconRunEvent` (topic ``yibao.recon.results.v1``, keyed by run id): progress and the final state.
* :class:`RunRequest`: what every way of starting a run (schedule, CLI, HTTP, topic) turns into.

Run states: ``running`` → ``balanced`` (3201 agreed everywhere) | ``differences_found`` (differences remain:
repairs await approval or manual handling) | ``repaired_and_balanced`` (every difference repaired, and 3201
agrees on a re-check) | ``failed`` (with the reason; nothing half-applied) — or ``refused`` at once when the
days are held by another run.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yibao.core import clock

__all__ = [
    "Scope",
    "RunState",
    "FINAL_STATES",
    "Trigger",
    "RunRequest",
    "ReconCommand",
    "ReconRunEvent",
    "MAX_PERIOD_DAYS",
]

RunState = Literal["running", "balanced", "differences_found", "repaired_and_balanced", "failed", "refused"]
FINAL_STATES: frozenset[str] = frozenset({"balanced", "differences_found", "repaired_and_balanced", "failed",
                                          "refused"})
Trigger = Literal["schedule", "cli", "http", "command"]
Scope = Literal["national", "mobile"]

#: a run covers at most this many days (3201 is a daily statement; a month at once is the practical limit)
MAX_PERIOD_DAYS = 31


class RunRequest(BaseModel):
    """A period (whole days, Asia/Shanghai) and optional filters of the 3201 keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date_from: _dt.date
    date_to: _dt.date
    insutype: str | None = Field(None, max_length=6)
    clr_type: str | None = Field(None, max_length=6)
    trigger: Trigger = "cli"
    requested_by: str | None = Field(None, max_length=64)
    #: national: 3201/3202 against the national platform; mobile: the mobile-pay orders (6301, the ledger's
    #: mobile channels — yibao.reconciliation.mobile)
    scope: Scope = "national"

    @model_validator(mode="after")
    def _period(self) -> "RunRequest":
        if self.date_to < self.date_from:
            raise ValueError("date_to is before date_from")
        if (self.date_to - self.date_from).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"a run covers at most {MAX_PERIOD_DAYS} days")
        return self

    @classmethod
    def for_day(cls, day: _dt.date, **kw: Any) -> "RunRequest":
        return cls(date_from=day, date_to=day, **kw)

    def days(self) -> list[_dt.date]:
        return [self.date_from + _dt.timedelta(days=i) for i in range((self.date_to - self.date_from).days + 1)]


class ReconCommand(BaseModel):
    """A request on the command topic: ``run`` a period, or ``approve`` / ``reject`` repairs of a run."""

    model_config = ConfigDict(extra="forbid")

    command_id: str = Field(min_length=1, max_length=80)
    kind: Literal["run", "approve", "reject"]
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None
    insutype: str | None = Field(None, max_length=6)
    clr_type: str | None = Field(None, max_length=6)
    scope: Scope | None = Field(None, description="national (3201/3202, the default) or mobile")
    run_id: str | None = Field(None, max_length=40)
    difference_ids: list[int] | None = Field(None, max_length=1000)
    by: str | None = Field(None, max_length=64, description="who asks or approves (finance user id)")
    reason: str | None = Field(None, max_length=500)
    issued_at: _dt.datetime = Field(default_factory=clock.now)
    # the signature (see yibao.reconciliation.signing): who issued it, in which role, with which key
    role: Literal["clerk", "approver", "ops"] | None = Field(None, description="role the issuer acts in")
    key_id: str | None = Field(None, max_length=64, description="the signing key (bound to the issuer)")
    nonce: str | None = Field(None, max_length=64, description="random, used once")
    sig_alg: Literal["HMAC-SHA256"] | None = None
    signature: str | None = Field(None, max_length=64, description="HMAC-SHA256 hex of the canonical command")

    @field_validator("issued_at")
    @classmethod
    def _shanghai(cls, value: _dt.datetime) -> _dt.datetime:
        return clock.as_shanghai(value)

    @model_validator(mode="after")
    def _complete(self) -> "ReconCommand":
        if self.kind == "run" and self.date_from is None:
            raise ValueError("a run command needs date_from")
        if self.kind in ("approve", "reject"):
            if not self.run_id:
                raise ValueError(f"an {self.kind} command needs run_id")
            if not self.by:
                raise ValueError(f"an {self.kind} command needs by (who decides)")
        return self

    def run_request(self) -> RunRequest:
        assert self.date_from is not None
        return RunRequest(date_from=self.date_from, date_to=self.date_to or self.date_from, insutype=self.insutype,
                          clr_type=self.clr_type, trigger="command", requested_by=self.by,
                          scope=self.scope or "national")

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class ReconRunEvent(BaseModel):
    """Where a run stands: published on every step and at the end (keyed by run id)."""

    model_config = ConfigDict(extra="forbid")

    message_id: str
    run_id: str
    state: RunState
    step: str | None = None
    done: int = 0
    total: int = 0
    message: str | None = None
    date_from: _dt.date
    date_to: _dt.date
    differences: dict[str, int] = Field(default_factory=dict, description="open differences by class")
    occurred_at: _dt.datetime = Field(default_factory=clock.now)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
