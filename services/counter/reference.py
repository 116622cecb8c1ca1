"""Where the counter reads 1901 字典 and 1201 医药机构 answers: a small port, so the answers can come from what the
upload scheduler stores (its catalog sync keeps 1901/1201 in the database and on ``yibao.catalog.v1``) once that
is there, and from the platform meanwhile.

* :class:`ReferenceSource` — the port: the 1901 / 1201 output for a request's input, or None when the source has
  nothing for it (the next source is asked);
* :class:`PlatformReference` — the platform itself (the national client), the source of last resort;
* :class:`CachedReference` — keeps each answer for the time the spec lets a client keep it (dictionaries and the
  institution record change rarely: 24 h by default, settings ``dictionary_cache_s`` / ``institution_cache_s``);
* :class:`ChainedReference` — asks its sources in order (the stored catalog first, the platform when it has none).

The seam for the stored catalog: an adapter with ``async def answer(infno, input) -> dict | None`` that reads the
upload scheduler's ``catalog_items`` rows of infno 1901 (type from ``input.data.type``) or 1201 and returns them
in the transaction's output shape (``{"list": [...]}`` / ``{"medinsinfo": [...]}``); it goes first in the chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

__all__ = ["ReferenceSource", "PlatformReference", "CachedReference", "ChainedReference"]


class ReferenceSource(Protocol):
    async def answer(self, infno: str, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
        """The output of 1901 / 1201 for ``input``; None when this source has nothing for it."""
        ...


class PlatformReference:
    """Asks the platform (``call(infno, input) -> output``, the national client's call with the query's budget)."""

    def __init__(self, call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        self._call = call

    async def answer(self, infno: str, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
        return await self._call(infno, input)


class CachedReference:
    """Keeps a source's answers for ``ttl_s[infno]`` seconds (0: not kept), per input."""

    def __init__(self, source: ReferenceSource, ttl_s: dict[str, float], *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 2048) -> None:
        self.source, self.ttl_s, self.clock, self.max_entries = source, dict(ttl_s), clock, max_entries
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self.hits = 0

    def cached(self, infno: str, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
        key = _key(infno, input)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            del self._entries[key]
            return None
        self.hits += 1
        return entry[1]

    async def answer(self, infno: str, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
        hit = self.cached(infno, input)
        if hit is not None:
            return hit
        output = await self.source.answer(infno, input)
        ttl = self.ttl_s.get(infno, 0.0)
        if output is not None and ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[_key(infno, input)] = (self.clock() + ttl, output)
        return output


class ChainedReference:
    def __init__(self, sources: Sequence[ReferenceSource]) -> None:
        self.sources = list(sources)

    async def answer(self, infno: str, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
        for source in self.sources:
            output = await source.answer(infno, input)
            if output is not None:
                return output
        return None


def _key(infno: str, input: dict[str, Any]) -> str:
    return infno + ":" + json.dumps(input, sort_keys=True, ensure_ascii=False, default=str)
