"""What workinjury-sync tells others: a :class:`~yibao.workinjury_sync.models.WorkInjuryResult` to HIS for each
request, a :class:`~yibao.workinjury_sync.models.DownloadedRecord` for each record downloaded, a dead letter for
input our checks refused — and the metrics, once the unit of work committed.

Message ids are stable (built from the case, what is answered and how), so a unit of work run again after a crash
emits the same ids and the consumers' inboxes drop the copy.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.model import Effects
from yibao.core import clock
from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.results import stable_id
from yibao.workinjury_sync import metrics
from yibao.workinjury_sync.models import DownloadedRecord, ResultKind, WorkInjuryResult
from yibao.workinjury_sync.state import Part
from yibao.workinjury_sync.streams import STREAMS

__all__ = ["SERVICE", "emit_result", "emit_record", "park_input", "count_records", "observe_upload"]

SERVICE = "workinjury-sync"


def observe_upload(fx: Effects, infno: str, occurred_at: _dt.datetime, deadline_s: int | None,
                   records: int = 1) -> tuple[float, bool | None]:
    """Count an accepted upload's age against its deadline (after the commit); (age, on time)."""
    age = max(0.0, (fx.now - clock.as_shanghai(occurred_at)).total_seconds())
    on_time = None if deadline_s is None else age <= deadline_s

    def count() -> None:
        for _ in range(records):
            metrics.UPLOAD_AGE.labels(infno).observe(age)
        if on_time is False:
            metrics.LATE.labels(infno).inc(records)

    fx.after_commit(count)
    return age, on_time


def count_records(fx: Effects, infno: str, outcome: str, n: int = 1) -> None:
    fx.after_commit(lambda: metrics.RECORDS.labels(infno, outcome).inc(n))


def emit_result(fx: Effects, *, request: str, kind: ResultKind, ident: tuple[object, ...], part: Part | None = None,
                infno: str | None = None, trans_no: str | None = None, deadline_s: int | None = None,
                platform_ids: dict[str, str] | None = None, reason_code: str | None = None,
                reason: str | None = None, detail: dict[str, Any] | None = None,
                occurred_at: _dt.datetime | None = None, event_id: str | None = None) -> WorkInjuryResult:
    """Queue a result for HIS. ``ident`` names what it answers (stable within the case)."""
    occurred = occurred_at or (part.occurred_at if part is not None else None)
    age = on_time = None
    if occurred is not None:
        age = round(max(0.0, (fx.now - clock.as_shanghai(occurred)).total_seconds()), 3)
        on_time = None if deadline_s is None or kind != "uploaded" else age <= deadline_s
    result = WorkInjuryResult(
        message_id=stable_id(SERVICE, fx.key, *ident, "result", kind), case_key=fx.key, case_kind=fx.kind,
        his_event_id=event_id or (part.event_id if part is not None else None), request=request, kind=kind,
        infno=infno, trans_no=trans_no, platform_ids=platform_ids, reason_code=reason_code, reason=reason,
        detail=detail, occurred_at=occurred, answered_at=fx.now, age_s=age,
        deadline_s=deadline_s if kind == "uploaded" else None, on_time=on_time)
    fx.emit("workinjury_results", result)
    return result


def emit_record(fx: Effects, infno: str, trans_no: str, record: dict[str, Any]) -> None:
    """Publish one downloaded record on its stream's topic, keyed by its business key."""
    stream = STREAMS[infno]
    record_id = str(record.get("record_id") or record.get(stream.key_field) or "")
    message = DownloadedRecord(message_id=stable_id(SERVICE, infno, record_id), stream=infno, kind=stream.kind,
                               record_id=record_id, trans_no=trans_no, downloaded_at=fx.now, record=record)
    fx.emit(stream.topic_id, message, key=str(record.get(stream.key_field) or record_id))


class _Letter:
    def __init__(self, message_id: str, letter: DeadLetter) -> None:
        self.message_id = message_id
        self.letter = letter

    def to_json(self) -> bytes:
        return self.letter.to_bytes()


def park_input(fx: Effects, part: Part, *, request: str, reason: str) -> None:
    """Input our checks refused (the field named): parked on the dead-letter topic for HIS to fix — with its HIS
    event id and case, not the personal data it carried — while the rest of the case goes on. Not replayable as it
    is: HIS sends the corrected record (the same fee_sn, a new event), which replaces it."""
    letter = DeadLetter.of(service=SERVICE, reason_code="invalid_input", reason=reason,
                           topic=None, partition=None, offset=None,
                           key=fx.key.encode(), value=WorkInjuryResult(
                               message_id="-", case_key=fx.key, case_kind=fx.kind, his_event_id=part.event_id,
                               request=request, kind="invalid", reason_code="invalid_input", reason=reason,
                               occurred_at=part.occurred_at).to_json(),
                           attempts=1, event_id=part.event_id)
    fx.emit("dlq", _Letter(stable_id(SERVICE, fx.key, part.event_id, request, "dlq"), letter))
