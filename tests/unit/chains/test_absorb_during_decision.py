"""A message absorbed while a visit is being driven is never lost: if it lands between the decision "nothing to
do" (Idle/Wait) and the engine recording that status, the engine decides again instead of putting the visit to
sleep with work pending."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from yibao.chains import ChainEngine, Idle, LocalChange, Visit, Wait
from yibao.chains.engine import EngineSettings
from yibao.core.db.schema import chain_visits


class Worker:
    service = "toy"

    def __init__(self) -> None:
        self.decided_idle = 0

    def new_state(self, kind: str) -> dict[str, Any]:
        return {"work": False, "done": False}

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime) -> Any:
        if visit.state["work"] and not visit.state["done"]:
            return LocalChange("do it", lambda c, v: v.state.__setitem__("done", True))
        if not visit.state["work"]:
            self.decided_idle += 1
            return Idle()
        return Wait("done")

    def on_parked(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        pass


async def test_a_message_absorbed_after_an_idle_decision_is_acted_upon(sqlite_engine: Engine) -> None:
    definition = Worker()
    raced: list[bool] = []

    def absorb_work(conn: Connection) -> None:
        engine.absorb(conn, message_id="m2", visit_key="V1", visit_kind="outpatient",
                      apply=lambda c, v: v.state.__setitem__("work", True))

    async def run_db(fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with sqlite_engine.begin() as conn:
                return fn(conn)

        result = await asyncio.to_thread(unit)
        if definition.decided_idle == 1 and not raced:  # the decision committed; the message lands right now
            raced.append(True)
            with sqlite_engine.begin() as conn:
                absorb_work(conn)
        return result

    engine = ChainEngine(definition, db=run_db, client=None, settings=EngineSettings(retry_backoff_s=0.0))
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient", apply=lambda c, v: None)
    await engine.drain()
    with sqlite_engine.connect() as conn:
        state = json.loads(conn.execute(select(chain_visits.c.state)).scalar_one())
    assert raced and state == {"work": True, "done": True}
