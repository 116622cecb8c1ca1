"""Fixtures of the settlement unit tests: SQLite, the simulator in-process, the chain on the real engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from unit.settlement.harness import Harness
from unit.settlement.platform_standin import make_simulator


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    return make_simulator()


@pytest.fixture
def h(sqlite_engine: Engine, sim) -> Iterator[Harness]:  # type: ignore[no-untyped-def]
    yield Harness(sqlite_engine, sim)


@pytest.fixture
def make_h(sqlite_engine: Engine, sim):  # type: ignore[no-untyped-def]
    """A harness with settings of the test's own (e.g. a short deadline, a small batch)."""
    return lambda **settings: Harness(sqlite_engine, sim, **settings)
