"""Alembic environment: online migrations against the URL put in the config by yibao.core.db.migrations."""

from __future__ import annotations

from alembic import context

from yibao.core.db.engine import make_engine
from yibao.core.db.schema import metadata

config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
