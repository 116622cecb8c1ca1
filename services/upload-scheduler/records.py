"""One record the platforms are owed, and a lane's records as a decision reads them (:class:`RecordBook`).

A record moves through these states (``upload_records.status``)::

    pending ──freeze──▶ sent ──answer──▶ accepted
       ▲                  │  ╰─refusal─▶ rejected  (the platform's reason; waits for a fix or `yibao replay`)
       │                  ╰──invalid──▶ parked    (our reason, naming the field; waits for a fix or replay)
       ╰── a new revision from HIS (a fix), a replay ── rejected / parked / accepted

``withdrawn``: HIS took it back before it went (or its settlement was refunded). A new revision of an accepted
record goes again (the platform keeps the latest, or the lane's change transaction carries it).

The merge of what arrives (:func:`merge`) is pure: the store calls it against the row in the database, the book
against the rows it loaded. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from yibao.envelope.national import jsontext
from yibao.upload_scheduler.config import LaneSpec
from yibao.upload_scheduler.errors import RecordKeyError

__all__ = ["UploadRecord", "Intent", "Prereq", "RecordBook", "merge", "key_of", "payload_hash", "read_path"]

_MISSING = object()


def read_path(obj: Any, path: str) -> Any:
    """The value at a dotted path (``setlinfo.setl_id``, ``feedetail.0.mdtrt_sn``); _MISSING when absent."""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.isdigit():
            index = int(part)
            cur = cur[index] if index < len(cur) else _MISSING
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def key_of(spec: LaneSpec, record: dict[str, Any], given: str | None = None) -> str:
    """The record's business key: ``given`` (the source's record_key), else the lane's key paths joined by "|"."""
    if given:
        return given
    if not spec.key:
        raise RecordKeyError(f"{spec.kind}: record_key is required (the lane has no key path in the record)")
    parts = []
    for path in spec.key:
        value = read_path(record, path)
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            raise RecordKeyError(f"{spec.kind}: record.{path} is required (part of the record's key)")
        parts.append(str(value).strip())
    key = "|".join(parts)
    if len(key) > 160:
        raise RecordKeyError(f"{spec.kind}: the record's key is longer than 160 characters")
    return key


def payload_hash(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return None
    return hashlib.sha256(jsontext.dumps(payload).encode()).hexdigest()


@dataclass
class Prereq:
    """What the lane a record requires holds for its key (read by the store with the record)."""

    status: str | None  #: None: no such record
    receipt: dict[str, Any] | None = None


@dataclass
class UploadRecord:
    lane: str
    key: str
    target: str
    kind: str
    status: str = "pending"
    revision: int = 1
    his_visit_id: str | None = None
    insuplc_admdvs: str | None = None
    reason: str | None = None
    reason_field: str | None = None
    payload: dict[str, Any] | None = None
    payload_hash: str | None = None
    source_id: str | None = None
    batch_no: int | None = None
    msgid: str | None = None
    receipt: dict[str, Any] | None = None
    sent_revision: int | None = None
    accepted_revision: int | None = None
    sends: int = 0
    occurred_at: _dt.datetime | None = None
    due_at: _dt.datetime | None = None
    deadline_at: _dt.datetime | None = None
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None
    sent_at: _dt.datetime | None = None
    accepted_at: _dt.datetime | None = None
    prereq: Prereq | None = field(default=None, compare=False)

    @property
    def has_content(self) -> bool:
        return self.payload is not None

    @property
    def needs_change(self) -> bool:
        """An accepted record's new revision (the platform holds an older one)."""
        return self.accepted_revision is not None and self.revision > self.accepted_revision


@dataclass(frozen=True)
class Intent:
    """Something that arrived for one record: HIS's content (``source``), the scheduler's own knowledge that a record
    is owed (``expect``: a settled stay owes a 清单), or a withdrawal."""

    what: Literal["source", "expect", "withdraw"]
    lane: str
    key: str
    target: str
    kind: str
    occurred_at: _dt.datetime
    due_at: _dt.datetime
    deadline_at: _dt.datetime | None
    now: _dt.datetime
    his_visit_id: str | None = None
    payload: dict[str, Any] | None = None
    source_id: str | None = None
    reason: str | None = None
    insuplc_admdvs: str | None = None


def merge(existing: UploadRecord | None, intent: Intent) -> UploadRecord | None:
    """The record after ``intent`` (None: nothing changes). Pure."""
    now = intent.now
    if existing is None:
        if intent.what == "withdraw":
            return None  # nothing to take back
        payload = intent.payload if intent.what == "source" else None
        return UploadRecord(
            lane=intent.lane, key=intent.key, target=intent.target, kind=intent.kind, status="pending", revision=1,
            his_visit_id=intent.his_visit_id, insuplc_admdvs=intent.insuplc_admdvs, payload=payload, payload_hash=payload_hash(payload),
            source_id=intent.source_id, occurred_at=intent.occurred_at, due_at=intent.due_at,
            deadline_at=intent.deadline_at, created_at=now, updated_at=now,
            reason=intent.reason if payload is not None else (intent.reason or "awaiting the record's content from HIS"))
    rec = replace(existing, prereq=existing.prereq)
    if intent.what == "expect":
        changed = False
        if rec.deadline_at is None or (intent.deadline_at is not None and intent.deadline_at < rec.deadline_at):
            rec.deadline_at, changed = intent.deadline_at, True
        if rec.his_visit_id is None and intent.his_visit_id:
            rec.his_visit_id, changed = intent.his_visit_id, True
        if rec.insuplc_admdvs is None and intent.insuplc_admdvs:
            rec.insuplc_admdvs, changed = intent.insuplc_admdvs, True
        if rec.status == "withdrawn" and intent.what == "expect":
            rec.status, changed = "pending", True
        if not changed:
            return None
        rec.updated_at = now
        return rec
    if intent.what == "withdraw":
        if rec.status in ("pending", "rejected", "parked"):
            rec.status, rec.reason, rec.reason_field, rec.updated_at = "withdrawn", intent.reason or "withdrawn by HIS", None, now
            return rec
        return None  # sent (its answer decides), accepted (stays on the platform) or withdrawn already
    # a source: HIS's content
    digest = payload_hash(intent.payload)
    if digest == rec.payload_hash:
        return None  # the same content again (a redelivery, a CDC update that changed nothing we send)
    rec.payload, rec.payload_hash, rec.source_id = intent.payload, digest, intent.source_id
    rec.his_visit_id = intent.his_visit_id or rec.his_visit_id
    rec.insuplc_admdvs = intent.insuplc_admdvs or rec.insuplc_admdvs
    if rec.payload is not None and existing.payload is None and rec.revision == 1 and rec.sent_revision is None:
        pass  # the content of a record the scheduler expected: still its first revision
    else:
        rec.revision += 1
    if intent.deadline_at is not None:
        rec.deadline_at = intent.deadline_at
    if rec.status != "sent":  # a record in flight keeps its status: its answer settles the revision it carried
        rec.status, rec.reason, rec.reason_field = "pending", intent.reason, None
        if existing.status in ("accepted", "rejected", "parked", "withdrawn"):
            rec.due_at = now  # a fix (or a change) goes as soon as the lane can send it
        else:
            rec.due_at = min(existing.due_at or intent.due_at, intent.due_at)
    rec.updated_at = now
    return rec


class RecordBook:
    """The records of one lane as the decision reads them: the batch in flight and a window of pending ones (the
    store loads them; thousands of accepted records stay in the database). Changes are tracked for the store."""

    def __init__(self, lane: str, records: Iterable[UploadRecord] = (), *, more: bool = False,
                 next_due: _dt.datetime | None = None) -> None:
        self.lane = lane
        self.by_key: dict[str, UploadRecord] = {r.key: r for r in records}
        self.changed: set[str] = set()
        self.added: set[str] = set()
        self.payload_changed: set[str] = set()  #: of the changed ones, those whose content changed
        self.intents: list[Intent] = []
        #: records arrived in this unit that were not loaded (their row, if any, is merged by the store)
        self.provisional: dict[str, UploadRecord] = {}
        self.more = more  #: pending records beyond the loaded window
        self.next_due = next_due  #: the earliest due time among pending records not loaded

    # --- reading ---------------------------------------------------------------------------------------------
    def get(self, key: str) -> UploadRecord | None:
        return self.by_key.get(key)

    def pending(self) -> list[UploadRecord]:
        """Pending records (loaded and just arrived), earliest due first."""
        recs = [r for r in self.by_key.values() if r.status == "pending"]
        recs += [r for k, r in self.provisional.items() if r.status == "pending" and k not in self.by_key]
        far = _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
        return sorted(recs, key=lambda r: (r.due_at or far, r.created_at or far, r.key))

    # --- what arrives ----------------------------------------------------------------------------------------
    def offer(self, intent: Intent) -> None:
        current = self.by_key.get(intent.key)
        if current is not None:
            merged = merge(current, intent)
            if merged is not None:
                if merged.payload_hash != current.payload_hash:
                    self.payload_changed.add(intent.key)
                self.by_key[intent.key] = merged
                self.changed.add(intent.key)
            return
        self.intents.append(intent)
        merged = merge(self.provisional.get(intent.key), intent)
        if merged is not None:
            self.provisional[intent.key] = merged

    # --- what the lane does ----------------------------------------------------------------------------------
    def _touch(self, rec: UploadRecord, now: _dt.datetime) -> None:
        rec.updated_at = now
        if rec.key not in self.added:
            self.changed.add(rec.key)

    def freeze(self, keys: list[str], batch_no: int, now: _dt.datetime) -> dict[str, int]:
        """The records go out in batch ``batch_no``: their revisions."""
        revisions = {}
        for key in keys:
            rec = self.by_key[key]
            rec.status, rec.batch_no, rec.sent_revision, rec.sent_at = "sent", batch_no, rec.revision, now
            rec.sends += 1
            rec.reason = rec.reason_field = None
            revisions[key] = rec.revision
            self._touch(rec, now)
        return revisions

    def accept(self, key: str, revision: int, msgid: str | None, receipt: dict[str, Any] | None,
               now: _dt.datetime) -> UploadRecord | None:
        rec = self.by_key.get(key)
        if rec is None or rec.status != "sent":
            return None
        rec.accepted_revision, rec.accepted_at, rec.msgid, rec.batch_no = revision, now, msgid, None
        if receipt:
            rec.receipt = {**(rec.receipt or {}), **receipt}
        # a newer revision arrived while this one was in flight: it goes next
        rec.status = "accepted" if rec.revision == revision else "pending"
        rec.reason = None if rec.status == "accepted" else "a newer revision arrived while the previous one was sent"
        if rec.status == "pending":
            rec.due_at = now
        self._touch(rec, now)
        return rec

    def reject(self, key: str, revision: int, reason: str, msgid: str | None, now: _dt.datetime, *,
               status: str = "rejected", field_name: str | None = None) -> UploadRecord | None:
        rec = self.by_key.get(key)
        if rec is None or rec.status not in ("sent", "pending"):
            return None
        rec.batch_no, rec.msgid = None, msgid or rec.msgid
        if rec.revision != revision:  # refused an older revision: the newer one goes
            rec.status, rec.reason, rec.due_at = "pending", f"previous revision refused: {reason}"[:1000], now
        else:
            rec.status, rec.reason, rec.reason_field = status, reason[:1000], field_name
        self._touch(rec, now)
        return rec

    def release(self, keys: Iterable[str], now: _dt.datetime, reason: str | None = None) -> None:
        """Back to pending (a batch split up, a call not made)."""
        for key in keys:
            rec = self.by_key.get(key)
            if rec is not None and rec.status == "sent":
                rec.status, rec.batch_no, rec.reason = "pending", None, reason
                self._touch(rec, now)

    def note(self, key: str, reason: str, now: _dt.datetime) -> None:
        """Say why a pending record waits (what it waits for), without changing its status."""
        rec = self.by_key.get(key)
        if rec is not None and rec.reason != reason:
            rec.reason = reason[:1000]
            self._touch(rec, now)

    def forget_receipt(self, key: str, now: _dt.datetime) -> None:
        """The platform no longer holds the record (withdrawn by a reversal before its new revision goes)."""
        rec = self.by_key.get(key)
        if rec is not None:
            rec.accepted_revision, rec.receipt = None, None
            self._touch(rec, now)

    def written(self) -> None:
        self.changed.clear()
        self.added.clear()
        self.payload_changed.clear()
        self.intents.clear()
        self.provisional.clear()
