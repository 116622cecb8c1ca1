"""Imported as ``unit.workinjury_sync.harness``. The work-injury chain on SQLite, driven by the real engine (the
worker's :class:`~yibao.workinjury_sync.engine.WorkInjuryEngine`) through the real client (catalog, SM4 + SM2) against
the simulator's work-injury platform in-process (an httpx transport, no sockets), with faults scripted per call:

* ``"lose"`` — the platform does the work, the answer is lost (a read timeout);
* ``"reset"`` — nothing done, the connection drops after sending (outcome unknown);
* ``"refuse"`` — the simulated business error (the platform says no, nothing done).

HIS is played with :mod:`yibao.fakedata.workinjury`; what the bridge told HIS is read back from the outbox."""

from __future__ import annotations

import datetime as _dt
import json
from collections import defaultdict
from typing import Any

import httpx
from sqlalchemy import Engine, select

from support.chain_units import EngineUnits

from yibao.chains.engine import EngineSettings
from yibao.chains.model import Effects
from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits, outbox
from yibao.envelope.catalog import Catalog
from yibao.envelope.crypto import generate_keypair
from yibao.envelope.workinjury import WorkInjuryClient, WorkInjuryPlatformSettings
from yibao.fakedata.workinjury import WorkInjuryMonth, generate_month
from yibao.simulator import Simulator, SimulatorSettings
from yibao.simulator.workinjury_http import SIMULATED_BUSINESS_ERROR
from yibao.workinjury_sync.absorb import make_router, stream_starts
from yibao.workinjury_sync.chain import WorkInjuryChain
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.engine import WorkInjuryEngine
from yibao.workinjury_sync.models import DownloadedRecord, WorkInjuryResult
from yibao.workinjury_sync.settings import WorkInjurySyncSettings
from yibao.workinjury_sync.state import WorkInjuryState

__all__ = ["Harness", "InProcess", "KEYS"]

ORG = "H44010600001"
KEYS = generate_keypair()


class InProcess(httpx.AsyncBaseTransport):
    """The simulator's work-injury platform behind an httpx transport, with scripted faults per transaction."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        infno = request.url.path.rsplit("/", 1)[-1]
        envelope = json.loads(await request.aread())
        fault = self.faults[infno].pop(0) if self.faults[infno] else None
        self.sent.append(infno)
        if fault == "reset":
            raise httpx.ReadError("connection reset after sending")
        reply, _, _ = self.sim.workinjury.handle(envelope, infno,
                                                 forced_error=SIMULATED_BUSINESS_ERROR if fault == "refuse" else None)
        if fault == "lose":
            raise httpx.ReadTimeout("the answer was lost")
        return httpx.Response(200, content=json.dumps(reply).encode())


class Harness(EngineUnits):
    def __init__(self, db: Engine, *, engine: dict[str, Any] | None = None, seed: int = 7, **settings: Any) -> None:
        self.db = db
        self.sim = Simulator(SimulatorSettings(port=0, admin_port=0, population_size=5,
                                               wi_hospital_public_key_hex=KEYS[1]))
        self.platform = WorkInjuryPlatformSettings(private_key=KEYS[0],
                                                   platform_public_key=self.sim.platform_public_key_hex,
                                                   retry_backoff_s=0.0)
        catalog = Catalog.load(platform="workinjury")
        self.settings = WorkInjurySyncSettings(**{"poll_interval_s": 1800.0, **settings})
        self.config = ChainConfig.from_settings(self.settings, self.platform, catalog)
        self.chain = WorkInjuryChain(self.config)
        self.transport = InProcess(self.sim)
        self.client = WorkInjuryClient(self.platform, engine=db, service="workinjury-sync", catalog=catalog,
                                       transport=self.transport)
        self.engine = WorkInjuryEngine(self.chain, db=self._run_db, client=self.client, catalog=catalog,
                                       settings=EngineSettings(**{"retry_backoff_s": 0.0, "max_attempts": 5,
                                                                  **(engine or {})}))
        self.route = make_router(ORG)
        self.month = generate_month(seed, month=_dt.date(2026, 11, 1), patients=3, lines=(20, 40))

    # --- messages in (absorb, absorb_all: EngineUnits) ---------------------------------------------------------

    def his(self, request: dict[str, Any]) -> bool:
        return self.absorb(self.route("workinjury_requests", json.dumps(request).encode()))

    def his_burst(self, *requests: dict[str, Any]) -> list[bool]:
        """Several requests absorbed in one unit of work (a burst the consumer takes as one batch)."""
        return self.absorb_all(self.route("workinjury_requests", json.dumps(r).encode()) for r in requests)

    def start_streams(self, *infnos: str) -> None:
        for a in stream_starts(infnos or self.config.streams):
            self.absorb(a)

    def feed_back(self) -> int:
        """Route the downloaded records back in, as the worker's own agent does (filings, visits, revocations)."""
        n = 0
        for key, value in self._outbox("DownloadedRecord"):
            absorption = self.route("workinjury_visits", json.dumps(value).encode())
            if absorption is not None and self.absorb(absorption):
                n += 1
        return n

    async def drain(self, timeout: float = 30) -> None:
        await self.engine.drain(timeout=timeout)

    # --- what came out ------------------------------------------------------------------------------------------

    def _outbox(self, type_name: str) -> list[tuple[str, dict[str, Any]]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.msg_key, outbox.c.payload, outbox.c.headers)
                                .order_by(outbox.c.id)).all()
        return [(key, json.loads(payload)) for key, payload, headers in rows
                if json.loads(headers or "{}").get("type") == type_name]

    def results(self, key: str | None = None, kind: str | None = None,
                request: str | None = None) -> list[WorkInjuryResult]:
        found = [WorkInjuryResult.model_validate(v) for _, v in self._outbox("WorkInjuryResult")]
        return [r for r in found if (key is None or r.case_key == key) and (kind is None or r.kind == kind)
                and (request is None or r.request == request)]

    def records(self, stream: str | None = None) -> list[DownloadedRecord]:
        found = [DownloadedRecord.model_validate(v) for _, v in self._outbox("DownloadedRecord")]
        return [r for r in found if stream is None or r.stream == stream]

    def dead_letters(self) -> list[dict[str, Any]]:
        return [v for _, v in self._outbox("_Letter")]

    def state(self, key: str) -> WorkInjuryState:
        with self.db.connect() as conn:
            row = self.engine.store.lock(conn, key)
            assert row is not None, key
            return self.chain.store.load(conn, key, row.kind, row.state)

    def status(self, key: str) -> str:
        with self.db.connect() as conn:
            return str(conn.execute(select(chain_visits.c.status).where(chain_visits.c.visit_key == key)).scalar())

    def journal(self, key: str) -> list[tuple[str, str, str, str | None]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.infno, chain_calls.c.purpose, chain_calls.c.status,
                                       chain_calls.c.resolution)
                                .where(chain_calls.c.visit_key == key).order_by(chain_calls.c.id))
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def now(self) -> _dt.datetime:
        return clock.now()

    # --- helpers that play HIS and the platform's other side -----------------------------------------------------

    def offer_applications(self) -> list[str]:
        return self.sim.workinjury.offer("GYD001", self.month.applications())

    def approved_filing(self, p: Any) -> str:
        """A filing for the patient, approved on the platform already (skips the audit)."""
        filing_no = f"BA{p.apply_no}"
        self.sim.workinjury.add_filing({
            "filing_no": filing_no, "psn_no": p.person.psn_no, "certno": p.certno, "psn_name": p.person.psn_name,
            "insu_admdvs": p.insu_admdvs, "mdtrt_admdvs": "440100", "org_type": "1",
            "begin_date": "2026-11-01", "end_date": "2027-01-31"})
        return filing_no
