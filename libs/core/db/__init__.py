"""The database: one SQLAlchemy 2 schema (PostgreSQL in production, SQLite embedded), Alembic migrations.

Chain state, inboxes, outboxes and the platform call log live here, not in Kafka state stores.
"""

from yibao.core.db.engine import make_engine, normalize_url, session_scope, transaction
from yibao.core.db.schema import metadata

__all__ = ["make_engine", "normalize_url", "session_scope", "transaction", "metadata"]
