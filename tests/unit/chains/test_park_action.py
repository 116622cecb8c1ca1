"""The Park action: a definition stops a visit for a person (status parked, on_parked, a dead letter), and never
by marking an unresolved call superseded."""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

from sqlalchemy import Connection, Engine, select

from yibao.chains import ChainEngine, Park, Visit
from yibao.chains.engine import EngineSettings
from yibao.core.db.schema import chain_calls, chain_visits, outbox


class Holding:
    service = "holding"

    def __init__(self) -> None:
        self.parked: list[tuple[str, str]] = []

    def new_state(self, kind: str) -> dict[str, Any]:
        return {}

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime) -> Park:
        return Park("inconsistent_split", "fund + psn_part ≠ medfee")

    def on_parked(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        self.parked.append((reason_code, reason))


def _engine(db: Engine, definition: Holding) -> ChainEngine:
    async def run_db(fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with db.begin() as conn:
                return fn(conn)
        return await asyncio.to_thread(unit)

    return ChainEngine(definition, db=run_db, client=None, settings=EngineSettings(retry_backoff_s=0.0))


async def test_a_park_action_parks_the_visit_with_its_reason(sqlite_engine: Engine) -> None:
    definition = Holding()
    engine = _engine(sqlite_engine, definition)
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient", apply=lambda c, v: None)
    await engine.drain()
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(chain_visits.c.status)).scalar_one() == "parked"
        assert conn.execute(select(outbox.c.topic)).scalars().all() == ["yibao.dlq.v1"]
    assert definition.parked == [("inconsistent_split", "fund + psn_part ≠ medfee")]


async def test_a_park_action_leaves_an_unresolved_call_unresolved(sqlite_engine: Engine) -> None:
    engine = _engine(sqlite_engine, Holding())
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient", apply=lambda c, v: None)
        engine.store.open_call(conn, "V1", step="2207:x", infno="2207", msgid="H1", purpose="step")
    await engine.drain()
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(chain_calls.c.status)).scalar_one() == "sent"


class BrokenState(Holding):
    """A visit whose state no longer loads: deciding fails, and so does recording the parking."""

    service = "broken"

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime) -> Park:
        raise ValueError("state written by a newer version: field 'x' unknown")

    def on_parked(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        visit.state["half"] = "written"  # partial work: must not survive
        conn.execute(chain_calls.insert().values(service=self.service, visit_key=visit.key, step="junk", infno="0",
                                                 purpose="step", status="sent", created_at=_dt.datetime.now(),
                                                 updated_at=_dt.datetime.now()))
        raise ValueError("state written by a newer version: field 'x' unknown")


async def test_a_visit_whose_parking_cannot_be_recorded_is_parked_all_the_same(sqlite_engine: Engine) -> None:
    engine = _engine(sqlite_engine, BrokenState())
    engine.settings.max_attempts = 2
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient", apply=lambda c, v: None)
    for _ in range(4):  # the scheduler: each driver error backs off, the last attempt parks
        with sqlite_engine.begin() as conn:
            conn.execute(chain_visits.update().values(next_attempt_at=_dt.datetime(2000, 1, 1)))
        await engine.drain()
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(chain_visits.c.status, chain_visits.c.state, chain_visits.c.last_error)).one()
        assert row.status == "parked" and "half" not in row.state
        assert "recording the parking failed too" in row.last_error
        assert conn.execute(select(outbox.c.topic)).scalars().all() == ["yibao.dlq.v1"]
        assert conn.execute(select(chain_calls.c.id)).first() is None
