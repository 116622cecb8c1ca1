"""One schema, migrated by Alembic, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import subprocess
import sys
import threading
from decimal import Decimal

import pytest

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, Table, insert, select, text

from yibao.core import clock
from yibao.core.db import make_engine, metadata
from yibao.core.db.migrations import current_head, upgrade
from yibao.core.db.types import Money, ShanghaiDateTime


def test_migrations_create_exactly_the_schema(any_db_url: str) -> None:
    upgrade(any_db_url)
    engine = make_engine(any_db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diff == []
    assert version == current_head()


def test_upgrade_is_idempotent(any_db_url: str) -> None:
    upgrade(any_db_url)
    upgrade(any_db_url)


def test_workers_starting_together_migrate_once(any_db_url: str) -> None:
    """Replicas are processes: four `yibao db upgrade` at once must all succeed and leave one schema."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "yibao.cli.main", "db", "upgrade", "--url", any_db_url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    engine = make_engine(any_db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [current_head()]
    engine.dispose()


def test_money_is_exact_and_times_come_back_in_shanghai(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    md = MetaData()
    table = Table("t_money", md, Column("k", String(10), primary_key=True), Column("amt", Money()),
                  Column("at", ShanghaiDateTime()))
    md.create_all(engine)
    utc_moment = _dt.datetime(2026, 1, 1, 0, 30, tzinfo=_dt.timezone.utc)
    amounts = [Decimal("0.10"), Decimal("0.20"), Decimal("12345678901234.99")]
    with engine.begin() as conn:
        for i, amt in enumerate(amounts):
            conn.execute(insert(table).values(k=str(i), amt=amt, at=utc_moment))
    with engine.connect() as conn:
        total = conn.execute(select(table.c.amt.label("a"))).scalars().all()
        summed = conn.execute(text("SELECT SUM(amt) FROM t_money")).scalar()
        at = conn.execute(select(table.c.at)).scalars().first()
    engine.dispose()
    assert total == amounts
    assert Decimal(summed) / 100 == sum(amounts)
    assert at == utc_moment and at.tzinfo is not None and at.utcoffset() == _dt.timedelta(hours=8)
    assert at.astimezone(clock.SHANGHAI).hour == 8


def test_a_worker_busy_on_every_thread_keeps_its_connections_instead_of_reopening_them(fresh_db_url: str) -> None:
    """As many units of work at once as asyncio's default executor runs, round after round: PostgreSQL opens no
    new session after the first round (a pool smaller than the threads closed and reopened one at every peak)."""
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("sessions are PostgreSQL's")
    threads = min(32, (os.cpu_count() or 1) + 4)
    engine = make_engine(fresh_db_url)
    watcher = make_engine(fresh_db_url, pool_size=1)
    together = threading.Barrier(threads)

    def unit() -> None:
        with engine.begin() as conn:
            together.wait(timeout=30)  # every thread holds a connection at the same moment
            conn.execute(text("SELECT 1"))

    def sessions() -> int:
        with watcher.connect() as conn:
            return int(conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))
                       .scalar())

    async def rounds(n: int) -> None:
        for _ in range(n):
            await asyncio.gather(*(asyncio.to_thread(unit) for _ in range(threads)))

    try:
        asyncio.run(rounds(1))
        opened = sessions()
        asyncio.run(rounds(5))
        assert sessions() == opened
    finally:
        engine.dispose()
        watcher.dispose()
