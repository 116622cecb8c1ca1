"""Fixtures of the reconciliation unit tests: a migrated SQLite database, the stand-in platform, a Reconciler."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from unit.reconciliation.recon_fakes import FakePlatform
from yibao.core.db.schema import outbox
from yibao.core.results import HisResult
from yibao.reconciliation.ledger import LedgerEntry, insert_entry
from yibao.reconciliation.reconciler import Reconciler
from yibao.reconciliation.settings import ReconciliationSettings


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def make_settings(sqlite_url: str, tmp_path: Path) -> Callable[..., ReconciliationSettings]:
    def make(**kw: Any) -> ReconciliationSettings:
        values: dict[str, Any] = {
            "database_url": sqlite_url, "reports_dir": tmp_path / "reports", "insutypes": ["310"],
            "clr_types": ["11"], "setl_optins": ["440100"], "optins_lookback_days": 0, "topic_prefix": "t.",
            "auto_approve_classes": [], "auto_approve_max_amount": "0.00", **kw,
        }
        return ReconciliationSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., ReconciliationSettings]) -> ReconciliationSettings:
    return make_settings()


@pytest.fixture
def make_reconciler(engine: Engine, platform: FakePlatform,
                    make_settings: Callable[..., ReconciliationSettings]) -> Callable[..., Reconciler]:
    def make(**kw: Any) -> Reconciler:
        return Reconciler(engine, platform, make_settings(**kw), default_optins="440100")

    return make


@pytest.fixture
def reconciler(make_reconciler: Callable[..., Reconciler]) -> Reconciler:
    return make_reconciler()


@pytest.fixture
def book(engine: Engine) -> Callable[..., None]:
    """Put entries straight into the hospital ledger."""

    def put(*entries: LedgerEntry) -> None:
        with engine.begin() as conn:
            for e in entries:
                assert insert_entry(conn, e)

    return put


@pytest.fixture
def sent_results(engine: Engine) -> Callable[[], list[HisResult]]:
    """The HisResults reconciliation put into the outbox, oldest first."""

    def read() -> list[HisResult]:
        with engine.connect() as conn:
            rows = conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)).all()
        return [HisResult.model_validate_json(p) for t, p in rows if t.endswith("yibao.his.results.v1")]

    return read


@pytest.fixture
def run_events(engine: Engine) -> Callable[[], list[dict[str, Any]]]:
    def read() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)).all()
        return [json.loads(p) for t, p in rows if t.endswith("yibao.recon.results.v1")]

    return read


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the tests, not from the machine's YIBAO_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("YIBAO_") or name in ("DATABASE_URL", "KAFKA_BOOTSTRAP"):
            monkeypatch.delenv(name, raising=False)
    yield
