"""Imported as ``unit.upload_scheduler.harness``. The upload chain on SQLite driven by the real ChainEngine against
the in-process simulator, with helpers that play HIS (UploadSource messages, settlements on his_results) and read
what the scheduler holds (upload_records) and said (the outbox)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
from types import SimpleNamespace
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, update

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits, outbox, upload_records
from yibao.core.results import HisResult, SettlementSplit, stable_id
from yibao.envelope.catalog import Catalog

from yibao.upload_scheduler.absorb import absorb_his_result, absorb_source
from yibao.upload_scheduler.chain import UploadChain
from yibao.upload_scheduler.config import UploadConfig, lane_key
from yibao.upload_scheduler.models import UploadSource
from yibao.upload_scheduler.settings import UploadSchedulerSettings
from yibao.upload_scheduler.store import requeue
from yibao.upload_scheduler.targets.catalog import build_catalog

from unit.upload_scheduler.standin import SimRouter

__all__ = ["Harness", "NOW", "sample"]

_ids = itertools.count(1)
#: events happened a while ago: daily lanes are due by now
NOW = clock.now()
PAST = NOW - _dt.timedelta(days=2)


def sample(sim: Any, *, days: int = 1, bad_day: int | None = None, start: _dt.date | None = None) -> Any:
    """A generated stretch of uploads whose catalogue codes the simulator knows (events before NOW: all due)."""
    from yibao.fakedata.uploads import generate_uploads
    from yibao.simulator.uploads import valid_codes

    first = start or (NOW - _dt.timedelta(days=days + 2)).date()
    return generate_uploads(11, first, days=days, codes=valid_codes(sim.ledger), bad_day=bad_day)


class Harness:
    def __init__(self, db: Engine, sim: Any, *, targets: tuple[str, ...] = ("national",), **settings: Any) -> None:
        self.db = db
        self.sim = sim
        self.settings = UploadSchedulerSettings(**{"targets_enabled": list(targets), "zifei_poll_s": 0.01,
                                                  "requirement_poll_s": 5.0, **settings})
        self.catalog = build_catalog(Catalog.load(None))
        self.config = UploadConfig.from_settings(self.settings, fixmedins_code="H44010600001")
        self.chain = UploadChain(self.config, catalog=self.catalog)
        self.client = SimRouter(sim, self.catalog)
        self.engine = ChainEngine(self.chain, db=self._run_db, client=self.client, catalog=self.catalog,
                                  settings=EngineSettings(retry_backoff_s=0.0, max_attempts=5))

    async def _run_db(self, fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with self.db.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(unit)

    # --- HIS ------------------------------------------------------------------------------------------------------
    def absorb(self, absorption: Any) -> bool:
        with self.db.begin() as conn:
            flags, after = self.engine.absorb_in(conn, [absorption])
        for fn in after:
            fn()
        return flags[0]

    def source(self, kind: str, record: dict[str, Any], *, key: str | None = None, occurred: _dt.datetime = PAST,
               op: str = "upsert", source_id: str | None = None, his_visit_id: str | None = None,
               insuplc: str | None = "440100", deadline: _dt.datetime | None = None) -> UploadSource:
        src = UploadSource(source_id=source_id or f"S{next(_ids):06d}", kind=kind, op=op, record_key=key,
                           his_visit_id=his_visit_id, occurred_at=occurred, record=record,  # type: ignore[arg-type]
                           insuplc_admdvs=insuplc, deadline_at=deadline)
        self.absorb(absorb_source(self.config, src.to_json()))
        return src

    def item(self, item: Any, *, record: dict[str, Any] | None = None, source_id: str | None = None) -> UploadSource:
        """Send a generated :class:`~yibao.fakedata.uploads.UploadItem` (``record``: its content replaced)."""
        return self.source(item.kind, record if record is not None else item.record, key=item.record_key,
                           occurred=item.occurred_at, op=item.op, source_id=source_id or item.source_id,
                           his_visit_id=item.his_visit_id, insuplc=item.insuplc_admdvs)

    def settled(self, setl_id: str, *, kind: str = "settled", visit: str = "V1", when: _dt.datetime = PAST) -> None:
        split = SettlementSplit(medfee_sumamt=Decimal("100.00"), fund_pay_sumamt=Decimal("60.00"),
                                psn_part_amt=Decimal("40.00"), acct_pay=Decimal("0.00"), psn_cash_pay=Decimal("40.00"))
        result = HisResult(message_id=stable_id("test", setl_id, kind, next(_ids)), his_visit_id=visit,
                           visit_kind="inpatient", kind=kind, service="settlement",  # type: ignore[arg-type]
                           setl_id=setl_id if kind == "settled" else f"C{setl_id}",
                           orig_setl_id=setl_id if kind == "refunded" else None, setl_time=when, split=split)
        absorbed = absorb_his_result(self.config, result.to_json())
        assert absorbed is not None
        self.absorb(absorbed)

    async def drain(self, timeout: float = 30) -> None:
        await self.engine.drain(timeout=timeout)

    async def run(self, timeout: float = 60, rounds: int = 200) -> None:
        """Drain, then bring forward the visits that wait less than a second (a platform task's next poll: the
        harness polls every 10 ms) until nothing is due soon."""
        for _ in range(rounds):
            await self.engine.drain(timeout=timeout)
            soon = clock.now() + _dt.timedelta(seconds=1)
            with self.db.begin() as conn:
                moved = conn.execute(update(chain_visits).where(
                    chain_visits.c.service == self.chain.service, chain_visits.c.status == "waiting",
                    chain_visits.c.next_attempt_at <= soon).values(next_attempt_at=clock.now())).rowcount
            if not moved:
                return
        raise AssertionError("lanes still waiting after the rounds")

    async def time_passes(self) -> None:
        """Every record's and lane's time has come (what the daily hour would do): due now, then run."""
        with self.db.begin() as conn:
            conn.execute(update(upload_records).where(upload_records.c.status == "pending")
                         .values(due_at=clock.now()))
            conn.execute(update(chain_visits).where(chain_visits.c.status == "waiting")
                         .values(next_attempt_at=clock.now()))
        await self.run()

    async def wake(self) -> None:
        """The lanes waiting for a prerequisite look again now (their next poll, brought forward), then run."""
        with self.db.begin() as conn:
            conn.execute(update(chain_visits).where(chain_visits.c.service == self.chain.service,
                                                    chain_visits.c.status == "waiting",
                                                    chain_visits.c.next_attempt_at <= clock.now() + self.config.requirement_poll)
                         .values(next_attempt_at=clock.now()))
        await self.run()

    def target_platform(self) -> dict[str, Any]:
        from yibao.simulator.targets import admin_snapshot

        return admin_snapshot(self.sim.ledger)

    def replay(self, kind: str | None = None, key: str | None = None) -> list[tuple[str, str]]:
        with self.db.begin() as conn:
            return requeue(conn, kind=kind, key=key)

    # --- what the scheduler holds and said -----------------------------------------------------------------------
    def record(self, kind: str, key: str) -> Any:
        with self.db.connect() as conn:
            row = conn.execute(select(upload_records).where(upload_records.c.kind == kind,
                                                            upload_records.c.record_key == key)).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["receipt"] = json.loads(values["receipt"]) if values["receipt"] else None
        return SimpleNamespace(**values)

    def lane(self, kind: str, key: str = "") -> Any:
        spec = self.config.lanes[kind]
        with self.db.connect() as conn:
            return conn.execute(select(chain_visits).where(chain_visits.c.visit_key == lane_key(spec, key))).first()

    def outcomes(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.payload).where(outbox.c.topic.like("%uploads.results%"))
                                .order_by(outbox.c.id)).all()
        return [json.loads(r.payload) for r in rows]

    def journal(self, infno: str) -> list[tuple[str, str | None]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.status, chain_calls.c.resolution).where(
                chain_calls.c.infno == infno).order_by(chain_calls.c.id)).all()
        return [(r.status, r.resolution) for r in rows]

    def platform(self) -> dict[str, Any]:
        from yibao.simulator.uploads import admin_snapshot

        return admin_snapshot(self.sim.ledger)

    def held(self, infno_family: str, key: str) -> dict[str, Any] | None:
        for r in self.platform()["records"]:
            if r["family"] == infno_family and r["key"] == key:
                return r
        return None

    def sent(self, infno: str) -> int:
        return sum(1 for i, _ in self.client.calls if i == infno)


