"""How incoming messages change a case's state — recording only, never deciding (that is ``next_action``'s job).

Sources:

* HIS's requests (``workinjury_requests``): parsed with pydantic (:func:`yibao.workinjury_sync.models.parse_request`)
  — a message that is not a valid request raises :class:`~yibao.core.errors.DecodeError` naming the field and is
  parked on the dead-letter topic by the runtime; the rest flow. Each request is recorded as the platform's record
  (times and amounts as text), ready for the catalog's checks;
* the filings this worker downloaded (``workinjury_filings``): an application (GYD001) marks its case downloaded,
  so its audit may go up;
* the revocations it downloaded (``workinjury_revocations``): a detail revocation (GYD401) makes the GYD101 stream
  download that admission's details again (GYD102);
* the worker itself: each download stream is started once (:func:`stream_starts`), a poll or a re-download asked by
  ops (:func:`poll_now`, :func:`redownload`).

A message is applied once (the engine's inbox keys on its id, prefixed by origin: ``his:``, ``dl:``, ``stream:``).
A later version of a record replaces the earlier one only while the earlier one has not been chosen to be sent;
otherwise it is kept beside it and answered on its own.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from yibao.chains.model import Absorption, Effects
from yibao.core.errors import DecodeError
from yibao.core.results import stable_id
from yibao.hisevents.models import validation_reason
from yibao.workinjury_sync.models import (
    Admitted,
    Deducted,
    DeviceSettled,
    DischargeSettled,
    DownloadedRecord,
    FeeLines,
    FilingAudited,
    FilingRegistered,
    FilingUpdated,
    InstitutionChanged,
    MonthEnd,
    Revocation,
    case_key,
    parse_request,
)
from yibao.workinjury_sync.state import (
    AttachmentPart,
    Delivery,
    Line,
    Part,
    StayRequest,
    Tally,
    WorkInjuryState,
)
from yibao.workinjury_sync.steps.common import compact, text_amount, text_date, text_time
from yibao.workinjury_sync.steps.download import fetch_details
from yibao.workinjury_sync.streams import stream_key

__all__ = ["Router", "make_router", "apply_request", "stream_starts", "poll_now", "redownload"]

log = logging.getLogger(__name__)

Router = Callable[[str, bytes], "Absorption[WorkInjuryState] | None"]


def make_router(org_code: str) -> Router:
    """The runtime's router: what one message of a topic does to which case (None: not ours)."""
    def route(topic_id: str, value: bytes) -> Absorption[WorkInjuryState] | None:
        if topic_id == "workinjury_requests":
            try:
                request = parse_request(value)
            except ValidationError as exc:
                raise DecodeError(f"not a work-injury request: {validation_reason(exc)}") from None
            except (UnicodeDecodeError, ValueError) as exc:
                raise DecodeError(f"not a work-injury request: {type(exc).__name__}") from None
            try:
                key, kind = case_key(request, org_code)
            except ValueError as exc:
                raise DecodeError(str(exc)) from None
            return Absorption(f"his:{request.event_id}", key, kind,
                              lambda state, fx: apply_request(state, fx, request, org_code))
        if topic_id in ("workinjury_filings", "workinjury_revocations", "workinjury_visits"):
            try:
                record = DownloadedRecord.model_validate_json(value)
            except ValidationError as exc:
                raise DecodeError(f"not a DownloadedRecord: {validation_reason(exc)}") from None
            if record.kind == "filing_application" and record.record.get("apply_no"):
                return Absorption(f"dl:{record.message_id}", f"application:{record.record['apply_no']}", "filing",
                                  lambda state, fx: _application_downloaded(state, record))
            if record.kind == "detail_revocation" and record.record.get("ipt_no"):
                return Absorption(f"dl:{record.message_id}", stream_key("GYD101"), "download",
                                  lambda state, fx: _details_again(state, record))
            if record.kind in ("settlement", "admission_revocation") and record.record.get("ipt_no"):
                return Absorption(f"dl:{record.message_id}", stream_key("GYD101"), "download",
                                  lambda state, fx: _admission_closed(state, record))
            return None
        return None

    return route


# --- HIS's requests ------------------------------------------------------------------------------------------------

def _part(request: Any, now: _dt.datetime, record: dict[str, Any], cls: type[Part] = Part, **extra: Any) -> Any:
    return cls(event_id=request.event_id, occurred_at=request.occurred_at, received_at=now,
               record=compact(record), **extra)


def apply_request(state: WorkInjuryState, fx: Effects, request: Any, org_code: str) -> None:
    """Record one HIS request in its case (pure)."""
    now = fx.now
    if isinstance(request, (Admitted, FeeLines, DischargeSettled, Deducted)) or (
            isinstance(request, Revocation) and request.stay_id is not None):
        _stay(state, request, now, org_code)
    elif isinstance(request, (FilingAudited, FilingRegistered, FilingUpdated)):
        _filing(state, request, now)
    elif isinstance(request, (DeviceSettled, Revocation)):
        _device(state, request, now, org_code)
    elif isinstance(request, MonthEnd):
        _month(state, request, now, org_code)
    elif isinstance(request, InstitutionChanged):
        _org(state, request, now)


def _amounts(values: dict[str, Decimal | None]) -> dict[str, str | None]:
    return {k: text_amount(v) for k, v in values.items()}


def _attachments(request: Any, now: _dt.datetime, holder: Any) -> list[str]:
    nos = []
    for atta in request.attachments:
        if atta.atta_no not in holder.attachments or holder.attachments[atta.atta_no].status in (
                "invalid", "refused"):
            holder.attachments[atta.atta_no] = AttachmentPart(
                event_id=request.event_id, occurred_at=request.occurred_at, received_at=now, atta_no=atta.atta_no,
                record={"atta_no": atta.atta_no, "atta_name": atta.atta_name, "atta_type": atta.atta_type,
                        "file_content": atta.file_content})
        nos.append(atta.atta_no)
    return nos


def _stay(state: WorkInjuryState, request: Any, now: _dt.datetime, org_code: str) -> None:
    stay = state.stay
    assert stay is not None
    if isinstance(request, Admitted):
        record = {"ipt_no": request.ipt_no, "org_code": request.org_code or org_code, "filing_no": request.filing_no,
                  "psn_no": request.psn_no, "certno": request.certno, "psn_name": request.psn_name,
                  "visit_type": request.visit_type, "adm_time": text_time(request.adm_time),
                  "adm_dept_code": request.adm_dept_code, "adm_dept_name": request.adm_dept_name,
                  "adm_diag_code": request.adm_diag_code, "adm_diag_name": request.adm_diag_name,
                  "injury_part": request.injury_part, "doctor_name": request.doctor_name}
        part = _part(request, now, record)
        current = stay.admission
        if current is None or (current.open and not current.checked) or current.status in (
                "invalid", "refused", "superseded"):
            if current is not None and current.open:
                current.status = "superseded"
            stay.admission = part
        else:  # chosen, on the platform or revoked: the decision answers it
            stay.later_admissions.append(part)
        return
    if isinstance(request, FeeLines):
        sns = []
        for line in request.lines:
            record = {"fee_sn": line.fee_sn, "fee_time": text_time(line.fee_time), "item_code": line.item_code,
                      "item_name": line.item_name, **_amounts({"price": line.price, "cnt": line.cnt,
                                                                "amount": line.amount, "pool_amt": line.pool_amt,
                                                                "self_amt": line.self_amt}),
                      "dept_code": line.dept_code, "doctor_name": line.doctor_name}
            new = _part(request, now, record, Line, fee_sn=line.fee_sn)
            current = stay.lines.get(line.fee_sn)
            if current is None or (current.open and current.batch is None) or current.status in (
                    "invalid", "refused", "revoked", "superseded"):
                stay.lines[line.fee_sn] = new
                sns.append(line.fee_sn)
            else:  # in a batch in flight, or on the platform: decided once that one ended
                key = f"{line.fee_sn}#{stable_id(request.event_id)[:8]}"
                new.conflict = True
                stay.lines[key] = new
                sns.append(key)
        stay.tallies[request.event_id] = Tally(occurred_at=request.occurred_at, received_at=now, sns=sns)
        if stay.admission is None and stay.waiting_since is None:
            stay.waiting_since = now
        return
    if isinstance(request, DischargeSettled):
        record = {"setl_no": request.setl_no, "dscg_time": text_time(request.dscg_time),
                  "setl_time": text_time(request.setl_time), "dscg_diag_code": request.dscg_diag_code,
                  "dscg_diag_name": request.dscg_diag_name,
                  **_amounts({"medfee_sumamt": request.medfee_sumamt, "pool_amt": request.pool_amt,
                              "self_amt": request.self_amt}),
                  "expected_fee_count": request.fee_count, "atta_nos": _attachments(request, now, stay) or None}
        _queue(state, _part(request, now, record, StayRequest, kind="settle"))
    elif isinstance(request, Deducted):
        record = {"deduct_no": request.deduct_no, "setl_no": request.setl_no,
                  "deduct_amt": text_amount(request.deduct_amt), "deduct_reason": request.deduct_reason,
                  "deduct_time": text_time(request.deduct_time), "auditor": request.auditor}
        _queue(state, _part(request, now, record, StayRequest, kind="deduct"))
    else:
        assert isinstance(request, Revocation)
        record = {"deduct_no": request.deduct_no, "reason": request.reason}
        _queue(state, _part(request, now, record, StayRequest, kind="revoke", target=request.target))
    if stay.admission is None and stay.waiting_since is None:
        stay.waiting_since = now


def _queue(state: WorkInjuryState, request: StayRequest) -> None:
    """Queue in HIS order (occurred_at) — never ahead of the head request, whose call may be in flight."""
    stay = state.stay
    assert stay is not None
    if stay.request(request.event_id) is not None:
        return
    request.seq = state.next_seq()
    active = [i for i, r in enumerate(stay.requests) if r.open]
    start = active[0] + 1 if active else len(stay.requests)
    position = len(stay.requests)
    for i in range(start, len(stay.requests)):
        if stay.requests[i].open and stay.requests[i].occurred_at > request.occurred_at:
            position = i
            break
    stay.requests.insert(position, request)


def _filing(state: WorkInjuryState, request: Any, now: _dt.datetime) -> None:
    filing = state.filing
    assert filing is not None
    if isinstance(request, FilingAudited):
        record = {"apply_no": request.apply_no, "audit_result": request.audit_result,
                  "audit_opinion": request.audit_opinion, "auditor": request.auditor,
                  "audit_time": text_time(request.audit_time), "org_code": request.org_code}
        part = _part(request, now, record)
        if filing.audit is None or (filing.audit.open and not filing.audit.checked):
            filing.audit = part
        else:
            filing.later.append(part)
        if not filing.downloaded and filing.waiting_since is None:
            filing.waiting_since = now
    elif isinstance(request, FilingRegistered):
        record = {"filing_no": request.filing_no, "psn_no": request.psn_no, "certno": request.certno,
                  "psn_name": request.psn_name, "insu_admdvs": request.insu_admdvs,
                  "mdtrt_admdvs": request.mdtrt_admdvs, "org_type": request.org_type, "org_code": request.org_code,
                  "begin_date": text_date(request.begin_date), "end_date": text_date(request.end_date),
                  "filing_status": request.filing_status, "audit_time": text_time(request.audit_time),
                  "atta_nos": _attachments(request, now, filing) or None}
        part = _part(request, now, record)
        if filing.filing is None or (filing.filing.open and not filing.filing.checked) or filing.filing.status in (
                "invalid", "refused"):
            filing.filing = part
        else:
            filing.later.append(part)
    else:
        assert isinstance(request, FilingUpdated)
        record = {"filing_no": request.filing_no, "filing_status": request.filing_status,
                  "mdtrt_admdvs": request.mdtrt_admdvs, "end_date": text_date(request.end_date),
                  "change_reason": request.change_reason, "change_time": text_time(request.change_time)}
        if not any(u.event_id == request.event_id for u in filing.updates):
            filing.updates.append(_part(request, now, record))
            filing.updates.sort(key=lambda u: (u.status != "pending" or u.checked, u.occurred_at))


def _device(state: WorkInjuryState, request: Any, now: _dt.datetime, org_code: str) -> None:
    device = state.device
    assert device is not None
    if isinstance(request, DeviceSettled):
        record = {"setl_no": request.setl_no, "org_code": request.org_code or org_code,
                  "filing_no": request.filing_no, "psn_no": request.psn_no, "certno": request.certno,
                  "setl_time": text_time(request.setl_time), "mdtrt_admdvs": request.mdtrt_admdvs,
                  **_amounts({"medfee_sumamt": request.medfee_sumamt, "pool_amt": request.pool_amt,
                              "self_amt": request.self_amt}),
                  "device_list": [{"device_code": i.device_code, "device_name": i.device_name,
                                   **_amounts({"price": i.price, "cnt": i.cnt, "amount": i.amount})}
                                  for i in request.items]}
        part = _part(request, now, record)
        if device.settlement is None or (device.settlement.open and not device.settlement.checked) or \
                device.settlement.status in ("invalid", "refused"):
            device.settlement, device.verified = part, False
        else:
            device.later.append(part)
    else:
        assert isinstance(request, Revocation)
        record = {"setl_no": device.setl_no, "reason": request.reason, "org_code": org_code}
        if not any(r.event_id == request.event_id for r in device.revocations):
            device.revocations.append(_part(request, now, record))


def _month(state: WorkInjuryState, request: MonthEnd, now: _dt.datetime, org_code: str) -> None:
    month = state.month
    assert month is not None
    record = {"org_code": request.org_code or org_code, "month": request.month, "visit_count": request.visit_count,
              **_amounts({"medfee_sumamt": request.medfee_sumamt, "pool_amt": request.pool_amt,
                          "self_amt": request.self_amt, "deduct_amt": request.deduct_amt,
                          "revoke_amt": request.revoke_amt, "pay_amt": request.pay_amt}),
              "setl_list": [{"setl_no": i.setl_no, **_amounts({"medfee_sumamt": i.medfee_sumamt,
                                                               "pool_amt": i.pool_amt, "deduct_amt": i.deduct_amt})}
                            for i in request.items]}
    if not any(p.event_id == request.event_id for p in month.parts):
        month.parts.append(_part(request, now, record))


def _org(state: WorkInjuryState, request: InstitutionChanged, now: _dt.datetime) -> None:
    org = state.org
    assert org is not None
    record = {"org_code": request.org_code, "org_name": request.org_name, "org_type": request.org_type,
              "admdvs": request.admdvs, "agreement_begin": text_date(request.agreement_begin),
              "agreement_end": text_date(request.agreement_end), "org_status": request.org_status,
              "addr": request.addr, "tel": request.tel}
    if not any(p.event_id == request.event_id for p in org.parts):
        org.parts.append(_part(request, now, record))


# --- the worker's own downloads ------------------------------------------------------------------------------------

def _application_downloaded(state: WorkInjuryState, record: DownloadedRecord) -> None:
    filing = state.filing
    if filing is None:
        return
    filing.downloaded = True
    filing.apply_chan = str(record.record.get("apply_chan") or "") or None


def _details_again(state: WorkInjuryState, record: DownloadedRecord) -> None:
    """A detail revocation downloaded: the admission's details are downloaded again (GYD102)."""
    stream = state.stream
    if stream is None:
        return
    fetch_details(stream, str(record.record.get("org_code") or ""), str(record.record["ipt_no"]))
    if stream.phase == "idle":
        stream.phase = "check"


def _admission_closed(state: WorkInjuryState, record: DownloadedRecord) -> None:
    """A settlement (or the admission's revocation) downloaded: one last GYD102 of its details, then no more."""
    stream = state.stream
    if stream is None:
        return
    pair = [str(record.record.get("org_code") or ""), str(record.record["ipt_no"])]
    if pair in stream.open_admissions:
        stream.open_admissions.remove(pair)
        if record.kind == "settlement":
            fetch_details(stream, *pair)


def stream_starts(infnos: tuple[str, ...]) -> list[Absorption[WorkInjuryState]]:
    """Each download stream's chain, created once per deployment (the inbox drops the repeats at every start)."""
    return [Absorption(f"stream:{infno}:start", stream_key(infno), "download", lambda state, fx: None)
            for infno in infnos]


def poll_now(infno: str, message_id: str) -> Absorption[WorkInjuryState]:
    """Ops (or a test) asks a stream to poll now rather than at its next scheduled time."""
    def apply(state: WorkInjuryState, fx: Effects) -> None:
        if state.stream is not None and state.stream.phase == "idle":
            state.stream.phase, state.stream.cycle_started_at = "check", fx.now

    return Absorption(message_id, stream_key(infno), "download", apply)


def redownload(infno: str, trans_no: str, message_id: str, ids: list[str] | None = None
               ) -> Absorption[WorkInjuryState]:
    """Ops asks for a past delivery again (GYR005): data lost locally after it was confirmed."""
    def apply(state: WorkInjuryState, fx: Effects) -> None:
        stream = state.stream
        if stream is None or any(d.trans_no == trans_no for d in stream.lost):
            return
        stream.lost.append(Delivery(infno=infno, trans_no=trans_no, ids=ids or [], at=fx.now))

    return Absorption(message_id, stream_key(infno), "download", apply)


def decode(value: bytes) -> Any:  # pragma: no cover - a helper for tools
    return json.loads(value, parse_float=Decimal)
