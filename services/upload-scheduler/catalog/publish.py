"""Publishing the catalogs in force on ``yibao.catalog.v1`` (compacted; key ``<infno>:<code>``): after each update
applied, its rows (read from the database in batches, in code order) and then a version marker (key
``<infno>:__version__``). Consumers read the topic from the start and hold one current catalog.

Publication is at least once — a worker stopped mid-way publishes the update again from its first row — which a
compacted topic of whole rows absorbs. It goes straight to the producer, not through the outbox: an update of half
a million rows is not half a million outbox rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from yibao.core import clock
from yibao.upload_scheduler import metrics
from yibao.upload_scheduler.catalog import store
from yibao.upload_scheduler.models import CatalogRow, CatalogVersion

__all__ = ["CatalogPublisher"]

log = logging.getLogger(__name__)
Produce = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]


class CatalogPublisher:
    def __init__(self, *, db: Callable[[Callable[..., Any]], Awaitable[Any]], produce: Produce,
                 batch: int = 2000) -> None:
        self.db = db
        self.produce = produce
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the database: the next round publishes from the start again
                log.warning("catalog publication paused", extra={"fields": {"error": type(exc).__name__}})
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=30.0)
            except asyncio.TimeoutError:
                pass

    async def publish_pending(self) -> int:
        published = 0
        for version_id, infno, ver, prev, rows in await self.db(store.unpublished):
            after: str | None = None
            while True:
                chunk = await self.db(lambda c: store.rows_of_version(c, infno, version_id, after=after,
                                                                     limit=self.batch))
                if not chunk:
                    break
                messages = [(f"{infno}:{code}".encode(), CatalogRow(infno=infno, code=code, ver=v, vali_flag=flag,
                                                                    row=row).to_json())
                            for code, v, flag, row in chunk]
                await self.produce(messages)
                metrics.CATALOG_PUBLISHED_ROWS.labels(infno).inc(len(messages))
                published += len(messages)
                after = chunk[-1][0]
                if len(chunk) < self.batch:
                    break
            marker = CatalogVersion(infno=infno, ver=ver, prev_ver=prev, rows=rows, applied_at=clock.now())
            await self.produce([(f"{infno}:__version__".encode(), marker.to_json())])
            await self.db(lambda c: store.mark_published(c, version_id))
        return published
