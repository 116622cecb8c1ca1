"""Imported as ``unit.mobilepay.standin``: the mobile-pay client's stand-in that talks to the simulator's mobile
platform in-process (no HTTP, no crypto): what matters to the chain is kept — the typed input checks (nothing sent
when invalid), orgBizSer filled with the msgid, refusals as BusinessRejection. Faults are scripted per infno:
``lose`` (the platform does it, the answer is lost), ``reset`` (nothing done, outcome unknown), ``transport``
(nothing sent), ``crash`` (the platform does it and the worker dies mid-call), ``expire`` (6203: EXP)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from typing import Any

from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome
from yibao.envelope.mobilepay.client import NoReversal
from yibao.envelope.mobilepay.models import check_input
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.errors import MobilePayRefusal

__all__ = ["Reply", "SimMobileClient", "make_simulator"]


def make_simulator(**kw: Any) -> Simulator:
    return Simulator(SimulatorSettings(**{"port": 0, "admin_port": 0, "population_size": 30, **kw}))


class Reply:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class SimMobileClient:
    platform = "mobilepay"

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []
        self._n = itertools.count(1)

    def fail(self, infno: str, *kinds: str) -> None:
        self.faults[infno].extend(kinds)

    def infnos(self) -> list[str]:
        return [infno for infno, _ in self.calls]

    async def allocate_msgid(self) -> str:
        return f"MP20260101080000{next(self._n):010d}"

    async def call(self, infno: str, input: dict[str, Any], *, visit_key: str | None = None, msgid: str | None = None,
                   insuplc_admdvs: str | None = None, read_timeout_s: float | None = None, call_log: Any = None
                   ) -> Reply:
        msgid = msgid or await self.allocate_msgid()
        if infno.startswith("88"):
            return self._wechat(infno, dict(input["data"]), msgid)
        raw = dict(input["data"])
        if infno == "6202" and not raw.get("orgBizSer"):
            raw["orgBizSer"] = msgid
        data = check_input(infno, raw)
        fault = self.faults[infno].pop(0) if self.faults.get(infno) else None
        if fault == "transport":
            raise TransportError(infno, "connection refused (scripted)")
        if fault == "reset":
            raise UnknownOutcome(infno, msgid, "connection reset (scripted)")
        self.calls.append((infno, msgid))
        try:
            output = self.sim.mobile.handle(infno, data, version=str(input.get("version") or "2.0"),
                                            expire=fault == "expire")
        except MobilePayRefusal as exc:
            raise BusinessRejection(infno, str(exc), msgid=msgid) from None
        if fault == "lose":
            raise UnknownOutcome(infno, msgid, "read timeout (scripted)")
        if fault == "crash":
            raise asyncio.CancelledError()
        return Reply(output)

    def _wechat(self, infno: str, data: dict[str, Any], msgid: str) -> Reply:
        """WeChat Pay's operations, straight to the simulator's WeChat side (its signatures are checked over HTTP
        elsewhere)."""
        fault = self.faults[infno].pop(0) if self.faults.get(infno) else None
        if fault == "reset":
            raise UnknownOutcome(infno, msgid, "connection reset (scripted)")
        self.calls.append((infno, msgid))
        method, path, body = {
            "8802": ("POST", "/v3/med-ins/orders", data),
            "8803": ("GET", f"/v3/med-ins/orders/out-trade-no/{data.get('out_trade_no')}", None),
            "8804": ("POST", "/v3/refund/domestic/refunds", data),
            "8805": ("GET", f"/v3/refund/domestic/refunds/{data.get('out_refund_no')}", None),
        }[infno]
        status, answer = self.sim.wechat.handle(method, path, {}, json.dumps(body, default=str) if body else "")
        if fault == "lose":
            raise UnknownOutcome(infno, msgid, "read timeout (scripted)")
        if status != 200:
            raise BusinessRejection(infno, f"{answer.get('code')}: {answer.get('message')}", msgid=msgid)
        return Reply(answer)

    async def reverse(self, *args: Any, **kwargs: Any) -> Reply:
        raise NoReversal("mobile pay has no 2601")
