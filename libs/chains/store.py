"""Persistence of chains: visit rows (state, scheduling, leases) and the call journal. Synchronous SQLAlchemy
Core on a caller-owned connection, so every change joins the caller's unit of work."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from yibao.chains.model import Visit
from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits
from yibao.core.messaging.outbox import enqueue
from yibao.core.topics import topic

__all__ = ["ChainStore", "CallRow", "dumps_state"]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def dumps_state(state: dict[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False, default=_default, separators=(",", ":"))


@dataclass(frozen=True)
class CallRow:
    id: int
    step: str
    infno: str
    msgid: str | None
    status: str


class ChainStore:
    def __init__(self, service: str, *, topic_prefix: str = "") -> None:
        self.service = service
        self.topic_prefix = topic_prefix

    # --- visits -----------------------------------------------------------------------------------------------

    def load(self, conn: Connection, key: str, *, lock: bool = True) -> Visit | None:
        stmt = select(chain_visits).where(chain_visits.c.service == self.service, chain_visits.c.visit_key == key)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return Visit(service=self.service, key=key, kind=row["visit_kind"], state=json.loads(row["state"]),
                     status=row["status"], version=row["version"], attempts=row["attempts"])

    def load_or_create(self, conn: Connection, key: str, kind: str, initial: dict[str, Any]) -> Visit:
        visit = self.load(conn, key)
        if visit is not None:
            return visit
        now = clock.now()
        conn.execute(insert(chain_visits).values(
            service=self.service, visit_key=key, visit_kind=kind, status="ready", state=dumps_state(initial),
            version=0, attempts=0, next_attempt_at=now, created_at=now, updated_at=now))
        loaded = self.load(conn, key)
        assert loaded is not None
        return loaded

    def save(self, conn: Connection, visit: Visit, *, status: str | None = None,
             next_attempt_at: _dt.datetime | None = None, attempts: int | None = None,
             last_error: str | None = None) -> None:
        """Write the state (checking nobody else did meanwhile) and the visit's emissions, in the caller's
        transaction."""
        values: dict[str, Any] = {"state": dumps_state(visit.state), "version": visit.version + 1,
                                  "updated_at": clock.now()}
        if status is not None:
            values["status"] = status
            values["next_attempt_at"] = next_attempt_at
            visit.status = status
        if attempts is not None:
            values["attempts"] = attempts
            visit.attempts = attempts
        if last_error is not None or status in ("ready", "idle"):
            values["last_error"] = last_error
        result = conn.execute(
            update(chain_visits)
            .where(chain_visits.c.service == self.service, chain_visits.c.visit_key == visit.key,
                   chain_visits.c.version == visit.version)
            .values(**values)
        )
        if result.rowcount != 1:
            raise ConcurrentChange(f"visit changed under us (version {visit.version})")
        visit.version += 1
        for emission in visit.emitted:
            message = emission.message
            enqueue(conn, producer=self.service, topic=topic(emission.topic_id, self.topic_prefix), key=visit.key,
                    value=message.to_json(),  # type: ignore[attr-defined]
                    headers={"message_id": message.message_id,  # type: ignore[attr-defined]
                             "type": type(message).__name__})
        visit.emitted.clear()

    def make_ready(self, conn: Connection, key: str) -> None:
        conn.execute(update(chain_visits)
                     .where(chain_visits.c.service == self.service, chain_visits.c.visit_key == key,
                            chain_visits.c.status != "parked")
                     .values(status="ready", next_attempt_at=clock.now()))

    # --- scheduling and leases -------------------------------------------------------------------------------

    def claim_due(self, conn: Connection, owner: str, *, limit: int, lease_s: float) -> list[str]:
        now = clock.now()
        due = and_(
            chain_visits.c.service == self.service,
            chain_visits.c.status.in_(("ready", "waiting")),
            chain_visits.c.next_attempt_at.is_not(None),
            chain_visits.c.next_attempt_at <= now,
            or_(chain_visits.c.lease_until.is_(None), chain_visits.c.lease_until < now),
        )
        stmt = select(chain_visits.c.visit_key).where(due).order_by(chain_visits.c.next_attempt_at).limit(limit)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        keys = list(conn.execute(stmt).scalars())
        claimed = []
        for key in keys:
            result = conn.execute(update(chain_visits)
                                  .where(due, chain_visits.c.visit_key == key)
                                  .values(lease_owner=owner, lease_until=now + _dt.timedelta(seconds=lease_s)))
            if result.rowcount == 1:
                claimed.append(key)
        return claimed

    def renew(self, conn: Connection, key: str, owner: str, lease_s: float) -> bool:
        result = conn.execute(update(chain_visits)
                              .where(chain_visits.c.service == self.service, chain_visits.c.visit_key == key,
                                     chain_visits.c.lease_owner == owner)
                              .values(lease_until=clock.now() + _dt.timedelta(seconds=lease_s)))
        return result.rowcount == 1

    def release(self, conn: Connection, key: str, owner: str) -> None:
        conn.execute(update(chain_visits)
                     .where(chain_visits.c.service == self.service, chain_visits.c.visit_key == key,
                            chain_visits.c.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))

    def count_by_status(self, conn: Connection) -> dict[str, int]:
        rows = conn.execute(select(chain_visits.c.status, func.count())
                            .where(chain_visits.c.service == self.service)
                            .group_by(chain_visits.c.status)).all()
        return {status: n for status, n in rows}

    def unpark(self, conn: Connection, key: str | None = None) -> int:
        """Make parked visits ready again (``yibao replay``); returns how many."""
        cond = [chain_visits.c.service == self.service, chain_visits.c.status == "parked"]
        if key is not None:
            cond.append(chain_visits.c.visit_key == key)
        result = conn.execute(update(chain_visits).where(*cond)
                              .values(status="ready", attempts=0, next_attempt_at=clock.now(), last_error=None))
        return result.rowcount

    # --- the call journal -------------------------------------------------------------------------------------

    def open_call(self, conn: Connection, key: str, *, step: str, infno: str, msgid: str | None,
                  purpose: str) -> int:
        now = clock.now()
        result = conn.execute(insert(chain_calls).values(
            service=self.service, visit_key=key, step=step, infno=infno, msgid=msgid, purpose=purpose,
            status="sent", created_at=now, updated_at=now).returning(chain_calls.c.id))
        return int(result.scalar_one())

    def close_call(self, conn: Connection, call_id: int, status: str, *, resolution: str | None = None,
                   err_msg: str | None = None) -> None:
        conn.execute(update(chain_calls).where(chain_calls.c.id == call_id).values(
            status=status, resolution=resolution, err_msg=(err_msg or None) and err_msg[:2000],
            updated_at=clock.now()))

    def unresolved_step_call(self, conn: Connection, key: str) -> CallRow | None:
        """A step call that was sent and never got a known outcome (lost answer, or a crash mid-call)."""
        row = conn.execute(
            select(chain_calls.c.id, chain_calls.c.step, chain_calls.c.infno, chain_calls.c.msgid,
                   chain_calls.c.status)
            .where(chain_calls.c.service == self.service, chain_calls.c.visit_key == key,
                   chain_calls.c.purpose == "step", chain_calls.c.status.in_(("sent", "unknown")))
            .order_by(chain_calls.c.id).limit(1)
        ).first()
        return CallRow(*row) if row else None


class ConcurrentChange(RuntimeError):
    """Optimistic-lock failure: the unit of work is retried."""
