"""What a unit-test harness of a chain service needs to drive the real :class:`~yibao.chains.engine.ChainEngine` on a
test database: the engine's units of work run in a thread (as the worker runs them), and messages absorbed the way
the worker's consumer absorbs them (one unit of work, the after-commit hooks run once it committed).

A harness mixes :class:`EngineUnits` in and sets ``self.db`` and ``self.engine``; it passes ``self._run_db`` to the
engine as its ``db``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

__all__ = ["EngineUnits"]

T = TypeVar("T")


class EngineUnits:
    db: Engine
    engine: Any  #: a ChainEngine (or a service's subclass of it)

    def _unit(self, fn: Callable[[Connection], T]) -> T:
        with self.db.begin() as conn:
            return fn(conn)

    async def _run_db(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.to_thread(self._unit, fn)

    def absorb_all(self, absorptions: Iterable[Any]) -> list[bool]:
        """Absorb in one unit of work (a burst the consumer takes as one batch); whether each was new."""
        flags, after = self._unit(lambda conn: self.engine.absorb_in(conn, list(absorptions)))
        for fn in after:
            fn()
        return list(flags)

    def absorb(self, absorption: Any) -> bool:
        return self.absorb_all([absorption])[0]
