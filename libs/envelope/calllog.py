"""The platform call log: one row in ``platform_calls`` per msgid sent (or per refusal before sending).

Reconciliation reads it to find what was sent, when and how it ended; an operator reads it to answer "what
happened to this visit". Inputs and outputs are stored with personal data masked
(:func:`yibao.core.privacy.mask_obj`): the log must not become a second copy of the patient register.

A call retried after a TransportError keeps its msgid (nothing was sent), so its row is updated in place: the
row always shows the last attempt of that msgid. Writing the log never fails a call: a database error is
logged and counted, and the caller gets the platform's answer.

Every row carries the deployment (topic prefix) of the connection that wrote it (``platform_calls.deployment``,
from :meth:`yibao.core.deployment.Deployment.of`): deployments sharing a database read only their own calls.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from yibao.core.db.schema import platform_calls
from yibao.core.deployment import Deployment
from yibao.core.privacy import mask_obj, mask_text
from yibao.envelope.national.jsontext import UnencodableValue, dumps

__all__ = ["CallRecord", "CallLog", "masked_json", "row_values", "write_rows", "calls_for_visit", "CALL_LOG_FAILURES"]

log = logging.getLogger(__name__)

CALL_LOG_FAILURES = Counter("yibao_platform_call_log_failures_total", "Call-log rows that could not be written")

_TEXT_LIMIT = 200_000


def masked_json(obj: Any) -> str | None:
    """Compact JSON of ``obj`` with personal data masked; None for None."""
    if obj is None:
        return None
    masked = mask_obj(obj)
    try:
        text = dumps(masked)
    except UnencodableValue:
        text = mask_text(repr(masked))
    return text[:_TEXT_LIMIT]


class CallRecord(BaseModel):
    """One row of ``platform_calls``."""

    service: str
    platform: str = "national"
    infno: str
    msgid: str | None = None
    visit_key: str | None = None
    started_at: _dt.datetime
    duration_ms: int | None = None
    outcome: str
    infcode: str | None = None
    err_msg: str | None = None
    input_masked: str | None = None
    output_masked: str | None = None
    omsgid: str | None = None
    oinfno: str | None = None


def row_values(record: CallRecord, *, input_obj: Any = None, output_obj: Any = None) -> dict[str, Any]:
    """The ``platform_calls`` row of a record, inputs and outputs masked."""
    values = record.model_dump()
    if input_obj is not None:
        values["input_masked"] = masked_json(input_obj)
    if output_obj is not None:
        values["output_masked"] = masked_json(output_obj)
    if values["err_msg"]:
        values["err_msg"] = mask_text(values["err_msg"])[:2000]
    return values


_COLUMNS = (*CallRecord.model_fields, "deployment")
_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (msgid) DO UPDATE, keeping a column the new row leaves empty; built once per dialect."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(platform_calls).values(
            {c: bindparam(c) for c in _COLUMNS})
        stmt = _UPSERTS[dialect] = ins.on_conflict_do_update(
            index_elements=[platform_calls.c.msgid],
            set_={c: func.coalesce(ins.excluded[c], platform_calls.c[c]) for c in _COLUMNS if c != "msgid"})
    return stmt


def write_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows in the caller's transaction; a row whose msgid is logged already (the chain engine logs a call
    as ``sent`` before sending it) is updated to the last attempt, keeping what the new row leaves empty."""
    dialect, deployment = conn.dialect.name, Deployment.of(conn).prefix
    upserts = []
    for values in rows:
        values = {**values, "deployment": deployment}
        if values.get("msgid") is None or dialect not in ("postgresql", "sqlite"):
            conn.execute(insert(platform_calls).values(**values))
            continue
        upserts.append({c: values.get(c) for c in _COLUMNS})
    if upserts:  # one executemany (each row its own statement, in order: a msgid twice is updated in turn)
        conn.execute(_upsert(dialect), upserts)


class CallLog:
    """Writes :class:`CallRecord` rows, off the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write_sync(self, record: CallRecord, *, input_obj: Any = None, output_obj: Any = None) -> None:
        """Insert the row, or update the row of the same msgid (a retry after nothing was sent).

        ``input_obj`` / ``output_obj``, when given, are masked and stored as the row's input and output.
        """
        values = row_values(record, input_obj=input_obj, output_obj=output_obj)
        try:
            with self.engine.begin() as conn:
                values["deployment"] = Deployment.of(conn).prefix
                conn.execute(insert(platform_calls).values(**values))
        except IntegrityError:
            if record.msgid is None:
                raise
            with self.engine.begin() as conn:  # the msgid was logged before (a retry): its row shows the last try
                conn.execute(update(platform_calls).where(platform_calls.c.msgid == record.msgid).values(**values))

    async def write(self, record: CallRecord, *, input_obj: Any = None, output_obj: Any = None) -> None:
        """Mask and write a row in a worker thread; never raises (a failed write is logged and counted)."""
        try:
            await asyncio.to_thread(self.write_sync, record, input_obj=input_obj, output_obj=output_obj)
        except (SQLAlchemyError, UnencodableValue, TypeError, ValueError) as exc:
            CALL_LOG_FAILURES.inc()
            log.error("platform call log write failed",
                      extra={"fields": {"infno": record.infno, "msgid": record.msgid, "error": type(exc).__name__}})


def calls_for_visit(engine: Engine, visit_key: str) -> list[dict[str, Any]]:
    """Every logged call of one visit by the engine's deployment, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(platform_calls).where(platform_calls.c.visit_key == visit_key,
                                         platform_calls.c.deployment == Deployment.of(conn).prefix)
            .order_by(platform_calls.c.started_at, platform_calls.c.id)
        ).mappings().all()
    return [dict(row) for row in rows]
