"""Fixtures of the upload scheduler's unit tests: SQLite, the simulator in-process, the chain on the real engine."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from unit.upload_scheduler.harness import Harness
from unit.upload_scheduler.standin import make_simulator


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    return make_simulator()


@pytest.fixture
def h(sqlite_engine: Engine, sim) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(sqlite_engine, sim)


@pytest.fixture
def make_h(sqlite_engine: Engine, sim):  # type: ignore[no-untyped-def]
    """A harness with settings of the test's own (targets enabled, deadlines …)."""
    return lambda **settings: Harness(sqlite_engine, sim, **settings)
