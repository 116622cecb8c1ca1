"""What the simulator posts to the hospital on its own (mobile-pay callbacks, WeChat notifications, the prescription
centre's 7102/7103): background tasks on the running loop, one HTTP client opened on first use, and the two ways
to end — :meth:`Deliveries.drain` (wait for what is under way) and :meth:`Deliveries.close` (cancel it)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx

__all__ = ["Deliveries"]


class Deliveries:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def _start(self, delivery: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        return self._client

    async def drain(self, timeout: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
