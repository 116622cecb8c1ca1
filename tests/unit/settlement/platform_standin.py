"""A stand-in for the national client that talks to the simulator's platform logic in-process (no HTTP).

What the real client does that matters to a chain is kept: catalog validation and normalisation of inputs (an
invalid input raises EnvelopeValidationError and nothing is sent), envelopes with a unique msgid, infcode -1 as
BusinessRejection. Faults are scripted per infno: ``"lose"`` (the platform does the work, the answer is lost),
``"reset"`` (nothing done, outcome unknown), ``"transport"`` (nothing sent), ``"refuse"`` (a business error), ``"crash"`` (the platform does the work and the
worker dies mid-call: the task is cancelled, the journal row stays "sent"). :meth:`SimClient.meanwhile` plays what
another party does while a call is on its way (before the platform handles it).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from yibao.core import clock
from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome
from yibao.envelope.national.envelope import Sender, build_header
from yibao.envelope.settings import PlatformSettings
from yibao.simulator import Simulator, SimulatorSettings

__all__ = ["Answer", "SimClient", "make_simulator"]


def make_simulator(**kw: Any) -> Simulator:
    return Simulator(SimulatorSettings(**{"port": 0, "admin_port": 0, "population_size": 30,
                                          "require_sign_in": False, **kw}))


class Answer:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class SimClient:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        settings = PlatformSettings()
        self.sender = Sender.from_settings(settings)
        self.fixmedins_code = settings.fixmedins_code
        self.catalog = Catalog.load(None)
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.hooks: dict[str, list[Callable[[], Awaitable[Any] | None]]] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []  # (infno, msgid) of every call that reached the platform
        self._serial = 0
        self._base = _dt.datetime(2026, 1, 1, 8, 0, 0)

    def fail(self, infno: str, *kinds: str) -> None:
        """The next calls of ``infno`` meet these faults, in order."""
        self.faults[infno].extend(kinds)

    def meanwhile(self, infno: str, *actions: Callable[[], Awaitable[Any] | None]) -> None:
        """While the next call of ``infno`` is on its way, before the platform handles it: ``actions`` run (e.g.
        registration's 2402 and its fact), once, in order."""
        self.hooks[infno].extend(actions)

    def infnos(self) -> list[str]:
        return [infno for infno, _ in self.calls]

    async def allocate_msgid(self) -> str:
        self._serial += 1
        when = self._base + _dt.timedelta(seconds=self._serial // 10000)
        return f"{self.fixmedins_code}{when:%Y%m%d%H%M%S}{self._serial % 10000:04d}"

    async def call(self, infno: str, input: dict[str, Any], *, visit_key: str | None = None,
                   msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> Answer:
        payload = self.catalog.prepare_input(infno, input) if self.catalog.has_schema(infno) else dict(input)
        msgid = msgid or await self.allocate_msgid()
        fault = self.faults[infno].pop(0) if self.faults.get(infno) else None
        hooks, self.hooks[infno] = list(self.hooks.get(infno) or ()), []
        for hook in hooks:
            done = hook()
            if done is not None:
                await done
        if fault == "transport":
            raise TransportError(infno, "connection refused (scripted)")
        if fault == "reset":
            raise UnknownOutcome(infno, msgid, "connection reset (scripted)")
        envelope = {**build_header(self.sender, infno, msgid, insuplc_admdvs=insuplc_admdvs or "",
                                   inf_time=clock.now()), "input": payload}
        self.calls.append((infno, msgid))
        outcome = self.sim.national.process(envelope, forced_error="scripted refusal" if fault == "refuse" else None)
        if fault == "lose":
            raise UnknownOutcome(infno, msgid, "read timeout (scripted)")
        if fault == "crash":  # the platform did it; the worker died before hearing back
            raise asyncio.CancelledError()
        response = outcome.response
        if str(response.get("infcode")) != "0":
            raise BusinessRejection(infno, str(response.get("err_msg") or ""), msgid=msgid)
        return Answer(dict(response.get("output") or {}))

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, *, insuplc_admdvs: str | None = None,
                      visit_key: str | None = None, msgid: str | None = None, call_log: Any = None) -> Answer:
        return await self.call("2601", {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}},
                               visit_key=visit_key, msgid=msgid, insuplc_admdvs=insuplc_admdvs)
