"""The results table in the HIS database and the idempotent write of one HisResult into it.

One row per result message, keyed by its ``message_id`` (stable: the same result produced twice has the same
id), so a redelivered or replayed result changes nothing. The columns are what a HIS cashier screen or a HIS
job needs without parsing JSON — the visit and request the answer belongs to, what happened (``kind``), the
platform's ids and the settlement's money — plus the whole message as JSON in ``payload``. Times are written
as Shanghai wall-clock times without a zone, as HIS databases keep them.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.exc import IntegrityError

from yibao.core import clock
from yibao.core.results import HisResult

__all__ = ["SPLIT_COLUMNS", "results_table", "write_result"]

#: the settlement split's amounts that get a column of their own (the rest stay in ``payload``)
SPLIT_COLUMNS: tuple[str, ...] = ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")


def results_table(name: str = "yb_result", schema: str | None = None) -> Table:
    metadata = MetaData(schema=schema)
    table = Table(
        name, metadata,
        Column("message_id", String(64), primary_key=True, comment="the result's id: one row per result"),
        Column("his_visit_id", String(64), nullable=False),
        Column("visit_kind", String(16), nullable=False),
        Column("his_request_id", String(64), comment="the HIS request answered (settlement, refund, cancel …)"),
        Column("kind", String(32), nullable=False,
               comment="registered admitted discharged settled refunded cancelled rejected parked …"),
        Column("service", String(32), nullable=False),
        Column("step_infno", String(8)),
        Column("msgid", String(64)),
        Column("mdtrt_id", String(64)),
        Column("setl_id", String(64)),
        Column("orig_setl_id", String(64)),
        Column("psn_no", String(64)),
        Column("insutype", String(8)),
        Column("setl_time", DateTime()),
        *(Column(name, Numeric(16, 2)) for name in SPLIT_COLUMNS),
        Column("target", String(16)),
        Column("reason_code", String(64)),
        Column("reason", String(2000)),
        Column("occurred_at", DateTime(), nullable=False),
        Column("written_at", DateTime(), nullable=False),
        Column("payload", Text(), nullable=False, comment="the whole HisResult as JSON"),
        comment="answers of yibao-bridge to the HIS (yibao.his.results.v1), written by yibao worker his-writer",
    )
    Index(f"ix_{name}_visit", table.c.his_visit_id)
    Index(f"ix_{name}_request", table.c.his_request_id)
    return table


def _wall(value: _dt.datetime | None) -> _dt.datetime | None:
    return None if value is None else clock.as_shanghai(value).replace(tzinfo=None)


def _row(result: HisResult) -> dict[str, object]:
    split = result.split
    amounts: dict[str, Decimal | None] = {name: getattr(split, name) if split else None for name in SPLIT_COLUMNS}
    return {
        "message_id": result.message_id, "his_visit_id": result.his_visit_id, "visit_kind": result.visit_kind,
        "his_request_id": result.his_request_id, "kind": result.kind, "service": result.service,
        "step_infno": result.step_infno, "msgid": result.msgid, "mdtrt_id": result.mdtrt_id,
        "setl_id": result.setl_id, "orig_setl_id": result.orig_setl_id, "psn_no": result.psn_no,
        "insutype": result.insutype, "setl_time": _wall(result.setl_time), **amounts, "target": result.target,
        "reason_code": result.reason_code, "reason": result.reason[:2000] if result.reason else None,
        "occurred_at": _wall(result.occurred_at), "written_at": _wall(clock.now()),
        "payload": result.to_json().decode("utf-8"),
    }


def write_result(conn: Connection, table: Table, result: HisResult) -> bool:
    """Insert the result's row unless it is there already; True when written, False for a duplicate. Runs in
    the caller's transaction; a concurrent writer inserting the same id first counts as a duplicate."""
    if conn.execute(select(table.c.message_id).where(table.c.message_id == result.message_id)).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(**_row(result)))
    except IntegrityError:
        return False
    return True
