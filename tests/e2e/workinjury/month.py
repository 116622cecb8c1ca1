"""Imported as ``e2e.workinjury.month``. The work-injury path as real processes — the simulator (``yibao sim``) and
``yibao worker workinjury-sync`` on the session's real Kafka and a fresh PostgreSQL database — and a HIS that plays
a generated month for a few cross-province patients (:mod:`yibao.fakedata.workinjury`) through the topics:

filings downloaded (GYD001) and audited, admissions, fee lines (one stay over 500 lines: two batches), discharge
settlements, one deduction, one settlement revoked and settled again, the month-end. Then what a hospital checks:
every request answered once and on time, the platform's state equal to the hospital's, every download confirmed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from support.stack import new_database
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import chain_calls
from yibao.envelope.crypto import generate_keypair
from yibao.fakedata.workinjury import WorkInjuryMonth, generate_month
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge
from yibao.workinjury_sync.demo import HisPlayer, Ledger, bridge_env
from yibao.workinjury_sync.models import WorkInjuryResult

__all__ = ["WiRig", "Ledger", "bridge_on_stack", "SERVICE", "ORG"]

SERVICE = "workinjury-sync"
ORG = "H44010600001"
#: short waits and many attempts, so a fault costs a fraction of a second instead of the production minutes
FAST = {
    "YIBAO_SIM_HOLD_S": "1",
    "YIBAO_WORKINJURY_PLATFORM_RETRY_BACKOFF_S": "0.05",
    "YIBAO_WORKINJURY_SYNC_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_WORKINJURY_SYNC_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_WORKINJURY_SYNC_CHAIN_MAX_ATTEMPTS": "40",
    "YIBAO_WORKINJURY_SYNC_CHAIN_LEASE_S": "10",
    "YIBAO_WORKINJURY_SYNC_POLL_INTERVAL_S": "15",
    "YIBAO_WORKINJURY_SYNC_WATCH_INTERVAL_S": "1",
}


class WiRig:
    """A started bridge and the HIS that plays months on it."""

    def __init__(self, bridge: LocalBridge, database_url: str) -> None:
        self.bridge = bridge
        self.database_url = database_url
        self._engine: Engine | None = None
        self._seeds = iter(range(11, 400, 7))
        self._months = iter(range(0, 60))

    # --- the wire ------------------------------------------------------------------------------------------------

    @property
    def worker(self) -> Any:
        return self.bridge.workers[SERVICE]

    def month(self, *, patients: int = 3, lines: tuple[int, int] = (40, 120)) -> WorkInjuryMonth:
        seed, k = next(self._seeds), next(self._months)
        first = _dt.date(2026 + (10 + k) // 12, (10 + k) % 12 + 1, 1)  # a month of its own: one month-end each
        return generate_month(seed, month=first, patients=patients, lines=lines, org_code=ORG)

    async def results(self) -> list[WorkInjuryResult]:
        return await self.player.results()

    def poll(self, *infnos: str) -> None:
        for infno in infnos:
            reply = httpx.post(f"{self.worker.url}/workinjury/downloads/{infno}/poll", timeout=10)
            assert reply.status_code == 202, reply.text

    def admin(self, path: str, **kw: Any) -> Any:
        return self.bridge.admin(path, **kw)

    def platform(self) -> dict[str, Any]:
        return self.admin("workinjury")

    # --- the database ------------------------------------------------------------------------------------------

    @property
    def db(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.database_url)
        return self._engine

    def calls(self, infno: str) -> list[tuple[str, str, str, str | None]]:
        """(case, purpose, status, resolution) of every journalled call of ``infno``."""
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.visit_key, chain_calls.c.purpose, chain_calls.c.status,
                                       chain_calls.c.resolution)
                                .where(chain_calls.c.service == self.bridge.prefix + SERVICE,
                                       chain_calls.c.infno == infno).order_by(chain_calls.c.id)).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def wait_in_flight(self, infno: str, *, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = [case for case, purpose, status, _ in self.calls(infno) if purpose == "step" and status == "sent"]
            if sent:
                return sent[0]
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {infno} in flight within {timeout:.0f}s")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # --- HIS plays the month (the demo's player: yibao.workinjury_sync.demo) ------------------------------------

    @property
    def player(self) -> HisPlayer:
        return HisPlayer(self.bridge.info.kafka_bootstrap, self.bridge.prefix, self.bridge.admin_url,
                         self.worker.url, org_code=ORG)

    async def play(self, m: WorkInjuryMonth, *, during: Callable[[], Any] | None = None) -> Ledger:
        try:
            return await self.player.play(m, during=during)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.worker.log_tail(30)}") from None

    async def every_download_confirmed(self, *, timeout: float = 180) -> dict[str, Any]:
        try:
            return await self.player.every_download_confirmed(timeout=timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.worker.log_tail(30)}") from None


def bridge_on_stack(stack: Stack, tmp: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[WiRig]:
    """A module's bridge: a fresh database, a topic prefix of its own, the simulator and the workinjury-sync worker
    with one key pair each side. Stopped (its logs kept in ``tmp``) afterwards."""
    url = new_database(stack, tmp)
    upgrade(url)
    prefix = f"wi{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    bridge = LocalBridge(info, tmp, prefix=prefix, services=(SERVICE,), env={**FAST, **(extra_env or {})})
    bridge.extra_env.update(bridge_env(bridge.sim_url, hospital=generate_keypair(), platform=generate_keypair()))
    bridge.start()
    rig = WiRig(bridge, url)
    try:
        yield rig
    finally:
        rig.close()
        bridge.stop()
