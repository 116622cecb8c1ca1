"""The counter's wire contracts: a query on ``yibao.counter.requests.v1`` (or ``POST /counter/query``) and its
answer on ``yibao.counter.results.v1`` (or the HTTP response), under the request's correlation id.

The request carries the platform's own input (``{"data": {...}}`` of the transaction, as the interface spec names
it): one contract for every query, validated against the catalog before anything is sent, so a bad request is
answered with the field it got wrong. Answers carry the platform's output as it came (personal data included: the
results topic is as sensitive as HIS itself; nothing of it is logged).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from yibao.core import clock
from yibao.core.clock import ShanghaiTime
from yibao.core.results import stable_id

__all__ = ["SERVED", "CACHED", "CounterRequest", "CounterAnswer", "AnswerStatus"]

#: the transactions the counter answers (queries only: nothing here changes anything on the platform; 3101 明细审核
#: analyses a visit's orders against the platform's rules and answers the violations, it records nothing)
SERVED: tuple[str, ...] = ("1101", "1201", "1901", "2001", "3101", "5102", "5201", "5202", "5203", "5204", "5205",
                           "5206", "5301", "5302", "5303", "5304")
#: answers the spec lets a client keep for a while (dictionaries, institution records): served from a cache
CACHED: frozenset[str] = frozenset({"1901", "1201"})

#: ok · invalid (the request broke a rule: ``field`` names it) · rejected (the platform said no: err_msg in
#: ``reason``) · timeout (no answer within the budget) · failed (the platform could not be reached) · expired (the
#: request's own deadline had passed when it was read)
AnswerStatus = Literal["ok", "invalid", "rejected", "timeout", "failed", "expired"]


class CounterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    correlation_id: str = Field(min_length=1, max_length=64, description="the asker's id; the answer carries it")
    infno: str = Field(min_length=4, max_length=6, description=f"one of {', '.join(SERVED)}")
    input: dict[str, Any] = Field(description="the transaction's input as the interface spec names it")
    insuplc_admdvs: str | None = Field(None, pattern=r"^\d{6}$", description="参保地 (from 1101): needed with psn_no")
    channel: Literal["his", "counter", "kiosk", "wechat", "other"] = "his"
    timeout_s: float | None = Field(None, gt=0, le=120, description="the asker's budget (capped by the setting)")
    expires_at: ShanghaiTime | None = Field(None, description="a request read after this is answered expired")


class CounterAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str
    correlation_id: str
    infno: str
    status: AnswerStatus
    output: dict[str, Any] | None = None
    field: str | None = Field(None, description="invalid: the field of the request that is wrong")
    reason: str | None = None
    cached: bool = False
    msgid: str | None = None
    answered_at: ShanghaiTime = Field(default_factory=clock.now)

    @classmethod
    def of(cls, request_id: str, infno: str, status: AnswerStatus, **fields: Any) -> CounterAnswer:
        return cls(message_id=stable_id("counter", "answer", request_id), correlation_id=request_id, infno=infno,
                   status=status, **fields)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
