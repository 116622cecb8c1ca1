"""What the settlement calls share: who the calls are about, the 5204 lookup, the refusal text, and the rows of a
5204 answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yibao.chains.model import Effects, Lookup, Refusal
from yibao.settlement.results import reject
from yibao.settlement.state import RefundRequest, SettlementState, SettleRequest

__all__ = ["clean", "who", "lookup_5204", "detail_rows", "find_request", "reject_refused"]

Found = Callable[[dict[str, Any], str], dict[str, Any] | None]


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out absent values."""
    return {k: v for k, v in values.items() if v is not None and v != ""}


def who(st: SettlementState) -> dict[str, Any]:
    return {"psn_no": st.person.psn_no, "mdtrt_id": st.person.mdtrt_id}


def lookup_5204(st: SettlementState, found: Found) -> Lookup:
    """5204 费用明细查询 of the visit: the lines the platform holds, and under which settlement."""
    return Lookup("5204", {"data": who(st)}, found=found)


def detail_rows(output: dict[str, Any]) -> list[dict[str, Any]]:
    rows = output.get("feedetail") or []
    return [r for r in rows if isinstance(r, dict)]


def find_request(st: SettlementState, kind: str, request_id: str, message_id: str) -> Any:
    return next((r for r in st.requests if r.kind == kind and r.id == request_id and r.message_id == message_id),
                None)


def reject_refused(fx: Effects, st: SettlementState, request: SettleRequest | RefundRequest, infno: str,
                   refusal: Refusal) -> None:
    """The platform refused the request's call: HIS is told with its reason."""
    code = "platform_rejected" if refusal.reason_code == "rejected" else "invalid_input"
    reject(fx, st, request, reason_code=code, reason=refusal.text, step_infno=infno)
