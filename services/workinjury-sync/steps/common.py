"""What the work-injury steps share: the GYD053 lookup every lost answer is resolved with, the catalog check of one
record (the field named), the way records are written for the platform, the answers to HIS, and the call that
uploads one record of a case (:func:`record_call`)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from yibao.chains.model import Call, Effects, Lookup, Refusal, Reply
from yibao.core import clock
from yibao.core.results import stable_id
from yibao.envelope.errors import EnvelopeValidationError
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.results import count_records, emit_result, observe_upload, park_input
from yibao.workinjury_sync.state import Part, WorkInjuryState

__all__ = ["LOST_SERIAL", "lookup", "check_record", "text_time", "text_date", "text_amount", "compact", "results_of",
           "accept", "refuse", "invalid", "Found", "open_part", "record_call"]

P = TypeVar("P", bound=Part)

#: stands for the serial of the call whose answer was lost, in a GYD053 lookup's input; the worker's engine puts the
#: journalled serial in its place when it sends the lookup (yibao.workinjury_sync.engine)
LOST_SERIAL = "<lost transNo>"

Found = Callable[[dict[str, Any], str], dict[str, Any] | None]


def lookup(infno: str, found: Found | None = None) -> Lookup:
    """GYD053 通用交易查询 of the lost call's serial: the platform's recorded answer is adopted when it was a success
    (and ``found`` accepts it); no trace of the serial (or a recorded refusal): the call is sent again."""
    def adopt(output: dict[str, Any], lost: str) -> dict[str, Any] | None:
        if str(output.get("infcode", "")) != "0" or output.get("trans_code") not in (None, infno):
            return None
        original = output.get("output")
        original = dict(original) if isinstance(original, dict) else {}
        return found(original, lost) if found is not None else original

    return Lookup("GYD053", {"data": {"trans_code": infno, "trans_no": LOST_SERIAL}}, found=adopt)


def check_record(cfg: ChainConfig, infno: str, node: str, record: dict[str, Any]) -> str | None:
    """The catalog's verdict on one record of ``infno`` (是否必填, 参数长度, types, code lists): None, or what is wrong,
    the field named (``fee_list.item_code: max_length 50``) — never its value."""
    try:
        cfg.catalog.prepare_input(infno, {node: [record]})
    except EnvelopeValidationError as exc:
        path = exc.path.replace("[0]", "", 1)
        return f"{path}: {exc.rule}"
    return None


def text_time(value: _dt.datetime | None) -> str | None:
    return None if value is None else clock.format_datetime(clock.as_shanghai(value))


def text_date(value: _dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def text_amount(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def compact(values: dict[str, Any]) -> dict[str, Any]:
    """Absent values left out (the catalog then names a required one as missing)."""
    return {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}


def results_of(output: dict[str, Any]) -> dict[str, str]:
    """biz_no → plat_no of an upload's answer."""
    rows = output.get("result")
    return {str(r.get("biz_no")): str(r.get("plat_no") or "") for r in rows if isinstance(r, dict)} \
        if isinstance(rows, list) else {}


def accept(fx: Effects, cfg: ChainConfig, part: Part, *, request: str, infno: str, trans_no: str,
           platform_ids: dict[str, str] | None = None, ident: tuple[object, ...] = (),
           detail: dict[str, Any] | None = None) -> None:
    """The platform took ``part``: done, its age counted against the deadline, HIS told."""
    part.status, part.trans_no, part.done_at = "done", trans_no, fx.now
    deadline = cfg.deadline_s(infno)
    observe_upload(fx, infno, part.occurred_at, deadline)
    count_records(fx, infno, "uploaded")
    emit_result(fx, request=request, kind="uploaded", ident=ident or (request, part.event_id), part=part,
                infno=infno, trans_no=trans_no, deadline_s=deadline, platform_ids=platform_ids, detail=detail)


def refuse(fx: Effects, part: Part, refusal: Refusal, *, request: str, infno: str,
           ident: tuple[object, ...] = ()) -> None:
    """The platform (or our check of a whole request) said no: HIS is told why. Invalid input is also parked."""
    if refusal.reason_code == "invalid_input":
        invalid(fx, part, refusal.text, request=request, infno=infno, ident=ident)
        return
    part.status, part.reason_code, part.reason = "refused", "rejected", refusal.text
    count_records(fx, infno, "refused")
    emit_result(fx, request=request, kind="refused", ident=ident or (request, part.event_id), part=part, infno=infno,
                reason_code="rejected", reason=refusal.text)


def invalid(fx: Effects, part: Part, reason: str, *, request: str, infno: str | None,
            ident: tuple[object, ...] = (), code: str = "invalid_input") -> None:
    """Refused before sending by our checks (the field named): HIS told, the record parked on the dead-letter topic;
    the rest of the case goes on."""
    part.status, part.reason_code, part.reason = "invalid", code, reason
    if infno:
        count_records(fx, infno, "invalid")
    emit_result(fx, request=request, kind="invalid", ident=ident or (request, part.event_id), part=part, infno=infno,
                reason_code=code, reason=reason)
    if code == "invalid_input":
        park_input(fx, part, request=request, reason=reason)


def open_part(parts: Callable[[WorkInjuryState], Iterable[P | None]], event_id: str
              ) -> Callable[[WorkInjuryState], P | None]:
    """Finds the part of ``event_id`` among ``parts(state)`` again in the state as it is *now* (a handler runs after
    the call, on the current state) — while it is still open; None once it ended or was replaced."""
    def find(s: WorkInjuryState) -> P | None:
        return next((p for p in parts(s) if p is not None and p.event_id == event_id and p.open), None)

    return find


def record_call(cfg: ChainConfig, part: Part, parts: Callable[[WorkInjuryState], Iterable[P | None]], *,
                infno: str, node: str, record: dict[str, Any], request: str,
                took: Callable[[WorkInjuryState, P, Reply], dict[str, str]],
                detail: Callable[[Reply], dict[str, Any]] | None = None) -> Call[WorkInjuryState]:
    """The upload of one record of a case (``{node: [record]}`` to ``infno``), its lost answer looked up with GYD053.
    Taken: ``took`` records what the platform now holds in the case and names its ids, then the part is accepted (HIS
    told); refused: HIS told why. Either answer applies only while ``part`` (found again among ``parts``) is open."""
    current = open_part(parts, part.event_id)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            platform_ids = took(s, p, reply)
            accept(fx, cfg, p, request=request, infno=infno, trans_no=reply.msgid, platform_ids=platform_ids,
                   detail=detail(reply) if detail is not None else None)

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        p = current(s)
        if p is not None:
            refuse(fx, p, refusal, request=request, infno=infno)

    return Call(f"{infno}:{stable_id(part.event_id)[:16]}", infno, {node: [record]}, on_ok=on_ok,
                on_refused=on_refused, lookup=lookup(infno))
