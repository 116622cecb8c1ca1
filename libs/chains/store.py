"""The engine's SQL: visit rows (state, scheduling, leases), the call journal and the chain outbox.

Synchronous SQLAlchemy Core on a connection the engine owns for one unit of work; nothing here commits. Every
function is one statement (or a short fixed number), so the engine's transactions stay few and short: one per
platform call in the steady state (the call's outcome, the state, the results, and the next call's journal row).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits
from yibao.core.deployment import Deployment
from yibao.core.messaging.outbox import enqueue_many
from yibao.core.topics import topic

__all__ = ["VisitRow", "CallRow", "ChainStore", "dumps_state"]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def dumps_state(state: dict[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False, default=_default, separators=(",", ":"))


@dataclass
class VisitRow:
    key: str
    kind: str
    status: str  #: ready | idle | waiting | parked
    state: str  #: JSON
    version: int
    attempts: int
    lease_owner: str | None
    lease_until: _dt.datetime | None
    open_call: int | None = None  #: a step call journalled whose outcome is not known yet


@dataclass(frozen=True)
class CallRow:
    id: int
    step: str
    infno: str
    msgid: str | None
    status: str
    resolution: str | None


_VISIT_COLUMNS = (chain_visits.c.visit_key, chain_visits.c.visit_kind, chain_visits.c.status, chain_visits.c.state,
                  chain_visits.c.version, chain_visits.c.attempts, chain_visits.c.lease_owner,
                  chain_visits.c.lease_until, chain_visits.c.open_call)


def _row(r: Any) -> VisitRow:
    return VisitRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


# The statements a unit of work runs each time, built once: SQLAlchemy then only looks up their compiled form.
_V, _C = chain_visits.c, chain_calls.c
_LOCK = select(*_VISIT_COLUMNS).where(_V.service == bindparam("svc"), _V.visit_key == bindparam("key"))
_LOCK_FOR_UPDATE = _LOCK.with_for_update()
_OPEN_CALL = insert(chain_calls).values(
    service=bindparam("svc"), visit_key=bindparam("key"), step=bindparam("step"), infno=bindparam("infno"),
    msgid=bindparam("msgid"), purpose=bindparam("purpose"), status="sent", created_at=bindparam("at"),
    updated_at=bindparam("at")).returning(_C.id)
_CLOSE_CALL = update(chain_calls).where(_C.id == bindparam("call_id")).values(
    status=bindparam("status"), resolution=bindparam("resolution"), err_msg=bindparam("err"),
    updated_at=bindparam("at"))
_CALL = select(_C.id, _C.step, _C.infno, _C.msgid, _C.status, _C.resolution).where(_C.id == bindparam("call_id"))
_WRITES: dict[tuple[bool, str], Any] = {}


def _write_statement(with_state: bool, error: str) -> Any:
    """The UPDATE of a unit's visit row: with or without a new state; the last error set, cleared or kept."""
    stmt = _WRITES.get((with_state, error))
    if stmt is None:
        values: dict[str, Any] = {c: bindparam(c) for c in ("status", "next_attempt_at", "attempts", "lease_owner",
                                                             "lease_until", "open_call", "updated_at")}
        if with_state:
            values.update(state=bindparam("state"), version=bindparam("version"))
        if error != "keep":
            values["last_error"] = bindparam("last_error")
        stmt = _WRITES[(with_state, error)] = update(chain_visits).where(
            _V.service == bindparam("svc"), _V.visit_key == bindparam("key")).values(**values)
    return stmt


class ChainStore:
    """One service's rows — of this deployment: the ``service`` column holds the deployment's scoped name
    (:meth:`yibao.core.deployment.Deployment.scoped`, from the connection), so deployments sharing a database never
    see each other's visits or calls."""

    def __init__(self, service: str, *, topic_prefix: str = "") -> None:
        self.service = service
        self.topic_prefix = topic_prefix

    def scoped(self, conn: Connection) -> str:
        return Deployment.of(conn).scoped(self.service)

    def _mine(self, conn: Connection) -> Any:
        return chain_visits.c.service == self.scoped(conn)

    # --- visits -----------------------------------------------------------------------------------------------

    def lock(self, conn: Connection, key: str) -> VisitRow | None:
        """The visit's row, locked for this transaction (PostgreSQL: FOR UPDATE; SQLite's one writer holds the
        database from BEGIN IMMEDIATE)."""
        stmt = _LOCK_FOR_UPDATE if conn.dialect.name == "postgresql" else _LOCK
        r = conn.execute(stmt, {"svc": self.scoped(conn), "key": key}).first()
        return _row(r) if r is not None else None

    def create(self, conn: Connection, key: str, kind: str, state: str) -> VisitRow:
        now = clock.now()
        conn.execute(insert(chain_visits).values(
            service=self.scoped(conn), visit_key=key, visit_kind=kind, status="idle", state=state, version=0, attempts=0,
            next_attempt_at=None, created_at=now, updated_at=now))
        return VisitRow(key, kind, "idle", state, 0, 0, None, None)

    def write(self, conn: Connection, row: VisitRow, *, state: str | None, status: str,
              next_attempt_at: _dt.datetime | None, attempts: int, lease_owner: str | None,
              lease_until: _dt.datetime | None, open_call: int | None, last_error: str | None = None,
              clear_error: bool = False) -> None:
        """Write what a unit of work decided; ``state`` None: unchanged (the version stays)."""
        params: dict[str, Any] = {"svc": self.scoped(conn), "key": row.key, "status": status,
                                  "next_attempt_at": next_attempt_at, "attempts": attempts, "lease_owner": lease_owner,
                                  "lease_until": lease_until, "open_call": open_call, "updated_at": clock.now()}
        if state is not None:
            params.update(state=state, version=row.version + 1)
        error = "set" if last_error is not None else ("clear" if clear_error else "keep")
        if error != "keep":
            params["last_error"] = last_error[:2000] if last_error is not None else None
        conn.execute(_write_statement(state is not None, error), params)
        if state is not None:
            row.state, row.version = state, row.version + 1
        row.status, row.attempts, row.lease_owner, row.lease_until = status, attempts, lease_owner, lease_until
        row.open_call = open_call

    def emit(self, conn: Connection, emissions: Iterable[Any]) -> None:
        """Queue a unit of work's messages on the outbox (published once it commits)."""
        enqueue_many(conn, self.service, [
            (topic(e.topic_id, self.topic_prefix), e.key, e.message.to_json(),
             {"message_id": e.message.message_id, "type": type(e.message).__name__}) for e in emissions])

    # --- scheduling and leases -------------------------------------------------------------------------------

    def claim_due(self, conn: Connection, owner: str, *, limit: int, lease_s: float) -> list[str]:
        """Lease up to ``limit`` visits that are due and free, in one statement; their keys."""
        now = clock.now()
        until = now + _dt.timedelta(seconds=lease_s)
        mine = self._mine(conn)
        due = and_(mine, chain_visits.c.status.in_(("ready", "waiting")),
                   chain_visits.c.next_attempt_at <= now,
                   or_(chain_visits.c.lease_until.is_(None), chain_visits.c.lease_until < now))
        pick = select(chain_visits.c.visit_key).where(due).order_by(chain_visits.c.next_attempt_at).limit(limit)
        lease = dict(lease_owner=owner, lease_until=until, status="ready")
        if conn.dialect.name == "postgresql":
            # the pick runs exactly once (a MATERIALIZED CTE): as an ``IN (subquery … LIMIT n FOR UPDATE SKIP LOCKED)``
            # PostgreSQL may run the subquery again for each row it looks at, each time skipping the rows it has
            # just locked itself — one claim then leased every due visit, whatever the limit (the in-flight limit
            # ignored, and a second replica left nothing to drive)
            picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            stmt = (update(chain_visits)
                    .where(mine, chain_visits.c.visit_key == picked.c.visit_key)
                    .values(**lease).returning(chain_visits.c.visit_key))
        else:  # SQLite: one writer at a time, the statement runs its subquery once
            stmt = (update(chain_visits)
                    .where(mine, chain_visits.c.visit_key.in_(pick.scalar_subquery()), due)
                    .values(**lease).returning(chain_visits.c.visit_key))
        keys = list(conn.execute(stmt).scalars())
        if len(keys) > limit:  # never: a claim beyond the limit would drive more visits than the worker may
            raise RuntimeError(f"a claim of at most {limit} visits leased {len(keys)}")
        return keys

    def renew(self, conn: Connection, keys: Sequence[str], owner: str, lease_s: float) -> int:
        if not keys:
            return 0
        until = clock.now() + _dt.timedelta(seconds=lease_s)
        return conn.execute(update(chain_visits)
                            .where(self._mine(conn), chain_visits.c.visit_key.in_(list(keys)),
                                   chain_visits.c.lease_owner == owner)
                            .values(lease_until=until)).rowcount

    def release(self, conn: Connection, keys: Sequence[str], owner: str) -> None:
        if keys:
            conn.execute(update(chain_visits)
                         .where(self._mine(conn), chain_visits.c.visit_key.in_(list(keys)),
                                chain_visits.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))

    def count_by_status(self, conn: Connection) -> dict[str, int]:
        rows = conn.execute(select(chain_visits.c.status, func.count()).where(self._mine(conn))
                            .group_by(chain_visits.c.status)).all()
        return {status: n for status, n in rows}

    def unpark(self, conn: Connection, key: str | None = None) -> int:
        """Make parked visits ready again (``yibao replay chains``); returns how many."""
        cond = [self._mine(conn), chain_visits.c.status == "parked"]
        if key is not None:
            cond.append(chain_visits.c.visit_key == key)
        return conn.execute(update(chain_visits).where(*cond).values(
            status="ready", attempts=0, next_attempt_at=clock.now(), last_error=None)).rowcount

    def touch(self, conn: Connection, key: str) -> None:
        """Another visit's unit of work changed what this visit's state is built from (its side tables): bump its
        version, so a driver holding it reloads, and make it due."""
        conn.execute(update(chain_visits).where(self._mine(conn), chain_visits.c.visit_key == key).values(
            version=chain_visits.c.version + 1, updated_at=clock.now()))

    # --- the call journal -------------------------------------------------------------------------------------

    def open_call(self, conn: Connection, key: str, *, step: str, infno: str, msgid: str, purpose: str) -> int:
        return int(conn.execute(_OPEN_CALL, {"svc": self.scoped(conn), "key": key, "step": step[:64], "infno": infno,
                                             "msgid": msgid, "purpose": purpose, "at": clock.now()}).scalar_one())

    def close_call(self, conn: Connection, call_id: int, status: str, *, resolution: str | None = None,
                   err_msg: str | None = None) -> None:
        conn.execute(_CLOSE_CALL, {"call_id": call_id, "status": status, "resolution": resolution,
                                   "err": (err_msg or None) and err_msg[:2000], "at": clock.now()})

    def call(self, conn: Connection, call_id: int) -> CallRow | None:
        r = conn.execute(_CALL, {"call_id": call_id}).first()
        return CallRow(*r) if r is not None else None
