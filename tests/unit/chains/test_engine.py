"""The chain engine with a toy two-step chain and a stand-in platform client (SQLite): journal before sending,
unknown outcomes resolved by the step's policy before anything else, backoff then parking, duplicates absorbed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from yibao.chains import ChainEngine, Idle, QuerySpec, Step, UnknownPolicy, Visit, Wait
from yibao.chains.engine import EngineSettings
from yibao.core.db.schema import chain_calls, chain_visits
from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome


class Response:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class FakePlatform:
    """Answers by infno from a script: a callable(input, msgid) → output, or an exception to raise once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.script: dict[str, list[Any]] = {}
        self.effects: dict[str, str] = {}  # msgid -> what the platform did
        self._n = 0

    async def allocate_msgid(self) -> str:
        self._n += 1
        return f"H44010600001{self._n:018d}"

    async def call(self, infno: str, input: dict, *, visit_key=None, msgid=None, insuplc_admdvs=None,
                   read_timeout_s=None) -> Response:
        self.calls.append((infno, msgid))
        queue = self.script.get(infno, [])
        outcome = queue.pop(0) if queue else None
        if isinstance(outcome, tuple) and outcome[0] == "commit_then_lose":
            self.effects[msgid] = infno
            raise UnknownOutcome(infno, msgid, "read timeout")
        if isinstance(outcome, Exception):
            raise outcome
        if infno == "5203":
            done = [m for m, i in self.effects.items() if i == "2207"]
            if not done:
                raise BusinessRejection(infno, "无结算信息")
            return Response({"setlinfo": {"setl_id": "S1", "medins_setl_id": done[-1]}})
        self.effects[msgid] = infno
        return Response({"data": {"mdtrt_id": "M1"}} if infno == "2201" else {"setlinfo": {"setl_id": "S1"}})

    async def reverse(self, psn_no, omsgid, oinfno, **kw) -> Response:
        self.calls.append(("2601", omsgid))
        if omsgid in self.effects:
            del self.effects[omsgid]
            return Response({})
        raise BusinessRejection("2601", "原交易不存在 (omsgid not received): nothing was done")


class Toy:
    """register (2201) then settle (2207); settle resolves unknown outcomes by 5203 then 2601."""

    service = "toy"

    def __init__(self, settle_policy: str = "query_then_reverse") -> None:
        self.settle_policy = settle_policy

    def new_state(self, kind: str) -> dict[str, Any]:
        return {"requested": False, "mdtrt_id": None, "setl_id": None, "rejected": None, "parked": None}

    def next_action(self, conn: Connection, visit: Visit, now: _dt.datetime):
        s = visit.state
        if not s["requested"] or s["rejected"]:
            return Wait("nothing requested")
        if s["mdtrt_id"] is None:
            return Step("2201", "2201", {}, on_ok=self._registered, on_refused=self._refused, psn_no="P1")
        if s["setl_id"] is None:
            def query(v: Visit, omsgid: str) -> QuerySpec:
                return QuerySpec("5203", {}, found=lambda out, m: out if out["setlinfo"]["medins_setl_id"] == m
                                 else None)

            return Step("2207", "2207", {}, on_ok=self._settled, on_refused=self._refused, psn_no="P1",
                        unknown=UnknownPolicy(self.settle_policy, query=query
                                              if self.settle_policy != "reverse" else None))
        return Idle()

    def _registered(self, conn, visit, output, msgid) -> None:
        visit.state["mdtrt_id"] = output["data"]["mdtrt_id"]

    def _settled(self, conn, visit, output, msgid) -> None:
        visit.state["setl_id"] = output["setlinfo"]["setl_id"]

    def _refused(self, conn, visit, exc) -> None:
        visit.state["rejected"] = getattr(exc, "err_msg", str(exc))

    def on_parked(self, conn, visit, reason_code, reason) -> None:
        visit.state["parked"] = reason_code


def _engine(db: Engine, platform: FakePlatform, definition: Toy | None = None, **settings: Any) -> ChainEngine:
    async def run_db(fn):
        def unit():
            with db.begin() as conn:
                return fn(conn)
        return await asyncio.to_thread(unit)

    return ChainEngine(definition or Toy(), db=run_db, client=platform,
                       settings=EngineSettings(retry_backoff_s=0.0, **settings))


def _request(engine: ChainEngine, db: Engine, message_id: str = "m1") -> bool:
    with db.begin() as conn:
        return engine.absorb(conn, message_id=message_id, visit_key="V1", visit_kind="outpatient",
                             apply=lambda c, v: v.state.__setitem__("requested", True))


def _state(db: Engine) -> dict[str, Any]:
    import json

    with db.connect() as conn:
        return json.loads(conn.execute(select(chain_visits.c.state)).scalar_one())


def _journal(db: Engine) -> list[tuple[str, str, str | None]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(chain_calls.c.infno, chain_calls.c.status,
                                                      chain_calls.c.resolution).order_by(chain_calls.c.id))]


async def test_a_chain_runs_its_steps_in_order(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    engine = _engine(sqlite_engine, platform)
    assert _request(engine, sqlite_engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207"]
    assert _state(sqlite_engine)["setl_id"] == "S1"
    assert _journal(sqlite_engine) == [("2201", "ok", None), ("2207", "ok", None)]


async def test_a_duplicate_message_changes_nothing(sqlite_engine: Engine) -> None:
    engine = _engine(sqlite_engine, FakePlatform())
    assert _request(engine, sqlite_engine, "same") is True
    assert _request(engine, sqlite_engine, "same") is False


async def test_a_settlement_done_but_unheard_is_adopted_by_query_not_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2207"] = [("commit_then_lose",)]
    engine = _engine(sqlite_engine, platform)
    _request(engine, sqlite_engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "5203"]
    assert _state(sqlite_engine)["setl_id"] == "S1"
    assert ("2207", "resolved", "adopted") in _journal(sqlite_engine)


async def test_a_settlement_not_done_is_reversed_then_sent_again(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2207"] = [UnknownOutcome("2207", None, "connection reset")]
    engine = _engine(sqlite_engine, platform)
    _request(engine, sqlite_engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "5203", "2601", "2207"]
    assert ("2207", "resolved", "nothing_done") in _journal(sqlite_engine)
    assert list(platform.effects.values()).count("2207") == 1


async def test_with_the_reverse_policy_a_done_settlement_is_undone_before_the_retry(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2207"] = [("commit_then_lose",)]
    engine = _engine(sqlite_engine, platform, Toy(settle_policy="reverse"))
    _request(engine, sqlite_engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "2601", "2207"]
    assert ("2207", "resolved", "reversed") in _journal(sqlite_engine)
    assert list(platform.effects.values()).count("2207") == 1


async def test_a_crash_mid_call_is_resolved_on_the_next_drive(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    engine = _engine(sqlite_engine, platform)
    _request(engine, sqlite_engine)
    with sqlite_engine.begin() as conn:  # the worker journalled a 2207 and died before hearing back
        engine.store.save(conn, engine.store.load(conn, "V1") or pytest.fail(), attempts=0)
        visit = engine.store.load(conn, "V1")
        assert visit is not None
        visit.state["mdtrt_id"] = "M1"
        engine.store.save(conn, visit)
        engine.store.open_call(conn, "V1", step="2207", infno="2207", msgid="H44010600001000000000000000099",
                               purpose="step")
    platform.effects["H44010600001000000000000000099"] = "2207"
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["5203"]
    assert _state(sqlite_engine)["setl_id"] == "S1"


async def test_a_business_rejection_goes_to_the_definition_and_stops_the_chain(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = [BusinessRejection("2201", "人员不存在")]
    engine = _engine(sqlite_engine, platform)
    _request(engine, sqlite_engine)
    await engine.drain()
    assert _state(sqlite_engine)["rejected"] == "人员不存在"
    assert [c[0] for c in platform.calls] == ["2201"]


async def test_transport_failures_back_off_then_park_the_visit(sqlite_engine: Engine) -> None:
    platform = FakePlatform()
    platform.script["2201"] = [TransportError("2201", "connection refused") for _ in range(10)]
    engine = _engine(sqlite_engine, platform, max_attempts=3)
    _request(engine, sqlite_engine)
    for _ in range(5):
        await engine.drain()
    with sqlite_engine.connect() as conn:
        status = conn.execute(select(chain_visits.c.status)).scalar_one()
    assert status == "parked"
    assert _state(sqlite_engine)["parked"] == "exhausted"
    assert len(platform.calls) == 3
    with sqlite_engine.begin() as conn:
        assert engine.store.unpark(conn) == 1
    platform.script["2201"] = []
    await engine.drain()
    assert _state(sqlite_engine)["setl_id"] == "S1"
