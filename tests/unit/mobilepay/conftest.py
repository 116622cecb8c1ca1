"""Fixtures of the mobile-pay unit tests: SQLite, the simulator in-process, the chain on the real engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from unit.mobilepay.harness import Harness
from unit.mobilepay.standin import make_simulator


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    return make_simulator()


@pytest.fixture
def h(sqlite_engine: Engine, sim) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(sqlite_engine, sim)


@pytest.fixture
def make_h(sqlite_engine: Engine, sim) -> Callable[..., Harness]:  # type: ignore[no-untyped-def]
    """A harness with a configuration of the test's own (short waits …)."""
    return lambda **config: Harness(sqlite_engine, sim, **config)
