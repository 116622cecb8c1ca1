"""What the registration calls share: absent values left out, the refusals and the failed registration, the
metrics' request labels, the 诊查费 detail, and the 5201 lookup most lost answers are resolved with."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from yibao.chains.model import Change, Effects, Lookup, Refusal
from yibao.hisevents.models import Admission, PatientRegistered
from yibao.registration.config import ChainConfig
from yibao.registration.consultation_fee import QuoteInputError
from yibao.registration.results import close_request, emit_fact, emit_result
from yibao.registration.state import Failure, Person, RegistrationState, Request

__all__ = [
    "compact",
    "request_label",
    "fee_detail",
    "fail_registration",
    "refused_registration",
    "request_refused",
    "reject",
    "rejection",
    "target_of",
    "rows",
    "blank",
    "visit_row",
    "lookup_5201",
]

Found = Callable[[dict[str, Any], str], dict[str, Any] | None]


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out absent values (None and blank text): the catalog then reports a *required* one as missing."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}


def request_label(state: RegistrationState, request: Request | None = None) -> str:
    """The bounded ``request`` label of the chain metrics."""
    if request is None:
        return "registration" if state.kind == "outpatient" else "admission"
    if request.kind == "cancel":
        return f"cancel_{request.target}"
    return {"identity_refused": "identity_change"}.get(request.kind, request.kind)


def target_of(state: RegistrationState, request: Request) -> str | None:
    """What a request rolls back: a switch to self-pay cancels the registration or the admission."""
    if request.kind == "self_pay_switch":
        return "registration" if state.kind == "outpatient" else "admission"
    return request.target


def fee_detail(cfg: ChainConfig, reg: Any, insutype: str | None) -> dict[str, Any]:
    """诊查费统筹 at the counter: the pooled and self-paid parts of the registration fee (outpatient only)."""
    if not isinstance(reg, PatientRegistered) or reg.reg_fee is None:
        return {}
    try:
        quote = cfg.fee_rules.quote(reg_fee=reg.reg_fee, reg_type=reg.reg_type, med_type=reg.med_type,
                                    insutype=insutype)
    except QuoteInputError as exc:
        return {"consultation_fee_error": str(exc)}
    return {"consultation_fee": quote.as_detail()}


def fail_registration(state: RegistrationState, fx: Effects, failure: Failure, msgid: str | None = None) -> None:
    """The registration will not happen: HIS is told why, settlement that the visit has no platform visit."""
    reg = state.registration_event()
    state.status, state.failure = "rejected", failure
    emit_result(fx, "rejected", (reg.event_id,), request=request_label(state), since=state.registration_received_at,
                step_infno=failure.step_infno, msgid=msgid, reason_code=failure.reason_code, reason=failure.reason)
    emit_fact(fx, "registration_failed", (reg.event_id,), reason=failure.reason)


def refused_registration(infno: str) -> Callable[[RegistrationState, Refusal, Effects], None]:
    """A refused 1101/2001/2201/2401: the registration fails with the platform's reason."""
    def on_refused(state: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        if state.status == "pending":
            fail_registration(state, fx, Failure(reason_code=refusal.reason_code, reason=refusal.text,
                                                 step_infno=infno))

    return on_refused


def request_refused(request_id: str, kind: str, infno: str) -> Callable[[RegistrationState, Refusal, Effects], None]:
    """A refused request call: HIS is told why; settlement hears the request is finished."""
    def on_refused(state: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        request = state.request(request_id, kind)  # type: ignore[arg-type]
        if request is None or not request.active:
            return
        request.phase = "rejected"
        emit_result(fx, "rejected", (request.kind, request.id), request=request_label(state, request),
                    since=request.received_at, his_request_id=request.id, step_infno=infno,
                    mdtrt_id=state.mdtrt_id, target=request.target, reason_code=refusal.reason_code,
                    reason=refusal.text)
        close_request(fx, request.kind, request.id, request.occurred_at, reason=f"{infno} refused: {refusal.text}")

    return on_refused


def reject(state: RegistrationState, fx: Effects, request: Request, code: str, reason: str) -> None:
    """Answer a request with a rejection of ours (wrong order, wrong state): HIS is told, settlement hears it is
    finished."""
    request.phase = "rejected"
    emit_result(fx, "rejected", (request.kind, request.id), request=request_label(state, request),
                since=request.received_at, his_request_id=request.id, mdtrt_id=state.mdtrt_id,
                target=target_of(state, request), reason_code=code, reason=reason)
    close_request(fx, request.kind, request.id, request.occurred_at, reason=f"rejected [{code}]: {reason}")


def rejection(request: Request, code: str, reason: str) -> Change[RegistrationState]:
    """The local change rejecting ``request`` (if it is still open)."""
    request_id, kind = request.id, request.kind

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is not None and current.active:
            reject(s, fx, current, code, reason)

    return Change(f"reject:{request.tag}", apply)


def rows(output: dict[str, Any] | None, node: str) -> list[dict[str, Any]]:
    value = (output or {}).get(node)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def visit_row(output: dict[str, Any], mdtrt_id: str) -> dict[str, Any] | None:
    """The 5201 row of one platform visit."""
    return next((r for r in rows(output, "mdtrtinfo") if str(r.get("mdtrt_id") or "") == mdtrt_id), None)


def lookup_5201(cfg: ChainConfig, person: Person, around: _dt.datetime, found: Found, *,
                mdtrt_id: str | None = None) -> Lookup:
    """5201 就诊信息查询 of the person's visits ``cfg.query_window`` either side of ``around``."""
    return Lookup("5201", {"data": compact({
        "psn_no": person.psn_no, "begntime": around - cfg.query_window, "endtime": around + cfg.query_window,
        "mdtrt_id": mdtrt_id})}, found=found)
