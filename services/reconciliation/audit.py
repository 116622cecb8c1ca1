"""The audit table (``recon_audit``): every action on reconciliation, who did it, in which role, and how it ended.

One row per action or attempt — a run triggered, repairs approved or rejected, a report downloaded, a console
login or logout, a login that failed, a request refused (401, 403, four eyes), a command refused. A decision's
row is written in the transaction that records the decision, so an approval never exists without its row.
Columns: when (Asia/Shanghai), actor, role, method (oidc, static, session, command, cli, schedule), action,
run id, difference ids, outcome (ok, denied, refused, failed), HTTP status, source (the client's address, or
topic/partition/offset of a command) and the reason. Tokens and personal data are never written here.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from yibao.core import clock
from yibao.core.access import ANONYMOUS, Actor, audit_values
from yibao.core.db.schema import recon_audit

__all__ = ["Actor", "AuditRow", "record", "recent", "ANONYMOUS"]


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: _dt.datetime
    actor: str
    role: str
    method: str
    action: str
    run_id: str | None
    difference_ids: list[int] | None
    outcome: str
    status: int | None
    source: str
    detail: str | None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "at": clock.format_datetime(self.at), "actor": self.actor, "role": self.role,
                "method": self.method, "action": self.action, "run_id": self.run_id,
                "difference_ids": self.difference_ids, "outcome": self.outcome, "status": self.status,
                "source": self.source, "detail": self.detail}


def record(conn: Connection, actor: Actor, action: str, outcome: str, *, run_id: str | None = None,
           difference_ids: Iterable[int] | None = None, status: int | None = None,
           detail: str | None = None) -> None:
    ids = sorted(set(difference_ids)) if difference_ids is not None else None
    conn.execute(insert(recon_audit).values(
        **audit_values(actor, action, outcome, status=status, detail=detail), run_id=run_id[:40] if run_id else None,
        difference_ids=json.dumps(ids) if ids is not None else None))


def recent(conn: Connection, *, limit: int = 200, run_id: str | None = None,
           action: str | None = None) -> list[AuditRow]:
    query = select(recon_audit)
    if run_id is not None:
        query = query.where(recon_audit.c.run_id == run_id)
    if action is not None:
        query = query.where(recon_audit.c.action == action)
    rows = conn.execute(query.order_by(recon_audit.c.id.desc()).limit(limit))
    return [AuditRow(id=r.id, at=r.at, actor=r.actor, role=r.role, method=r.method, action=r.action,
                     run_id=r.run_id, difference_ids=json.loads(r.difference_ids) if r.difference_ids else None,
                     outcome=r.outcome, status=r.status, source=r.source, detail=r.detail) for r in rows]
