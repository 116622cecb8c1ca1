"""A consumer takes messages in batches of what has already arrived (:func:`yibao.core.runtime.arrived_batches`): a
message alone goes on at once — nothing waits for more, no timer runs while the worker is idle — a burst queued
behind it goes in one batch up to the limit, and no message is acknowledged before its batch was handled.

The stream here stands in for faust's (its manual-ack clone, its channel's queue, its events): the batching is the
logic under test; the chain services' e2e suites run it on the real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from yibao.core.runtime import arrived_batches


class Stream:
    """faust's stream as arrived_batches uses it: ``noack()``, ``channel.queue``, ``events()``, ``ack(event)``."""

    def __init__(self) -> None:
        self.channel = self
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.acked: list[Any] = []

    def noack(self) -> "Stream":
        return self

    async def events(self):  # type: ignore[no-untyped-def]
        while True:
            yield await self.queue.get()

    async def ack(self, event: Any) -> bool:
        self.acked.append(event)
        return True


async def _next(batches: Any, timeout: float = 5.0) -> list[Any]:
    return await asyncio.wait_for(batches.__anext__(), timeout)


async def test_a_message_alone_is_handed_on_at_once_without_waiting_for_more() -> None:
    stream = Stream()
    batches = arrived_batches(stream, 200)
    pending = asyncio.ensure_future(_next(batches))
    await asyncio.sleep(0)
    stream.queue.put_nowait("m1")
    assert await pending == ["m1"]  # handed on though nothing else came: no window to wait out
    await batches.aclose()


async def test_messages_already_queued_go_in_one_batch_up_to_the_limit() -> None:
    stream = Stream()
    for i in range(5):
        stream.queue.put_nowait(f"m{i}")
    batches = arrived_batches(stream, 3)
    assert await _next(batches) == ["m0", "m1", "m2"]
    assert await _next(batches) == ["m3", "m4"]
    await batches.aclose()


async def test_a_message_is_acknowledged_only_after_its_batch_was_handled() -> None:
    stream = Stream()
    stream.queue.put_nowait("m1")
    stream.queue.put_nowait("m2")
    batches = arrived_batches(stream, 200)
    assert await _next(batches) == ["m1", "m2"]
    assert stream.acked == []  # being handled: not acknowledged yet
    stream.queue.put_nowait("m3")
    assert await _next(batches) == ["m3"]
    assert stream.acked == ["m1", "m2"]
    await batches.aclose()
    assert stream.acked == ["m1", "m2"]  # m3's handling never finished: it is read again after a restart


async def test_a_batch_whose_handling_failed_is_not_acknowledged() -> None:
    stream = Stream()
    stream.queue.put_nowait("m1")

    async def consume() -> None:
        async for _ in arrived_batches(stream, 200):
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await consume()
    assert stream.acked == []
