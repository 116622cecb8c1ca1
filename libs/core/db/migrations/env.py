"""Alembic environment: online migrations against the URL put in the config by yibao.core.db.migrations."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from yibao.core.db.engine import make_engine
from yibao.core.db.schema import metadata

config = context.config


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:  # yibao.core.db.migrations.upgrade passes its (locked) connection
        _migrate(given)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


run_migrations_online()
