"""The upload scheduler's state store and queries: a lane's state is its JSON *and* its records in
``upload_records`` (thousands per lane: never rewritten whole, never all read).

The chain engine calls :meth:`UploadStore.load` and :meth:`UploadStore.dump` inside its unit of work: the records
of the batch in flight and a window of pending ones are read with the lane; only the records that changed are
written back, and what arrived for records that were not read is merged against their rows (:func:`merge`) — in
the same transaction as the state, the journal and the outcome messages. Payloads are sealed with the deployment's
data key (they hold names and certnos). This module and :mod:`yibao.upload_scheduler.catalog.store` are the only
ones of the service that speak SQL.

What the platform posts back about an uploaded record (7102/7103, :mod:`yibao.upload_scheduler.inbound`) is kept in
``rx_feedback`` (:func:`feedback_by_msgid`, :func:`record_by_platform_key`, :func:`add_feedback`) and shown with
the record it concerns (:func:`record_rows`).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, insert, or_, select, update

from yibao.core import clock
from yibao.core.db.schema import chain_visits, rx_feedback, upload_records
from yibao.core.deployment import Deployment
from yibao.envelope.national import jsontext
from yibao.upload_scheduler.config import UploadConfig, lane_key
from yibao.upload_scheduler.records import Prereq, RecordBook, UploadRecord, merge
from yibao.upload_scheduler.state import LaneState

__all__ = ["SERVICE", "UploadStore", "scope_of", "record_rows", "lane_counts", "open_margins", "day_summary",
           "requeue", "replayable", "record_view", "RecordRef", "Feedback", "record_by_platform_key",
           "feedback_by_msgid", "add_feedback", "feedback_views", "answer_in_flight", "RX_AMOUNTS"]

SERVICE = "upload-scheduler"
_R = upload_records.c
_COLUMNS = ("target", "kind", "his_visit_id", "insuplc_admdvs", "revision", "status", "reason", "reason_field", "payload",
            "payload_hash", "source_id", "batch_no", "msgid", "receipt", "sent_revision", "accepted_revision", "sends",
            "occurred_at", "due_at", "deadline_at", "created_at", "updated_at", "sent_at", "accepted_at")
_STATUS_COLUMNS = tuple(c for c in _COLUMNS if c not in ("payload", "payload_hash", "source_id", "target", "kind",
                                                          "created_at")) + ("platform_key",)


def scope_of(conn: Connection) -> str:
    return Deployment.of(conn).scoped(SERVICE)


def _open_payload(conn: Connection, stored: str | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    value = jsontext.loads(Deployment.of(conn).cipher.open(stored))
    return value if isinstance(value, dict) else None


def _record(conn: Connection, r: Any, *, with_payload: bool = True) -> UploadRecord:
    return UploadRecord(
        lane=r.lane, key=r.record_key, target=r.target, kind=r.kind, status=r.status, revision=r.revision,
        his_visit_id=r.his_visit_id, insuplc_admdvs=r.insuplc_admdvs, reason=r.reason, reason_field=r.reason_field,
        payload=_open_payload(conn, r.payload) if with_payload else None, payload_hash=r.payload_hash,
        source_id=r.source_id, batch_no=r.batch_no, msgid=r.msgid,
        receipt=json.loads(r.receipt) if r.receipt else None, sent_revision=r.sent_revision,
        accepted_revision=r.accepted_revision, sends=r.sends, occurred_at=r.occurred_at, due_at=r.due_at,
        deadline_at=r.deadline_at, created_at=r.created_at, updated_at=r.updated_at, sent_at=r.sent_at,
        accepted_at=r.accepted_at)


def _values(conn: Connection, rec: UploadRecord, *, payload: bool, platform_key: str | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {c: getattr(rec, c) for c in _STATUS_COLUMNS if c not in ("receipt", "platform_key")}
    values["receipt"] = json.dumps(rec.receipt, ensure_ascii=False, default=str) if rec.receipt else None
    found = (rec.receipt or {}).get(platform_key) if platform_key else None
    values["platform_key"] = str(found)[:60] if found not in (None, "") else None
    if payload:
        values["payload"] = (None if rec.payload is None
                             else Deployment.of(conn).cipher.seal(jsontext.dumps(rec.payload)))
        values["payload_hash"] = rec.payload_hash
        values["source_id"] = rec.source_id
    return values


_UPDATE_STATUS = update(upload_records).where(
    _R.scope == bindparam("b_scope"), _R.lane == bindparam("b_lane"), _R.record_key == bindparam("b_key")
).values(**{c: bindparam(c) for c in _STATUS_COLUMNS})
_UPDATE_ALL = update(upload_records).where(
    _R.scope == bindparam("b_scope"), _R.lane == bindparam("b_lane"), _R.record_key == bindparam("b_key")
).values(**{c: bindparam(c) for c in _STATUS_COLUMNS + ("payload", "payload_hash", "source_id")})


class UploadStore:
    """The engine's :class:`~yibao.chains.state.StateStore` for lanes."""

    def __init__(self, config: UploadConfig) -> None:
        self.config = config

    # --- load --------------------------------------------------------------------------------------------------
    def load(self, conn: Connection, key: str, kind: str, text: str) -> LaneState:
        st = LaneState.model_validate_json(Deployment.of(conn).cipher.open(text))
        scope = scope_of(conn)
        wanted = set(st.singles) | set(st.batch.keys if st.batch else ())
        records: dict[str, UploadRecord] = {}
        if wanted:
            rows = conn.execute(select(upload_records).where(
                _R.scope == scope, _R.lane == key, _R.record_key.in_(sorted(wanted))))
            records.update({r.record_key: _record(conn, r) for r in rows})
        window = self.config.record_window
        rows = conn.execute(select(upload_records).where(
            _R.scope == scope, _R.lane == key, _R.status == "pending"
        ).order_by(case((_R.payload.is_(None), 1), else_=0), _R.due_at, _R.created_at).limit(window + 1)).all()
        more = len(rows) > window
        next_due = rows[window].due_at if more else None
        for r in rows[:window]:
            records.setdefault(r.record_key, _record(conn, r))
        book = RecordBook(key, records.values(), more=more, next_due=next_due)
        self._prerequisites(conn, scope, st, book)
        st._records = book
        return st

    def _prerequisites(self, conn: Connection, scope: str, st: LaneState, book: RecordBook) -> None:
        spec = self.config.lane(st.kind)
        if spec is None or spec.requires is None:
            return
        needed = self.config.lane(spec.requires.lane)
        keys = [r.key for r in book.by_key.values() if r.status in ("pending", "sent")]
        if needed is None or not keys:
            return
        lanes = sorted({lane_key(needed, k) for k in keys})
        rows = conn.execute(select(_R.record_key, _R.status, _R.receipt, _R.accepted_revision).where(
            _R.scope == scope, _R.lane.in_(lanes), _R.record_key.in_(keys)))
        found = {r.record_key: Prereq("accepted" if r.accepted_revision is not None else r.status,
                                      json.loads(r.receipt) if r.receipt else None) for r in rows}
        for rec in book.by_key.values():
            rec.prereq = found.get(rec.key, Prereq(None))

    def _platform_key(self, rec: UploadRecord) -> str | None:
        """The receipt field the record's lane is named by on the platform (lanes.yaml ``platform_key``)."""
        spec = self.config.lane(rec.kind)
        return spec.platform_key if spec is not None else None

    # --- dump --------------------------------------------------------------------------------------------------
    def dump(self, conn: Connection, key: str, st: LaneState) -> str:
        book = st.records
        scope = scope_of(conn)
        self._write(conn, scope, key, book)
        self._merge_intents(conn, scope, key, book)
        book.written()
        return Deployment.of(conn).cipher.seal(st.model_dump_json())

    def _write(self, conn: Connection, scope: str, lane: str, book: RecordBook) -> None:
        if book.added:
            conn.execute(insert(upload_records), [
                {"scope": scope, "lane": lane, "record_key": k, "target": book.by_key[k].target,
                 "kind": book.by_key[k].kind, "created_at": book.by_key[k].created_at or clock.now(),
                 **_values(conn, book.by_key[k], payload=True, platform_key=self._platform_key(book.by_key[k]))}
                for k in sorted(book.added)])
        changed = sorted(book.changed - book.added)
        plain = [k for k in changed if k not in book.payload_changed]
        full = [k for k in changed if k in book.payload_changed]
        if plain:
            conn.execute(_UPDATE_STATUS, [{"b_scope": scope, "b_lane": lane, "b_key": k,
                                           **_values(conn, book.by_key[k], payload=False,
                                                     platform_key=self._platform_key(book.by_key[k]))}
                                          for k in plain])
        if full:
            conn.execute(_UPDATE_ALL, [{"b_scope": scope, "b_lane": lane, "b_key": k,
                                        **_values(conn, book.by_key[k], payload=True,
                                                  platform_key=self._platform_key(book.by_key[k]))}
                                       for k in full])

    def _merge_intents(self, conn: Connection, scope: str, lane: str, book: RecordBook) -> None:
        if not book.intents:
            return
        keys = sorted({i.key for i in book.intents})
        existing = {r.record_key: _record(conn, r) for r in conn.execute(select(upload_records).where(
            _R.scope == scope, _R.lane == lane, _R.record_key.in_(keys)))}
        current: dict[str, UploadRecord | None] = {k: existing.get(k) for k in keys}
        touched: set[str] = set()
        for intent in book.intents:
            merged = merge(current[intent.key], intent)
            if merged is not None:
                current[intent.key] = merged
                touched.add(intent.key)
        inserts = [k for k in sorted(touched) if k not in existing]
        updates = [k for k in sorted(touched) if k in existing]
        if inserts:
            conn.execute(insert(upload_records), [
                {"scope": scope, "lane": lane, "record_key": k, "target": current[k].target,  # type: ignore[union-attr]
                 "kind": current[k].kind, "created_at": current[k].created_at or clock.now(),  # type: ignore[union-attr]
                 **_values(conn, current[k], payload=True,  # type: ignore[arg-type]
                           platform_key=self._platform_key(current[k]))}  # type: ignore[arg-type]
                for k in inserts])
        if updates:
            conn.execute(_UPDATE_ALL, [{"b_scope": scope, "b_lane": lane, "b_key": k,
                                        **_values(conn, current[k], payload=True,  # type: ignore[arg-type]
                                                  platform_key=self._platform_key(current[k]))}  # type: ignore[arg-type]
                                       for k in updates])


# --- queries (HTTP, metrics, replay) ---------------------------------------------------------------------------

_VIEW = (_R.lane, _R.record_key, _R.target, _R.kind, _R.his_visit_id, _R.insuplc_admdvs, _R.revision, _R.status, _R.reason,
         _R.reason_field, _R.msgid, _R.receipt, _R.sent_revision, _R.accepted_revision, _R.sends, _R.occurred_at,
         _R.due_at, _R.deadline_at, _R.created_at, _R.updated_at, _R.sent_at, _R.accepted_at)


def record_view(r: Any) -> dict[str, Any]:
    """A record as HIS and ops read it: its state, never its content (names and certnos stay in the database)."""
    out = {c.name: getattr(r, c.name) for c in _VIEW}
    out["key"] = out.pop("record_key")
    out["receipt"] = json.loads(out["receipt"]) if out["receipt"] else None
    for name in ("occurred_at", "due_at", "deadline_at", "created_at", "updated_at", "sent_at", "accepted_at"):
        if out[name] is not None:
            out[name] = clock.format_datetime(out[name])
    return out


def record_rows(conn: Connection, *, target: str | None = None, kind: str | None = None, status: str | None = None,
                key: str | None = None, his_visit_id: str | None = None, limit: int = 100,
                after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    cond = [_R.scope == scope_of(conn)]
    for column, value in ((_R.target, target), (_R.kind, kind), (_R.status, status), (_R.record_key, key),
                          (_R.his_visit_id, his_visit_id)):
        if value is not None:
            cond.append(column == value)
    if after is not None:
        cond.append(or_(_R.lane > after[0], and_(_R.lane == after[0], _R.record_key > after[1])))
    rows = [record_view(r) for r in conn.execute(select(*_VIEW).where(*cond).order_by(_R.lane, _R.record_key)
                                                .limit(limit))]
    with_feedback = [r for r in rows if r["kind"] in _FEEDBACK_KINDS]
    if with_feedback:
        found = feedback_views(conn, [(r["lane"], r["key"]) for r in with_feedback])
        for r in with_feedback:
            r["feedback"] = found.get((r["lane"], r["key"]), {"review": None, "purchases": []})
    return rows


def lane_counts(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(target, kind, status, records) over the deployment."""
    rows = conn.execute(select(_R.target, _R.kind, _R.status, func.count()).where(_R.scope == scope_of(conn))
                        .group_by(_R.target, _R.kind, _R.status))
    return [(t, k, s, int(n)) for t, k, s, n in rows]


def open_margins(conn: Connection, statuses: Sequence[str]) -> list[tuple[str, str, _dt.datetime | None, int]]:
    """(target, kind, earliest deadline, records past it) of the records the platform does not hold yet."""
    now = clock.now()
    overdue = func.sum(case((_R.deadline_at < now, 1), else_=0))
    rows = conn.execute(select(_R.target, _R.kind, func.min(_R.deadline_at), overdue).where(
        _R.scope == scope_of(conn), _R.status.in_(list(statuses))).group_by(_R.target, _R.kind))
    return [(t, k, d, int(o or 0)) for t, k, d, o in rows]


def day_summary(conn: Connection, day: _dt.date) -> list[dict[str, Any]]:
    """Per target and kind: records due that day, and of them sent, accepted, rejected, parked, withdrawn, still
    pending, and overdue (past their deadline and not accepted)."""
    start = _dt.datetime.combine(day, _dt.time(0), tzinfo=clock.SHANGHAI)
    end = start + _dt.timedelta(days=1)
    now = clock.now()
    cond = [_R.scope == scope_of(conn), _R.due_at >= start, _R.due_at < end]

    def count(expr: Any) -> Any:
        return func.sum(case((expr, 1), else_=0))

    rows = conn.execute(select(
        _R.target, _R.kind, func.count(),
        count(_R.sent_at.is_not(None)), count(_R.status == "accepted"), count(_R.status == "rejected"),
        count(_R.status == "parked"), count(_R.status == "withdrawn"), count(_R.status.in_(("pending", "sent"))),
        count(and_(_R.deadline_at < now, _R.status != "accepted", _R.status != "withdrawn")),
    ).where(*cond).group_by(_R.target, _R.kind).order_by(_R.target, _R.kind))
    names = ("target", "kind", "due", "sent", "accepted", "rejected", "parked", "withdrawn", "pending", "overdue")
    return [dict(zip(names, (r[0], r[1], *(int(x or 0) for x in r[2:])))) for r in rows]


def replayable(conn: Connection, *, kind: str | None = None, key: str | None = None,
               statuses: Iterable[str] = ("rejected", "parked")) -> list[tuple[str, str, int]]:
    """(kind, status, records) that ``yibao replay uploads`` would send once more."""
    cond = [_R.scope == scope_of(conn), _R.status.in_(list(statuses))]
    if kind is not None:
        cond.append(_R.kind == kind)
    if key is not None:
        cond.append(_R.record_key == key)
    rows = conn.execute(select(_R.kind, _R.status, func.count()).where(*cond).group_by(_R.kind, _R.status)
                        .order_by(_R.kind, _R.status))
    return [(k, s, int(n)) for k, s, n in rows]


def requeue(conn: Connection, *, kind: str | None = None, key: str | None = None,
            statuses: Iterable[str] = ("rejected", "parked")) -> list[tuple[str, str]]:
    """``yibao replay uploads``: make rejected/parked records pending again (once: a record already pending or
    accepted is left alone) and their lanes due; the (lane, key) of each."""
    scope, now = scope_of(conn), clock.now()
    cond = [_R.scope == scope, _R.status.in_(list(statuses))]
    if kind is not None:
        cond.append(_R.kind == kind)
    if key is not None:
        cond.append(_R.record_key == key)
    picked = [(r.lane, r.record_key) for r in conn.execute(select(_R.lane, _R.record_key).where(*cond))]
    if not picked:
        return []
    lanes = sorted({lane for lane, _ in picked})
    # the lanes are locked first (as every unit of work on a lane does), then their records are changed
    stmt = select(chain_visits.c.visit_key).where(chain_visits.c.service == scope,
                                                 chain_visits.c.visit_key.in_(lanes))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    conn.execute(stmt).all()
    for lane, record_key in picked:
        conn.execute(update(upload_records).where(
            _R.scope == scope, _R.lane == lane, _R.record_key == record_key, _R.status.in_(list(statuses))
        ).values(status="pending", reason="replayed by yibao replay uploads", reason_field=None, due_at=now,
                 updated_at=now))
    conn.execute(update(chain_visits).where(chain_visits.c.service == scope, chain_visits.c.visit_key.in_(lanes),
                                            chain_visits.c.status.in_(("idle", "waiting", "parked")))
                 .values(status="ready", next_attempt_at=now, attempts=0, last_error=None,
                         version=chain_visits.c.version + 1, updated_at=now))
    return picked


# --- what the platform posts back (rx_feedback) ------------------------------------------------------------------

_F = rx_feedback.c
#: kinds of record the platform posts feedback about (their views carry it)
_FEEDBACK_KINDS = frozenset({"7101"})
#: the 7103 settlement amounts kept as columns of rx_feedback (exact money)
RX_AMOUNTS = ("fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")


@dataclass(frozen=True)
class RecordRef:
    """The uploaded record a platform message names."""

    lane: str
    key: str
    status: str
    his_visit_id: str | None


@dataclass(frozen=True)
class Feedback:
    """One platform message about a record, as kept (``payload``: the input as received, sealed at rest)."""

    msgid: str
    infno: str
    hi_rxno: str
    record: RecordRef
    status: str
    pharmacy_code: str | None
    occurred_at: _dt.datetime
    received_at: _dt.datetime
    payload: dict[str, Any]
    payload_hash: str
    amounts: dict[str, Decimal] | None = None
    lines: int | None = None


def record_by_platform_key(conn: Connection, kind: str, platform_key: str) -> RecordRef | None:
    """The record of ``kind`` the platform named ``platform_key`` in its answer (7101's hi_rxno)."""
    row = conn.execute(select(_R.lane, _R.record_key, _R.status, _R.his_visit_id).where(
        _R.scope == scope_of(conn), _R.kind == kind, _R.platform_key == platform_key
    ).order_by(_R.updated_at.desc()).limit(1)).first()
    return None if row is None else RecordRef(row.lane, row.record_key, row.status, row.his_visit_id)


def answer_in_flight(conn: Connection, kind: str) -> bool:
    """Whether a record of ``kind`` is sent and its answer not recorded yet (the platform may have answered it: its
    platform key is not known here yet)."""
    return conn.execute(select(_R.record_key).where(_R.scope == scope_of(conn), _R.kind == kind,
                                                    _R.status == "sent").limit(1)).first() is not None


def feedback_by_msgid(conn: Connection, msgid: str) -> tuple[str, str, _dt.datetime] | None:
    """(infno, payload hash, received at) of the message ``msgid`` kept before; None: never heard of."""
    row = conn.execute(select(_F.infno, _F.payload_hash, _F.received_at).where(
        _F.scope == scope_of(conn), _F.msgid == msgid)).first()
    return None if row is None else (row.infno, row.payload_hash, row.received_at)


def add_feedback(conn: Connection, fb: Feedback) -> None:
    """Keep ``fb`` (the caller's transaction: with the message to HIS). A msgid kept already raises IntegrityError."""
    amounts = fb.amounts or {}
    conn.execute(insert(rx_feedback).values(
        scope=scope_of(conn), msgid=fb.msgid, infno=fb.infno, hi_rxno=fb.hi_rxno, lane=fb.record.lane,
        record_key=fb.record.key, his_visit_id=fb.record.his_visit_id, status=fb.status[:24],
        pharmacy_code=fb.pharmacy_code, occurred_at=fb.occurred_at, received_at=fb.received_at,
        **{name: amounts.get(name) for name in RX_AMOUNTS}, lines=fb.lines,
        payload=Deployment.of(conn).cipher.seal(jsontext.dumps(fb.payload)), payload_hash=fb.payload_hash))


def feedback_views(conn: Connection, records: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(lane, key) → what the platform said about the record: its latest review (7102) and every purchase (7103),
    as state (codes, times, exact amounts as text) — never the pharmacists' names or certnos."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not records:
        return out
    wanted = set(records)
    rows = conn.execute(select(rx_feedback).where(
        _F.scope == scope_of(conn), _F.lane.in_(sorted({lane for lane, _ in wanted})),
        _F.record_key.in_(sorted({key for _, key in wanted}))
    ).order_by(_F.received_at, _F.msgid))
    for r in rows:
        if (r.lane, r.record_key) not in wanted:
            continue
        view = out.setdefault((r.lane, r.record_key), {"review": None, "purchases": []})
        common = {"msgid": r.msgid, "hi_rxno": r.hi_rxno, "pharmacy_code": r.pharmacy_code,
                  "occurred_at": clock.format_datetime(r.occurred_at),
                  "received_at": clock.format_datetime(r.received_at)}
        if r.infno == "7102":
            view["review"] = {**common, "rx_chk_stas_codg": r.status}
        else:
            view["purchases"].append({**common, **{name: None if getattr(r, name) is None else str(getattr(r, name))
                                                   for name in RX_AMOUNTS}, "lines": r.lines})
    return out
