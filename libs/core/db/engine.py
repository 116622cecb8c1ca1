"""Engines and transactions.

Database work is synchronous SQLAlchemy, run off the event loop with ``asyncio.to_thread`` by callers that
live in an async worker; one unit of work = one transaction (:func:`transaction`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["normalize_url", "make_engine", "transaction", "session_scope", "dialect_of"]


def normalize_url(url: str) -> str:
    """Accept the URLs people write (``postgres://``, ``postgresql://``) and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def dialect_of(url: str) -> str:
    return make_url(normalize_url(url)).get_backend_name()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if dialect_of(url) == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite's own BEGIN is deferred; take the write lock at BEGIN so two writers queue instead of failing
        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    # no pre-ping: it costs a round trip per transaction. A connection the server dropped fails its first use;
    # SQLAlchemy invalidates it (the pool opens a new one), the failure is classified an outage
    # (yibao.core.failures) and the unit of work runs again. Connections are recycled before servers and proxies
    # drop idle ones.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    # as many kept open as a worker's threads use at once (asyncio's default executor, plus the relays' batches
    # held while Kafka answers): a pool smaller than that closes a connection whenever one is handed back at the
    # peak and opens a new one moments later — a PostgreSQL process, a SCRAM exchange and every prepared statement
    # each time (bench_mobilepay.py saw 27 sessions opened for 200 orders with 5). Only what is used is opened.
    kwargs.setdefault("pool_size", min(32, (os.cpu_count() or 1) + 4) + 4)
    kwargs.setdefault("max_overflow", 10)
    # an unreachable server fails a connection attempt within seconds (an outage the caller waits out) instead
    # of holding a thread for the operating system's TCP timeout
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    kwargs.setdefault("pool_timeout", 30)
    engine = create_engine(url, **kwargs)
    if dialect_of(url) == "postgresql":
        # a plain INSERT of many rows (outbox messages, charge lines) as one INSERT … VALUES (…), (…) statement
        # rather than psycopg's pipelined executemany of one statement per row (SQLAlchemy's "insertmanyvalues"; it
        # leaves INSERT … ON CONFLICT DO UPDATE to executemany by itself); a fraction of the CPU per row
        engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work on a Core connection: commit on success, roll back on any exception."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        yield session
