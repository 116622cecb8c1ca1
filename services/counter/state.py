"""The 备案 chain's state of one HIS filing (persisted as JSON in ``chain_visits.state``, sealed at rest).

One chain visit per HIS filing record (its ``his_visit_id``): the filing request, the person 1101 found, what the
platform answered (the filing's serial ``trt_dcla_detl_sn``), and the revocations HIS asked for. Everything
:meth:`~yibao.counter.chain.FilingChain.next_action` decides from is here.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.chains.model import ChainState
from yibao.core.results import stable_id
from yibao.hisevents.models import FilingRequested, FilingRevoked, parse_event

__all__ = ["Person", "Revocation", "Failure", "FilingState", "Status"]

#: pending: 1101 / the filing call not finished · filed: the platform holds it · rejected: refused (never filed) ·
#: revoked: 2502/2504/2506 done
Status = Literal["pending", "filed", "rejected", "revoked"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Person(_Model):
    psn_no: str
    insutype: str
    insuplc_admdvs: str


class Failure(_Model):
    reason_code: str
    reason: str
    step_infno: str | None = None


class Revocation(_Model):
    """A revocation HIS asked for: answered once (done or rejected)."""

    id: str
    event: dict[str, Any] = Field(repr=False)
    received_at: _dt.datetime
    phase: Literal["new", "done", "rejected"] = "new"

    @property
    def tag(self) -> str:
        return stable_id("revoke", self.id)[:16]

    def parsed(self) -> FilingRevoked:
        event = parse_event(self.event)
        assert isinstance(event, FilingRevoked)
        return event


class FilingState(ChainState):
    filing: dict[str, Any] | None = Field(None, repr=False)  #: the FilingRequested event (JSON)
    received_at: _dt.datetime | None = None
    status: Status = "pending"
    person: Person | None = None
    serial: str | None = None  #: trt_dcla_detl_sn, the platform's id of the filing
    infno: str | None = None  #: the transaction that filed it
    msgid: str | None = None
    revocations: list[Revocation] = Field(default_factory=list)
    failure: Failure | None = None
    parked: Failure | None = None

    def event(self) -> FilingRequested:
        assert self.filing is not None
        event = parse_event(self.filing)
        assert isinstance(event, FilingRequested)
        return event

    def revocation(self, revocation_id: str) -> Revocation | None:
        return next((r for r in self.revocations if r.id == revocation_id), None)

    def head(self) -> Revocation | None:
        return next((r for r in self.revocations if r.phase == "new"), None)
