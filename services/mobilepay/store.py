"""The state store and the service's only SQL.

:class:`MobilePayStore` keeps a visit's whole state as JSON in ``chain_visits.state`` — sealed with the deployment's
data key like the default store's (:mod:`yibao.core.atrest`: a state holds certno, names, psn_no) — and,
in the same transaction, the two indexes the channel API and the callback endpoint need without loading a visit:
``mobilepay_orders`` (order → visit, the channel's order id, payOrdId, phase) and ``mobilepay_visits`` (the
patient's visits and what is pending on each). Only rows that changed since the state was loaded are written.

The read functions below serve the HTTP side (no chain decision ever reads them): an order's visit, a callback's
order, a patient's visits with pending fees, the order counts by phase (metrics), and the audit of requests.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import chain_visits, mobilepay_audit, mobilepay_orders, mobilepay_visits
from yibao.core.deployment import Deployment
from yibao.mobilepay.state import MobilePayState

__all__ = ["MobilePayStore", "OrderRow", "order_row", "order_by_pay_ord_id", "order_by_med_org_ord",
           "visits_of_patient", "load_state", "phase_counts", "audit", "audit_rows", "scope_of", "SERVICE_NAME"]

SERVICE_NAME = "mobilepay"


def scope_of(conn: Connection) -> str:
    """The deployment's scope of every row here: the scoped service name, as ``chain_visits.service``."""
    return Deployment.of(conn).scoped(SERVICE_NAME)


def _upsert(conn: Connection, table: Any, values: dict[str, Any], key: list[str], update: dict[str, Any],
            where: Any = None) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=update, where=where))


class MobilePayStore:
    """The state as JSON, and the order and visit indexes written with it."""

    def load(self, conn: Connection, key: str, kind: str, text: str) -> MobilePayState:
        st = _open(conn, text)
        st._index = {o.id: _order_values(key, st, o) for o in st.orders}  # type: ignore[attr-defined]
        st._visit = _visit_values(key, st)  # type: ignore[attr-defined]
        return st

    def dump(self, conn: Connection, key: str, state: MobilePayState) -> str:
        known: dict[str, tuple] = getattr(state, "_index", None) or {}
        now = clock.now()
        scope = scope_of(conn)
        for o in state.orders:
            values = _order_values(key, state, o)
            if known.get(o.id) == values:
                continue
            row = dict(zip(_ORDER_COLUMNS, values))
            _upsert(conn, mobilepay_orders, {"scope": scope, **row, "created_at": o.created_at, "updated_at": now},
                    ["scope", "order_id"],
                    {**{k: v for k, v in row.items() if k not in ("order_id", "his_visit_id", "channel",
                                                                   "channel_order_id")}, "updated_at": now},
                    where=mobilepay_orders.c.his_visit_id == key)
            known[o.id] = values
        visit = _visit_values(key, state)
        if visit[1] is not None and visit != getattr(state, "_visit", None):
            _upsert(conn, mobilepay_visits, {"scope": scope, "his_visit_id": key, "his_patient_id": visit[1],
                                             "pending_lines": visit[2], "pending_total": visit[3],
                                             "updated_at": now}, ["scope", "his_visit_id"],
                    {"his_patient_id": visit[1], "pending_lines": visit[2], "pending_total": visit[3],
                     "updated_at": now})
            state._visit = visit  # type: ignore[attr-defined]
        state._index = known  # type: ignore[attr-defined]
        return Deployment.of(conn).cipher.seal(state.model_dump_json())


def _open(conn: Connection, text: str) -> MobilePayState:
    """A stored state: sealed with the deployment's data key, or plain (written before the key was configured)."""
    return MobilePayState.model_validate_json(Deployment.of(conn).cipher.open(text))


_ORDER_COLUMNS = ("order_id", "his_visit_id", "his_patient_id", "channel", "channel_order_id", "version", "phase",
                  "pay_ord_id", "med_org_ord", "total")


def _order_values(key: str, st: MobilePayState, o: Any) -> tuple:
    return (o.id, key, o.his_patient_id, o.channel, o.channel_order_id, o.version, o.phase, o.pay_ord_id,
            o.med_org_ord if o.phase != "requested" else None, o.total)


def _visit_values(key: str, st: MobilePayState) -> tuple:
    pending = st.pending_lines()
    return (key, st.patient.his_patient_id, len(pending), st.pending_total())


# --- reads for the HTTP side ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    his_visit_id: str
    his_patient_id: str
    channel: str
    channel_order_id: str
    version: str
    phase: str
    pay_ord_id: str | None
    med_org_ord: str | None
    total: Decimal
    created_at: _dt.datetime
    updated_at: _dt.datetime


def _order_rows(conn: Connection, *where: Any) -> list[OrderRow]:
    c = mobilepay_orders.c
    rows = conn.execute(select(c.order_id, c.his_visit_id, c.his_patient_id, c.channel, c.channel_order_id, c.version,
                               c.phase, c.pay_ord_id, c.med_org_ord, c.total, c.created_at, c.updated_at)
                        .where(c.scope == scope_of(conn), *where)).all()
    return [OrderRow(*r) for r in rows]


def order_row(conn: Connection, order_id: str) -> OrderRow | None:
    rows = _order_rows(conn, mobilepay_orders.c.order_id == order_id)
    return rows[0] if rows else None


def order_by_pay_ord_id(conn: Connection, pay_ord_id: str) -> OrderRow | None:
    rows = _order_rows(conn, mobilepay_orders.c.pay_ord_id == pay_ord_id)
    return rows[0] if rows else None


def order_by_med_org_ord(conn: Connection, med_org_ord: str) -> OrderRow | None:
    """The order a medOrgOrd (``<order id>-<upload>``) names."""
    return order_row(conn, med_org_ord.rsplit("-", 1)[0]) if med_org_ord else None


def visits_of_patient(conn: Connection, his_patient_id: str) -> list[tuple[str, int, Decimal]]:
    """(his_visit_id, pending lines, pending total) of the patient's visits with something pending."""
    c = mobilepay_visits.c
    rows = conn.execute(select(c.his_visit_id, c.pending_lines, c.pending_total)
                        .where(c.scope == scope_of(conn), c.his_patient_id == his_patient_id,
                               c.pending_lines > 0)
                        .order_by(c.updated_at)).all()
    return [(r[0], int(r[1]), r[2]) for r in rows]


def load_state(conn: Connection, visit_key: str) -> MobilePayState | None:
    """The visit's state as the chain engine saved it (under this deployment's scoped service name)."""
    service = scope_of(conn)
    text = conn.execute(select(chain_visits.c.state).where(chain_visits.c.service == service,
                                                           chain_visits.c.visit_key == visit_key)).scalar()
    return _open(conn, text) if text else None


def phase_counts(conn: Connection) -> dict[str, int]:
    c = mobilepay_orders.c
    return {phase: int(n) for phase, n in conn.execute(select(c.phase, func.count()).where(c.scope == scope_of(conn))
                                                       .group_by(c.phase)).all()}


def audit(conn: Connection, *, actor: str, role: str, action: str, outcome: str, source: str,
          order_id: str | None = None, operator: str | None = None, status: int | None = None,
          detail: str | None = None) -> None:
    """One audit row (in the caller's transaction: the one deciding the request, for money-moving ones)."""
    conn.execute(insert(mobilepay_audit).values(
        scope=scope_of(conn), at=clock.now(), actor=(actor or "-")[:64],
        operator=(operator or None) and operator[:64], role=role[:32],
        action=action[:32], order_id=order_id, outcome=outcome[:16], status=status, source=(source or "-")[:200],
        detail=(detail or None) and detail[:2000]))


def audit_rows(conn: Connection, *, order_id: str | None = None, limit: int = 200) -> Iterable[dict[str, Any]]:
    q = select(mobilepay_audit).where(mobilepay_audit.c.scope == scope_of(conn)).order_by(
        mobilepay_audit.c.id.desc()).limit(limit)
    if order_id:
        q = q.where(mobilepay_audit.c.order_id == order_id)
    return [dict(r) for r in conn.execute(q).mappings()]
