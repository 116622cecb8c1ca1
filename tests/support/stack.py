"""Session fixtures: the real broker and database, fresh databases and topic prefixes per test."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.stack import Stack, start_stack

__all__ = ["new_database", "stack", "kafka_bootstrap", "database_url", "fresh_db_url", "migrated_engine", "any_db_url", "prefix"]

_STACK: Stack | None = None


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    global _STACK
    require = os.environ.get("YIBAO_REQUIRE_REAL") == "1"
    _STACK = start_stack(prefer="real", require_real=require)
    print("\n" + _STACK.info.describe())
    previous = _stop_on_sigterm()
    try:
        yield _STACK
    finally:
        _STACK.stop()
        _STACK = None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """A SIGTERM (``timeout``, a CI runner giving up) ends the session like Ctrl-C, so that the broker and the
    database started above (in sessions of their own) are stopped instead of outliving the run."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Stack) -> str:
    return stack.info.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(stack: Stack) -> str:
    return stack.info.database_url


def new_database(stack: Stack, tmp_path: Path) -> str:
    """A new, empty database on the stack's server (PostgreSQL in CI), or a SQLite file in tmp_path."""
    if stack.postgres_server is not None:
        return stack.postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    url = stack.info.database_url
    if url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(url)
        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
        if u.password:
            dsn += f" password={u.password}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return u.set(database=name).render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path / 'yibao.sqlite'}"


@pytest.fixture
def fresh_db_url(stack: Stack, tmp_path: Path) -> str:
    """An empty database of the stack's kind (PostgreSQL in CI), not yet migrated."""
    return new_database(stack, tmp_path)


@pytest.fixture
def migrated_engine(fresh_db_url: str) -> Iterator[Engine]:
    upgrade(fresh_db_url)
    engine = make_engine(fresh_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, stack: Stack, tmp_path: Path) -> str:
    """The same test on both databases (PostgreSQL from the stack; skipped only where none is available)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'yibao.sqlite'}"
    url = new_database(stack, tmp_path)
    if not url.startswith("postgresql"):
        if os.environ.get("YIBAO_REQUIRE_REAL") == "1":
            pytest.fail("PostgreSQL required but the stack has none")
        pytest.skip("no PostgreSQL on this machine")
    return url


@pytest.fixture
def prefix() -> str:
    """A topic prefix unique to this test, so tests never see each other's messages."""
    return f"t{uuid.uuid4().hex[:8]}."
