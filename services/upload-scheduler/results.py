"""What the scheduler tells others when a record settles: an :class:`~yibao.upload_scheduler.models.UploadOutcome`
on ``yibao.uploads.results.v1`` (HIS reads it; so can any consumer), and the metrics once the unit of work commits.

Message ids are stable (the lane, the record, its revision, its status and the call that settled it), so a unit of
work replayed after a crash emits the same ids and consumers' inboxes drop the copy.
"""

from __future__ import annotations

from yibao.chains.model import Effects
from yibao.core import clock
from yibao.core.results import stable_id
from yibao.upload_scheduler import metrics
from yibao.upload_scheduler.models import UploadOutcome
from yibao.upload_scheduler.records import UploadRecord
from yibao.upload_scheduler.store import SERVICE

__all__ = ["SERVICE", "emit_outcome"]


def emit_outcome(fx: Effects, rec: UploadRecord, *, status: str | None = None) -> None:
    """Tell HIS where ``rec`` stands (its status now, or ``status``), and count it once committed."""
    status = status or rec.status
    outcome = UploadOutcome(
        message_id=stable_id(SERVICE, rec.lane, rec.key, rec.revision, status, rec.msgid, rec.sends),
        target=rec.target, kind=rec.kind, record_key=rec.key, his_visit_id=rec.his_visit_id,
        revision=rec.revision, status=status,  # type: ignore[arg-type]
        reason=rec.reason, reason_field=rec.reason_field, msgid=rec.msgid,
        receipt=rec.receipt if status == "accepted" else None)
    fx.emit("upload_results", outcome, key=f"{rec.kind}:{rec.key}")
    target, kind, occurred = rec.target, rec.kind, rec.occurred_at

    def count() -> None:
        metrics.RECORDS.labels(target, kind, status).inc()
        if status == "accepted" and occurred is not None:
            metrics.DELIVERY_SECONDS.labels(target, kind).observe(max(0.0, (clock.now() - occurred).total_seconds()))

    fx.after_commit(count)
