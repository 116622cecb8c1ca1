"""What the 备案 calls share: absent values left out, a filing refused, a revocation answered."""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Effects
from yibao.counter.results import emit_result
from yibao.counter.state import Failure, FilingState, Revocation

__all__ = ["compact", "reject_filing", "answer_revocation", "rows"]


def compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}


def rows(output: dict[str, Any], node: str) -> list[dict[str, Any]]:
    value = output.get(node)
    if isinstance(value, dict):
        value = [value]
    return [r for r in (value or []) if isinstance(r, dict)]


def reject_filing(s: FilingState, fx: Effects, failure: Failure, msgid: str | None = None) -> None:
    event = s.event()
    s.status, s.failure = "rejected", failure
    emit_result(fx, "rejected", (event.his_request_id,), request=event.filing, since=s.received_at,
                his_request_id=event.his_request_id, step_infno=failure.step_infno, msgid=msgid,
                reason_code=failure.reason_code, reason=failure.reason, detail={"filing": event.filing})


def answer_revocation(s: FilingState, fx: Effects, r: Revocation, *, done: bool, reason_code: str | None = None,
                      reason: str | None = None, step_infno: str | None = None, msgid: str | None = None) -> None:
    r.phase = "done" if done else "rejected"
    detail = {"filing": s.event().filing if s.filing else None, "trt_dcla_detl_sn": s.serial}
    if done:
        s.status = "revoked"
        emit_result(fx, "cancelled", ("revoke", r.id), request="revocation", since=r.received_at, target="filing",
                    his_request_id=r.id, step_infno=step_infno, msgid=msgid,
                    psn_no=s.person.psn_no if s.person else None, detail=detail)
    else:
        emit_result(fx, "rejected", ("revoke", r.id), request="revocation", since=r.received_at, target="filing",
                    his_request_id=r.id, step_infno=step_infno, msgid=msgid, reason_code=reason_code,
                    reason=reason, detail=detail)
