"""The chain tables in ``yibao data`` (registered when :mod:`yibao.chains` is imported):

* ``chain_visits.state`` is sealed with the deployment's data key (a state holds certno, names, mdtrt_cert_no):
  ``yibao data reencrypt`` re-seals it under the current key;
* the call journal (``chain_calls``: step names, msgids, masked refusal texts) is purged after the retention days
  once its calls are ended. Visit states are kept: a refund may come long after a settlement, and the state is what
  it is checked against (sealed at rest meanwhile).
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import Connection, and_, delete, func, select

from yibao.core.db.schema import chain_calls, chain_visits
from yibao.core.deployment import Deployment
from yibao.core.reseal import SealedColumn
from yibao.core.reseal import register as register_sealed
from yibao.core.retention import register as register_purge

__all__ = ["purge_calls"]


def purge_calls(conn: Connection, cutoff: _dt.datetime, dry_run: bool) -> tuple[str, int]:
    """Ended journal rows of this deployment older than ``cutoff``."""
    prefix = Deployment.of(conn).prefix
    cond = and_(chain_calls.c.updated_at < cutoff, chain_calls.c.status.not_in(("sent", "unknown")),
                chain_calls.c.service.like(f"{prefix}%") if prefix else chain_calls.c.id.is_not(None))
    if dry_run:
        return "chain_calls", int(conn.execute(select(func.count()).select_from(chain_calls).where(cond)).scalar_one())
    return "chain_calls", conn.execute(delete(chain_calls).where(cond)).rowcount


register_sealed(SealedColumn(chain_visits, "state", "service"))
register_purge(purge_calls)
