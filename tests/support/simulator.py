"""The platform simulator on an event loop of its own, in a thread: a module-scoped worker process can call it
across the module's tests, whichever event loop each test runs on."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from yibao.simulator import Simulator, SimulatorSettings

__all__ = ["SimulatorThread"]


class SimulatorThread:
    """``with SimulatorThread(settings) as sim:`` — started on enter, stopped on exit."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simulator", daemon=True)
        self.sim = Simulator(settings)

    def __enter__(self) -> Simulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(15)
        return self.sim

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
