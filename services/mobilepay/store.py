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

from sqlalchemy import Connection, bindparam, func, insert, select
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


#: the two index upserts, built once per dialect with bound parameters: built per row with literal values they
#: were compiled (and cache-keyed) on every write — a quarter of a chain unit's time (bench/bench_mobilepay.py)
_UPSERTS: dict[tuple[str, str], Any] = {}
_ORDER_KEEP = frozenset({"scope", "order_id", "his_visit_id", "channel", "channel_order_id", "created_at"})
_VISIT_COLUMNS = ("scope", "his_visit_id", "his_patient_id", "pending_lines", "pending_total", "updated_at")


def _upsert_of(conn: Connection, table: Any, columns: tuple[str, ...], key: tuple[str, ...],
               keep: frozenset[str], same_visit: bool = False) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE the columns not in ``keep`` (an order row only while it names the same
    visit: an order id is never taken over by another visit's order)."""
    name = conn.dialect.name
    stmt = _UPSERTS.get((table.name, name))
    if stmt is None:
        dialect = postgresql if name == "postgresql" else sqlite
        ins = dialect.insert(table).values({c: bindparam(c) for c in columns})
        stmt = ins.on_conflict_do_update(
            index_elements=[table.c[k] for k in key], set_={c: ins.excluded[c] for c in columns if c not in keep},
            where=(table.c.his_visit_id == ins.excluded.his_visit_id) if same_visit else None)
        _UPSERTS[(table.name, name)] = stmt
    return stmt


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
        changed = []
        for o in state.orders:
            values = _order_values(key, state, o)
            if known.get(o.id) == values:
                continue
            changed.append({"scope": scope, **dict(zip(_ORDER_COLUMNS, values)), "created_at": o.created_at,
                            "updated_at": now})
            known[o.id] = values
        if changed:
            conn.execute(_upsert_of(conn, mobilepay_orders, _ORDER_ROW, ("scope", "order_id"), _ORDER_KEEP,
                                    same_visit=True), changed)
        visit = _visit_values(key, state)
        if visit[1] is not None and visit != getattr(state, "_visit", None):
            conn.execute(_upsert_of(conn, mobilepay_visits, _VISIT_COLUMNS, ("scope", "his_visit_id"),
                                    frozenset({"scope", "his_visit_id"})),
                         {"scope": scope, "his_visit_id": key, "his_patient_id": visit[1],
                          "pending_lines": visit[2], "pending_total": visit[3], "updated_at": now})
            state._visit = visit  # type: ignore[attr-defined]
        state._index = known  # type: ignore[attr-defined]
        return Deployment.of(conn).cipher.seal(state.model_dump_json())


def _open(conn: Connection, text: str) -> MobilePayState:
    """A stored state: sealed with the deployment's data key, or plain (written before the key was configured)."""
    return MobilePayState.model_validate_json(Deployment.of(conn).cipher.open(text))


_ORDER_COLUMNS = ("order_id", "his_visit_id", "his_patient_id", "channel", "channel_order_id", "version", "phase",
                  "pay_ord_id", "med_org_ord", "total")
_ORDER_ROW = ("scope", *_ORDER_COLUMNS, "created_at", "updated_at")


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


# The HTTP side's statements, built once with bound parameters (every request runs a few of them: built per call
# they were compiled — cache-keyed — each time).
_o = mobilepay_orders.c
_ORDER_SELECT = select(_o.order_id, _o.his_visit_id, _o.his_patient_id, _o.channel, _o.channel_order_id, _o.version,
                       _o.phase, _o.pay_ord_id, _o.med_org_ord, _o.total, _o.created_at, _o.updated_at)
_ORDER_BY_ID = _ORDER_SELECT.where(_o.scope == bindparam("scope"), _o.order_id == bindparam("value"))
_ORDER_BY_PAY_ORD_ID = _ORDER_SELECT.where(_o.scope == bindparam("scope"), _o.pay_ord_id == bindparam("value"))
_STATE = select(chain_visits.c.state).where(chain_visits.c.service == bindparam("scope"),
                                            chain_visits.c.visit_key == bindparam("value"))
_AUDIT = insert(mobilepay_audit)


def _order_rows(conn: Connection, stmt: Any, value: str) -> list[OrderRow]:
    return [OrderRow(*r) for r in conn.execute(stmt, {"scope": scope_of(conn), "value": value}).all()]


def order_row(conn: Connection, order_id: str) -> OrderRow | None:
    rows = _order_rows(conn, _ORDER_BY_ID, order_id)
    return rows[0] if rows else None


def order_by_pay_ord_id(conn: Connection, pay_ord_id: str) -> OrderRow | None:
    rows = _order_rows(conn, _ORDER_BY_PAY_ORD_ID, pay_ord_id)
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
    text = conn.execute(_STATE, {"scope": scope_of(conn), "value": visit_key}).scalar()
    return _open(conn, text) if text else None


def phase_counts(conn: Connection) -> dict[str, int]:
    c = mobilepay_orders.c
    return {phase: int(n) for phase, n in conn.execute(select(c.phase, func.count()).where(c.scope == scope_of(conn))
                                                       .group_by(c.phase)).all()}


def audit(conn: Connection, *, actor: str, role: str, action: str, outcome: str, source: str,
          order_id: str | None = None, operator: str | None = None, status: int | None = None,
          detail: str | None = None) -> None:
    """One audit row (in the caller's transaction: the one deciding the request, for money-moving ones)."""
    conn.execute(_AUDIT, {
        "scope": scope_of(conn), "at": clock.now(), "actor": (actor or "-")[:64],
        "operator": (operator or None) and operator[:64], "role": role[:32], "action": action[:32],
        "order_id": order_id, "outcome": outcome[:16], "status": status, "source": (source or "-")[:200],
        "detail": (detail or None) and detail[:2000]})


def audit_rows(conn: Connection, *, order_id: str | None = None, limit: int = 200) -> Iterable[dict[str, Any]]:
    q = select(mobilepay_audit).where(mobilepay_audit.c.scope == scope_of(conn)).order_by(
        mobilepay_audit.c.id.desc()).limit(limit)
    if order_id:
        q = q.where(mobilepay_audit.c.order_id == order_id)
    return [dict(r) for r in conn.execute(q).mappings()]
