"""The chain state of one lane (one kind of record for one target, one shard): the batch decided and not
finished, the records a refused batch is split into, and why the lane is held. The records themselves live in
``upload_records`` — the state store (:mod:`yibao.upload_scheduler.store`) reads the batch's records and a
window of pending ones into :attr:`LaneState.records` and writes back only what changed.
"""

from __future__ import annotations

import datetime as _dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from yibao.chains.model import ChainState
from yibao.upload_scheduler.records import RecordBook

__all__ = ["Batch", "Parked", "LaneState"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Batch(_Model):
    """Records decided for one call (frozen, so a lost answer finds the very same call again)."""

    no: int
    infno: str
    keys: list[str]
    revisions: dict[str, int]
    #: upload: the records' transaction; change: an accepted record's new revision (3402); reverse: withdraw the
    #: platform's copy first (DRG 冲销), then upload
    purpose: Literal["upload", "change", "reverse"] = "upload"
    #: sending: the call is wanted; polling: the platform answered with a task, its result is polled
    phase: Literal["sending", "polling"] = "sending"
    task_id: str | None = None
    msgid: str | None = None  #: of the upload a task answers
    polls: int = 0
    next_poll_at: _dt.datetime | None = None


class Parked(_Model):
    reason_code: str
    reason: str


class LaneState(ChainState):
    lane: str
    target: str
    kind: str
    counter: int = 0
    batch: Batch | None = None
    #: records of a refused batch, sent one by one so the bad one is found and the rest go on
    singles: list[str] = Field(default_factory=list)
    hold: Parked | None = None
    parked: Parked | None = None

    _records: RecordBook | None = PrivateAttr(default=None)

    @property
    def records(self) -> RecordBook:
        if self._records is None:
            self._records = RecordBook(self.lane)
        return self._records

    def next_no(self) -> int:
        self.counter += 1
        return self.counter
