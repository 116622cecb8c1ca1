"""An unknown outcome counts as a failed attempt: the resolution waits for the backoff, and a platform that keeps
losing answers gets the visit parked after ``max_attempts`` instead of a resend loop with no pause."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
from typing import Any

from sqlalchemy import Engine, select

from yibao.chains import ChainEngine, QuerySpec, Step, UnknownPolicy, Visit, Wait
from yibao.chains.engine import EngineSettings
from yibao.core.db.schema import chain_visits
from yibao.envelope.errors import BusinessRejection, UnknownOutcome


class Response:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class LosingPlatform:
    """Loses every answer to 2201 (nothing done); the query finds nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._n = 0

    async def allocate_msgid(self) -> str:
        self._n += 1
        return f"H44010600001{self._n:018d}"

    async def call(self, infno: str, input: dict, **kw: Any) -> Response:
        self.calls.append(infno)
        if infno == "2201":
            raise UnknownOutcome(infno, None, "HTTP 502 after the request was accepted")
        raise BusinessRejection(infno, "no such visit")


class Register:
    service = "toy"

    def new_state(self, kind: str) -> dict[str, Any]:
        return {"go": False, "mdtrt_id": None, "parked": None}

    def next_action(self, conn: Any, visit: Visit, now: _dt.datetime) -> Any:
        if not visit.state["go"] or visit.state["mdtrt_id"]:
            return Wait("nothing to do")
        query = QuerySpec("5201", {}, found=lambda out, m: None)
        return Step("2201", "2201", {}, on_ok=lambda c, v, o, m: v.state.update(mdtrt_id="M1"),
                    on_refused=lambda c, v, e: None, unknown=UnknownPolicy("query", query=lambda v, m: query))

    def on_parked(self, conn: Any, visit: Visit, reason_code: str, reason: str) -> None:
        visit.state["parked"] = reason_code


def _engine(db: Engine, platform: LosingPlatform, **settings: Any) -> ChainEngine:
    async def run_db(fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with db.begin() as conn:
                return fn(conn)
        return await asyncio.to_thread(unit)

    return ChainEngine(Register(), db=run_db, client=platform, settings=EngineSettings(**settings))


def _row(db: Engine) -> dict[str, Any]:
    with db.connect() as conn:
        return dict(conn.execute(select(chain_visits)).mappings().one())


async def test_an_unknown_outcome_backs_off_before_it_is_resolved(sqlite_engine: Engine) -> None:
    platform = LosingPlatform()
    engine = _engine(sqlite_engine, platform, retry_backoff_s=60.0)
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient",
                      apply=lambda c, v: v.state.update(go=True))
    await engine.drain()
    assert platform.calls == ["2201"]  # no query, no resend yet: the visit waits
    row = _row(sqlite_engine)
    assert row["status"] == "waiting" and row["attempts"] == 1


async def test_answers_lost_again_and_again_park_the_visit(sqlite_engine: Engine) -> None:
    platform = LosingPlatform()
    engine = _engine(sqlite_engine, platform, retry_backoff_s=0.0, max_attempts=3)
    with sqlite_engine.begin() as conn:
        engine.absorb(conn, message_id="m1", visit_key="V1", visit_kind="outpatient",
                      apply=lambda c, v: v.state.update(go=True))
    await engine.drain()
    row = _row(sqlite_engine)
    assert row["status"] == "parked" and json.loads(row["state"])["parked"] == "exhausted"
    assert platform.calls.count("2201") == 3
