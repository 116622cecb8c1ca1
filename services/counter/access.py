"""Who may import and export 核酸 batches (they move money): identities and the audit row, on
:mod:`yibao.core.access` (the same machinery finance logs in with for reconciliation).

=============  ===================================================================================
``lab``        imports a batch, reads its progress and exports it (the lab sends the tested people)
``finance``    imports, reads and exports (finance settles and books them)
``ops``        reads a batch's progress without names or certificate numbers; nothing else
=============  ===================================================================================

Every import, export, read and refused attempt is a row of ``counter_audit`` (who, the role that allowed it, how
they proved it, from where, the batch, the outcome, the HTTP status, the reason) — written in the transaction of
the import itself, so no batch exists without its row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from yibao.core import access
from yibao.core.access import Actor
from yibao.core.db.schema import counter_audit
from yibao.core.deployment import Deployment

__all__ = ["ROLES", "PERMISSIONS", "POLICY", "record"]

ROLES: tuple[str, ...] = ("lab", "finance", "ops")
PERMISSIONS: dict[str, frozenset[str]] = {
    "batch.import": frozenset({"lab", "finance"}),
    "batch.read": frozenset({"lab", "finance", "ops"}),
    "batch.export": frozenset({"lab", "finance"}),
    "personal.read": frozenset({"lab", "finance"}),
}
POLICY = access.Policy(ROLES, PERMISSIONS, {
    "batch.import": "import a 核酸 batch", "batch.read": "read 核酸 batches",
    "batch.export": "export a 核酸 batch", "personal.read": "see personal data"})


def record(conn: Connection, actor: Actor, action: str, outcome: str, *, batch_id: str | None = None,
           status: int | None = None, detail: str | None = None, **_: Any) -> None:
    conn.execute(insert(counter_audit).values(
        scope=Deployment.of(conn).scoped("counter"), batch_id=batch_id[:40] if batch_id else None,
        **access.audit_values(actor, action, outcome, status=status, detail=detail)))
