"""Imported as ``unit.upload_scheduler.standin``. The platforms in-process: national transactions through the
simulator's platform logic (the settlement tests' SimClient: catalog validation, envelopes, scripted faults), the
other targets through the simulator's target logic (yibao.simulator.targets.handle), with the same faults."""

from __future__ import annotations

import asyncio
from typing import Any

from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome
from yibao.simulator.targets import Refused, handle, targets_of
from yibao.upload_scheduler.targets.catalog import load_targets, target_of

from unit.settlement.platform_standin import Answer, SimClient, make_simulator

__all__ = ["SimRouter", "make_simulator"]


class SimRouter(SimClient):
    """SimClient for national infnos; the simulator's target platforms for ``ZF.*``, ``YMT.*``, ``DRG.*`` …"""

    def __init__(self, sim: Any, catalog: Any) -> None:
        super().__init__(sim)
        self.catalog = catalog
        self.targets = load_targets()

    async def download(self, file_qury_no: str, filename: str, **kw: Any) -> bytes:
        """9102 through the simulator: the file's bytes (a refused download raises as the client would)."""
        from yibao.core import clock
        from yibao.envelope.national.envelope import build_header

        fault = self.faults["9102"].pop(0) if self.faults.get("9102") else None
        if fault == "transport":
            raise TransportError("9102", "connection refused (scripted)")
        msgid = await self.allocate_msgid()
        envelope = {**build_header(self.sender, "9102", msgid, insuplc_admdvs="", inf_time=clock.now()),
                    "input": {"fsDownloadIn": {"file_qury_no": file_qury_no, "filename": filename,
                                               "fixmedins_code": "H44010600001"}}}
        self.calls.append(("9102", msgid))
        outcome = self.sim.national.process(envelope)
        if outcome.file is None:
            raise BusinessRejection("9102", str(outcome.response.get("err_msg") or ""), msgid=msgid)
        return outcome.file[1]

    async def call(self, infno: str, input: dict[str, Any], **kw: Any) -> Answer:  # type: ignore[override]
        target = target_of(infno)
        if target == "national":
            return await super().call(infno, input, **kw)
        msgid = kw.get("msgid") or await self.allocate_msgid()
        data = self.catalog.prepare_input(infno, input)
        fault = self.faults[infno].pop(0) if self.faults.get(infno) else None
        if fault == "transport":
            raise TransportError(infno, "connection refused (scripted)")
        if fault == "reset":
            raise UnknownOutcome(infno, msgid, "connection reset (scripted)")
        self.calls.append((infno, msgid))
        path = self.targets[target].transactions[infno].path
        try:
            if fault == "refuse":
                raise Refused("scripted refusal")
            output = handle(targets_of(self.sim.ledger), target, path, data, msgid)
        except Refused as exc:
            raise BusinessRejection(infno, exc.message, infcode=str(exc.code), msgid=msgid) from None
        if fault == "lose":
            raise UnknownOutcome(infno, msgid, "read timeout (scripted)")
        if fault == "crash":
            raise asyncio.CancelledError()
        return Answer(dict(output))
