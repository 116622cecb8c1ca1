"""Leases of chain visits on the real database: a claim takes at most as many visits as the worker has room for
(its in-flight limit), and workers claiming at the same moment never lease the same visit."""

from __future__ import annotations

import datetime as _dt
import threading

import pytest
from sqlalchemy import Engine, func, select, update

from yibao.chains.store import ChainStore
from yibao.core import clock
from yibao.core.db.schema import chain_visits

pytestmark = [pytest.mark.integration]


def _due_visits(engine: Engine, store: ChainStore, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            store.create(conn, f"V{i:03d}", "outpatient", "{}")
        conn.execute(update(chain_visits).values(status="ready",
                                                 next_attempt_at=clock.now() - _dt.timedelta(seconds=1)))


def test_a_claim_never_leases_more_visits_than_its_limit(migrated_engine: Engine) -> None:
    store = ChainStore("toy")
    _due_visits(migrated_engine, store, 40)
    for limit in (1, 2, 3, 7):
        with migrated_engine.begin() as conn:
            keys = store.claim_due(conn, f"w{limit}", limit=limit, lease_s=60)
        assert len(keys) == limit
        with migrated_engine.connect() as conn:
            leased = conn.execute(select(func.count()).where(chain_visits.c.lease_owner == f"w{limit}")).scalar()
        assert leased == limit


def test_workers_claiming_at_once_never_lease_the_same_visit_nor_more_than_their_limit(
        migrated_engine: Engine) -> None:
    store = ChainStore("toy")
    _due_visits(migrated_engine, store, 60)
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def worker(owner: str) -> None:
        start.wait()
        got: list[str] = []
        for _ in range(5):
            with migrated_engine.begin() as conn:
                keys = store.claim_due(conn, owner, limit=2, lease_s=60)
            assert len(keys) <= 2
            got += keys
        claimed[owner] = got

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [k for keys in claimed.values() for k in keys]
    assert len(every) == len(set(every)) == 40
    with migrated_engine.connect() as conn:
        owners = dict(conn.execute(select(chain_visits.c.visit_key, chain_visits.c.lease_owner)).all())
    for owner, keys in claimed.items():
        assert all(owners[k] == owner for k in keys)
