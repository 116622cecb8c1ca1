"""What the upload families share: the context a call is built in, choosing the next batch, the upload call and
how its answer settles each record, and reading the rows of a lookup's answer."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yibao.chains.model import Call, Change, Effects, Lookup, Refusal, Reply
from yibao.envelope.errors import EnvelopeValidationError
from yibao.upload_scheduler.config import LaneSpec, UploadConfig
from yibao.upload_scheduler.records import UploadRecord, read_path
from yibao.upload_scheduler.results import emit_outcome
from yibao.upload_scheduler.state import Batch, LaneState

__all__ = ["StepContext", "PerRecord", "sendable", "freeze_change", "payload_for", "body_of", "upload_call", "reverse_body",
           "rows_in", "receipt_from", "waiting_reason"]

#: per record of a batch: (accepted?, the platform's reason when not, what to keep when accepted)
PerRecord = dict[str, tuple[bool, str | None, dict[str, Any] | None]]


@dataclass(frozen=True)
class StepContext:
    config: UploadConfig
    spec: LaneSpec
    catalog: Any  #: the scheduler's catalog: the national one with the targets' transactions

    @property
    def target_enabled(self) -> bool:
        return self.spec.target in self.config.targets_enabled


# --- what goes next ---------------------------------------------------------------------------------------------

def waiting_reason(ctx: StepContext, rec: UploadRecord) -> str | None:
    """Why a pending record cannot go now (None: it can)."""
    if not rec.has_content:
        return rec.reason or "awaiting the record's content from HIS"
    req = ctx.spec.requires
    if req is not None:
        pre = rec.prereq
        if pre is None or pre.status != "accepted":
            state = "not received" if pre is None or pre.status is None else pre.status
            return f"awaiting {req.lane} of the same key (it is {state})"
    return None


def sendable(ctx: StepContext, st: LaneState, now: _dt.datetime) -> list[UploadRecord]:
    """Pending records due now that could go (content there, prerequisites met)."""
    return [r for r in st.records.pending() if r.due_at is not None and r.due_at <= now
            and r.key not in st.records.provisional and waiting_reason(ctx, r) is None]


def payload_for(ctx: StepContext, rec: UploadRecord) -> dict[str, Any]:
    """The record's input as sent: HIS's content, with the fields the lane fills from the record it requires
    (7104's hi_rxno from its 7101's answer)."""
    payload = dict(rec.payload or {})
    req = ctx.spec.requires
    if req is not None and req.fill and rec.prereq is not None and rec.prereq.receipt:
        for path, receipt_field in req.fill.items():
            value = rec.prereq.receipt.get(receipt_field)
            if value is not None:
                _set_path(payload, path, value)
    return payload


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = dict(nxt)
        cur[part] = dict(cur[part])
        cur = cur[part]
    cur[parts[-1]] = value


def body_of(ctx: StepContext, st: LaneState, batch: Batch) -> dict[str, Any]:
    recs = [st.records.get(k) for k in batch.keys]
    return ctx.spec.body([payload_for(ctx, r) for r in recs if r is not None])


def reverse_body(ctx: StepContext, key: str) -> dict[str, Any]:
    """The input of the lane's reversal (冲销) of the record ``key``: its key field, named as in the record."""
    field = ctx.spec.key[0].rsplit(".", 1)[-1] if ctx.spec.key else "record_key"
    return {field: key}


def _problem(ctx: StepContext, infno: str, rec: UploadRecord) -> EnvelopeValidationError | None:
    """The first catalog rule the record alone breaks (None: valid)."""
    try:
        if infno == ctx.spec.reverse_infno:
            ctx.catalog.prepare_input(infno, reverse_body(ctx, rec.key))
            return None
        ctx.catalog.prepare_input(infno, ctx.spec.body([payload_for(ctx, rec)]))
    except EnvelopeValidationError as exc:
        return exc
    return None


def _field_of(ctx: StepContext, path: str) -> str:
    """A validation path of a one-record body as the record's own field (``data[0].x`` of a list lane → ``x``)."""
    if ctx.spec.shape == "list" and ctx.spec.node:
        path = re.sub(rf"^{re.escape(ctx.spec.node)}\[\d+\]\.?", "", path)
    return path or "(record)"


def freeze_change(ctx: StepContext) -> Change[LaneState]:
    """Decide the next batch: the records split out of a refused batch one by one, else the earliest due records
    that pass the catalog's rules (a record that breaks one is parked with the field and the rule named, and the
    others go on), up to the lane's batch size."""

    def apply(st: LaneState, fx: Effects) -> None:
        if st.batch is not None:
            return
        book, spec, now = st.records, ctx.spec, fx.now
        if not ctx.target_enabled:
            for rec in sendable(ctx, st, now)[: spec.batch * 4]:
                rec.sent_revision = rec.revision
                book.reject(rec.key, rec.revision, f"target {spec.target} is not enabled "
                            "(YIBAO_UPLOAD_SCHEDULER_TARGETS_ENABLED)", None, now, status="parked")
                emit_outcome(fx, rec)
            return
        if st.singles:
            while st.singles:
                key = st.singles.pop(0)
                rec = book.get(key)
                if rec is not None and rec.status == "pending" and waiting_reason(ctx, rec) is None:
                    _freeze(ctx, st, [rec], fx)
                    return
            return
        chosen: list[UploadRecord] = []
        for rec in sendable(ctx, st, now):
            infno, _ = _transaction_for(ctx, rec)
            problem = _problem(ctx, infno, rec)
            if problem is not None:
                field = _field_of(ctx, problem.path)
                reason = f"{infno}: {field}: {problem.rule}" + (f" ({problem.detail})" if problem.detail else "")
                book.reject(rec.key, rec.revision, reason, None, now, status="parked", field_name=field)
                emit_outcome(fx, rec)
                continue
            if chosen and (_transaction_for(ctx, chosen[0]) != _transaction_for(ctx, rec)
                           or (spec.target == "national" and chosen[0].insuplc_admdvs != rec.insuplc_admdvs)):
                continue  # one transaction, one national envelope (参保地) per call
            chosen.append(rec)
            if len(chosen) >= spec.batch or _transaction_for(ctx, rec)[1] != "upload":
                break
        if chosen:
            _freeze(ctx, st, chosen, fx)

    return Change("choose the next batch", apply, gathers=True)


def _transaction_for(ctx: StepContext, rec: UploadRecord) -> tuple[str, str]:
    """(infno, purpose) a record goes with now: a new revision of an accepted record is withdrawn first where the
    platform wants that (DRG 冲销), or carried by the lane's change transaction (3402)."""
    spec = ctx.spec
    if rec.needs_change:
        if spec.reverse_infno:
            return spec.reverse_infno, "reverse"
        if spec.change_infno:
            return spec.change_infno, "change"
    return spec.infno, "upload"


def _freeze(ctx: StepContext, st: LaneState, recs: list[UploadRecord], fx: Effects) -> None:
    infno, purpose = _transaction_for(ctx, recs[0])
    no = st.next_no()
    keys = [r.key for r in recs]
    revisions = st.records.freeze(keys, no, fx.now)
    st.batch = Batch(no=no, infno=infno, keys=keys, revisions=revisions, purpose=purpose)  # type: ignore[arg-type]


# --- the call ---------------------------------------------------------------------------------------------------

def upload_call(ctx: StepContext, st: LaneState, batch: Batch, *, lookup: Lookup | None = None,
                per_record: Callable[[dict[str, Any], Batch], PerRecord] | None = None,
                on_task: Callable[[LaneState, Batch, dict[str, Any], Reply, Effects], bool] | None = None,
                body: dict[str, Any] | None = None) -> Call[LaneState]:
    """The call carrying ``batch``. Its answer settles every record of the batch: all accepted (keeping the
    lane's ``receipt`` fields), or — with ``per_record`` — each as the platform says; a refusal rejects the
    record (a batch of several is split and each record sent alone: only the bad one is rejected); a refusal
    saying the platform holds the record already (a resend after a lost answer) accepts it. ``on_task``: the
    answer is a task to poll (it returns True when it took the answer over)."""
    no, infno = batch.no, batch.infno
    payload = body if body is not None else body_of(ctx, st, batch)
    first = st.records.get(batch.keys[0])
    insuplc = first.insuplc_admdvs if first is not None else None

    def current(s: LaneState) -> Batch | None:
        b = s.batch
        return b if b is not None and b.no == no and b.phase == "sending" else None

    def on_ok(s: LaneState, reply: Reply, fx: Effects) -> None:
        b = current(s)
        if b is None:
            return
        if on_task is not None and on_task(s, b, reply.output, reply, fx):
            return
        results = per_record(reply.output, b) if per_record is not None else None
        settle_batch(ctx, s, b, reply.msgid, fx, results=results, output=reply.output)

    def on_refused(s: LaneState, refusal: Refusal, fx: Effects) -> None:
        b = current(s)
        if b is None:
            return
        refuse_batch(ctx, s, b, refusal, fx)

    return Call(f"{infno}:b{no}", infno, payload, on_ok=on_ok, on_refused=on_refused, lookup=lookup,
                insuplc_admdvs=insuplc)


def settle_batch(ctx: StepContext, s: LaneState, b: Batch, msgid: str | None, fx: Effects, *,
                 results: PerRecord | None = None, output: dict[str, Any] | None = None) -> None:
    """The platform answered the batch: each record accepted (or, per ``results``, rejected with its reason)."""
    book = s.records
    for key in b.keys:
        revision = b.revisions.get(key, 0)
        if results is not None and key in results and not results[key][0]:
            rec = book.reject(key, revision, results[key][1] or "refused by the platform", msgid, fx.now)
        else:
            receipt = results[key][2] if results is not None and key in results else receipt_from(ctx, output or {})
            rec = book.accept(key, revision, msgid, receipt, fx.now)
        if rec is not None and rec.status in ("accepted", "rejected"):
            emit_outcome(fx, rec)
    s.batch = None


def refuse_batch(ctx: StepContext, s: LaneState, b: Batch, refusal: Refusal, fx: Effects) -> None:
    book = s.records
    if refusal.reason_code == "rejected" and ctx.catalog.says("already_uploaded", refusal.text) and b.purpose != "reverse":
        settle_batch(ctx, s, b, None, fx)  # the platform holds it already: a resend after a lost answer
        return
    if len(b.keys) > 1:
        index = _item_index(ctx, refusal) if refusal.reason_code == "invalid_input" else None
        if index is not None and index < len(b.keys):
            bad = b.keys[index]
            rec = book.reject(bad, b.revisions.get(bad, 0), refusal.text, None, fx.now, status="parked",
                              field_name=_field_of(ctx, _path_of(refusal)))
            if rec is not None:
                emit_outcome(fx, rec)
            book.release([k for k in b.keys if k != bad], fx.now)
        else:  # which record? send each alone: the bad one is refused, the rest go on
            book.release(b.keys, fx.now, "its batch was refused: sent again alone")
            s.singles = [k for k in b.keys if k not in s.singles] + s.singles
        s.batch = None
        return
    key = b.keys[0]
    if refusal.reason_code == "invalid_input":
        rec = book.reject(key, b.revisions.get(key, 0), refusal.text, None, fx.now, status="parked",
                          field_name=_field_of(ctx, _path_of(refusal)))
    else:
        rec = book.reject(key, b.revisions.get(key, 0), refusal.text, None, fx.now)
    if rec is not None and rec.status in ("rejected", "parked"):
        emit_outcome(fx, rec)
    s.batch = None


_PATH = re.compile(r":\s*([A-Za-z0-9_\[\]\.]+):")


def _path_of(refusal: Refusal) -> str:
    m = _PATH.search(refusal.text)
    return m.group(1) if m else ""


def _item_index(ctx: StepContext, refusal: Refusal) -> int | None:
    node = ctx.spec.node
    if not node:
        return None
    m = re.search(rf"{re.escape(node)}\[(\d+)\]", refusal.text)
    return int(m.group(1)) if m else None


# --- answers ----------------------------------------------------------------------------------------------------

def receipt_from(ctx: StepContext, output: dict[str, Any]) -> dict[str, Any] | None:
    """The lane's ``receipt`` fields of an answer (at its top level or one node down)."""
    if not ctx.spec.receipt or not isinstance(output, dict):
        return None
    found: dict[str, Any] = {}
    nodes = [output] + [v for v in output.values() if isinstance(v, dict)]
    for name in ctx.spec.receipt:
        for node in nodes:
            if node.get(name) not in (None, ""):
                found[name] = node[name]
                break
    return found or None


def rows_in(output: dict[str, Any], *nodes: str) -> list[dict[str, Any]]:
    """The rows of a query's answer under the first of ``nodes`` present."""
    for node in nodes:
        value = read_path(output, node)
        if isinstance(value, list):
            return [r for r in value if isinstance(r, dict)]
    return []
