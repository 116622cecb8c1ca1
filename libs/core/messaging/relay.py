"""The outbox relay: publishes a producer's pending outbox rows, in order, then marks them published.

One relay per producer name is active at a time: on PostgreSQL a transaction-scoped advisory lock elects it
(so replicas never publish the same rows concurrently or out of order); within one process relays of a producer
take turns on an asyncio lock, which is all SQLite (one process, the embedded default) needs. Published rows are deleted after ``retention``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import zlib
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, Engine, and_, delete, func, select, text, update

from yibao.core import clock
from yibao.core.db.schema import outbox
from yibao.core.messaging.outbox import OutboxMessage
from yibao.core.metrics import OUTBOX_PENDING, OUTBOX_PUBLISHED

__all__ = ["OutboxRelay", "SendBatch"]

log = logging.getLogger(__name__)

SendBatch = Callable[[list[OutboxMessage]], Awaitable[None]]

_IN_PROCESS: dict[tuple[int, str, str], asyncio.Lock] = {}


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        producer: str,
        send_batch: SendBatch,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        retention: _dt.timedelta = _dt.timedelta(days=1),
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.send_batch = send_batch
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self._wake = asyncio.Event()
        self._lock_id = zlib.crc32(f"yibao-outbox-{producer}".encode())
        self._last_cleanup = 0.0

    def wake(self) -> None:
        """Publish soon: called after a unit of work committed outbox rows."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            try:
                sent = await self.drain_once()
            except Exception:  # the broker or the database is away: keep the rows, try again later
                log.exception("outbox relay could not publish; will retry", extra={"fields": {"producer": self.producer}})
                sent = 0
                await asyncio.sleep(min(5.0, self.poll_interval * 4))
            if sent == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                except asyncio.TimeoutError:
                    pass

    async def drain_once(self) -> int:
        """Publish one batch; returns how many were published."""
        key = (id(asyncio.get_running_loop()), str(self.engine.url), self.producer)
        lock = _IN_PROCESS.setdefault(key, asyncio.Lock())
        async with lock:  # relays of one producer in one process take turns (SQLite has no advisory lock)
            return await self._drain_once()

    async def _drain_once(self) -> int:
        conn = await asyncio.to_thread(self.engine.connect)
        try:
            rows = await asyncio.to_thread(self._claim, conn)
            if not rows:
                await asyncio.to_thread(conn.rollback)
                return 0
            await self.send_batch(rows)
            await asyncio.to_thread(self._mark, conn, [r.id for r in rows])
            OUTBOX_PUBLISHED.labels(self.producer).inc(len(rows))
            return len(rows)
        finally:
            await asyncio.to_thread(conn.close)

    def _claim(self, conn: Connection) -> list[OutboxMessage]:
        conn.begin()
        if conn.dialect.name == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_id}).scalar()
            if not got:
                return []
        pending = and_(outbox.c.producer == self.producer, outbox.c.published_at.is_(None))
        result = conn.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.msg_key, outbox.c.payload, outbox.c.headers)
            .where(pending).order_by(outbox.c.id).limit(self.batch_size)
        ).all()
        if len(result) < self.batch_size:
            OUTBOX_PENDING.labels(self.producer).set(len(result))
        else:
            OUTBOX_PENDING.labels(self.producer).set(conn.execute(select(func.count()).where(pending)).scalar() or 0)
        if conn.dialect.name == "sqlite":  # do not hold SQLite's single write lock while Kafka answers
            conn.commit()
        return [
            OutboxMessage(
                id=r.id, topic=r.topic, key=r.msg_key.encode() if r.msg_key is not None else None,
                value=r.payload.encode(),
                headers=[(k, v.encode()) for k, v in json.loads(r.headers).items()] if r.headers else [],
            )
            for r in result
        ]

    def _mark(self, conn: Connection, ids: list[int]) -> None:
        now = clock.now()
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published_at=now))
        if now.timestamp() - self._last_cleanup > 300:
            conn.execute(
                delete(outbox).where(and_(outbox.c.producer == self.producer,
                                          outbox.c.published_at < now - self.retention))
            )
            self._last_cleanup = now.timestamp()
        conn.commit()
