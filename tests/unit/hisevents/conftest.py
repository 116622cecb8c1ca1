"""Fixtures of the hisevents unit tests: hand-written Debezium records (fixtures/*.json) and the example mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from yibao.hisevents import Ingestor, load_mapping
from yibao.hisevents.mapping import HisMapping

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def example_mapping() -> HisMapping:
    return load_mapping("example-oracle-his")


@pytest.fixture(scope="session")
def ingestor(example_mapping: HisMapping) -> Ingestor:
    return Ingestor(example_mapping)


@pytest.fixture
def raw() -> Callable[[str], bytes]:
    """The bytes of a fixture file, exactly as written."""
    return lambda name: (FIXTURES / name).read_bytes()


@pytest.fixture
def record() -> Callable[[str], Any]:
    """A fixture file as a JSON structure (numbers as Decimal), to vary one detail in a test."""
    return lambda name: json.loads((FIXTURES / name).read_text(encoding="utf-8"), parse_float=Decimal)


def to_bytes(obj: Any) -> bytes:
    """JSON bytes of a (possibly modified) fixture; Decimals are written as JSON numbers, never via float."""
    from yibao.fakedata.cdc import dumps

    return dumps(obj).encode("utf-8")


@pytest.fixture
def encode() -> Callable[[Any], bytes]:
    return to_bytes
