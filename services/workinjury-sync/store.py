"""How a work-injury case's state is read and written (:class:`~yibao.chains.state.StateStore`): the whole state as
the row's JSON (sealed at rest like every chain's), and — in the same transaction — the case's rows of
``workinjury_watch``: the oldest HIS event still waiting for each upload, the end of a stream's last complete poll.
The deadline gauges read that table (:mod:`yibao.workinjury_sync.deadlines`), never the sealed states."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, delete, insert

from yibao.chains.state import JsonStateStore
from yibao.core.db.schema import workinjury_watch
from yibao.core.deployment import Deployment
from yibao.workinjury_sync.results import SERVICE
from yibao.workinjury_sync.state import WorkInjuryState

__all__ = ["WorkInjuryStore", "watch_scope"]


def watch_scope(conn: Connection) -> str:
    return Deployment.of(conn).scoped(SERVICE)


class WorkInjuryStore(JsonStateStore[WorkInjuryState]):
    def __init__(self) -> None:
        super().__init__(WorkInjuryState)

    def dump(self, conn: Connection, key: str, state: WorkInjuryState) -> str:
        rows = state.watch()
        sig = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
        if sig != state.watch_sig:
            scope = watch_scope(conn)
            conn.execute(delete(workinjury_watch).where(workinjury_watch.c.scope == scope,
                                                        workinjury_watch.c.case_key == key))
            if rows:
                conn.execute(insert(workinjury_watch), [
                    {"scope": scope, "case_key": key, "kind": kind, "item": item, "since": since}
                    for kind, item, since in rows])
            state.watch_sig = sig
        return super().dump(conn, key, state)
