"""Shared fixtures.

Unit tests need neither broker nor database server. Integration and end-to-end tests ask for the session
fixtures of tests/support/stack.py (``stack``, ``kafka_bootstrap``, ``fresh_db_url``, ``any_db_url`` …), which
start a real Apache Kafka (KRaft) and PostgreSQL once per session through yibao.stack — lazily, only when a test
needs them. ``.ci/run`` sets ``YIBAO_REQUIRE_REAL=1`` so a silent fallback to the embedded broker or SQLite fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from support.stack import *  # noqa: F401,F403  (session fixtures: the real stack)
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'yibao.sqlite'}"


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The migrations run once per session into a file every ``sqlite_engine`` starts from as a copy (running them
    for each of the hundreds of tests that need an empty database cost minutes of the suite)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(sqlite_url: str, _migrated_sqlite_file: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite database for tests of pure database logic (a copy of the session's template)."""
    shutil.copyfile(_migrated_sqlite_file, sqlite_url.removeprefix("sqlite:///"))
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()
