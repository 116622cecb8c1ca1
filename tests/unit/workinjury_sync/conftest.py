"""Fixtures of the workinjury-sync unit tests: SQLite, the simulator in-process, the chain on the real engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from unit.workinjury_sync.harness import Harness


@pytest.fixture
def h(sqlite_engine: Engine) -> Iterator[Harness]:
    yield Harness(sqlite_engine)


@pytest.fixture
def make_h(sqlite_engine: Engine):  # type: ignore[no-untyped-def]
    return lambda **settings: Harness(sqlite_engine, **settings)
