"""Alembic migrations for the one schema; run with ``yibao db upgrade`` (or :func:`upgrade`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from alembic import command
from alembic.config import Config

from sqlalchemy import make_url, text

from yibao.core.db.engine import make_engine, normalize_url
from yibao.core.filelock import held

__all__ = ["alembic_config", "upgrade", "current_head"]

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


#: PostgreSQL advisory lock key held while migrating, so replicas starting together migrate one at a time
MIGRATION_LOCK = 74512001


def _sqlite_turn(url: str) -> contextlib.AbstractContextManager[None]:
    """SQLite has no advisory lock: processes migrating one file take turns on a lock file beside it (without it,
    a second process reads the version before the first commits and creates the same tables again)."""
    engine_url = make_url(normalize_url(url))
    database = engine_url.database if engine_url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        return contextlib.nullcontext()
    return held(f"{database}.migrate.lock")


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Idempotent, and safe when several workers start at once."""
    with _sqlite_turn(url):
        _upgrade(url, revision)


def _upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
            try:
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if postgres:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    conn.commit()
    finally:
        engine.dispose()


def current_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head
