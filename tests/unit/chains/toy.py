"""Imported as ``unit.chains.toy``. A toy chain over real catalog transactions and a scripted platform, for the
engine's unit tests: register (2201, looked up by 5201), then settle (2207 by default: looked up by 5204, reversed
by 2601 when the lookup finds no trace)."""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from yibao.chains import (
    Absorption,
    Call,
    ChainEngine,
    ChainState,
    Effects,
    EngineSettings,
    Idle,
    Lookup,
    Refusal,
    Reply,
    Wait,
)
from yibao.core.db.schema import chain_calls, chain_visits
from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import BusinessRejection, UnknownOutcome

__all__ = ["ToyState", "Toy", "Script", "Db", "engine_for", "request", "state_of", "journal", "status_of"]


class ToyState(ChainState):
    requested: bool = False
    mdtrt_id: str | None = None
    setl_id: str | None = None
    rejected: str | None = None
    parked: str | None = None
    notes: list[str] = []


class Reply_:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class Script:
    """The platform: answers by infno; a queued outcome per call (an exception to raise, or "commit_then_lose":
    do it, then lose the answer). ``effects`` is what the platform did, by msgid."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.queue: dict[str, list[Any]] = {}
        self.effects: dict[str, str] = {}
        self._n = 0
        self.during_call: Callable[[str], None] | None = None

    async def allocate_msgid(self) -> str:
        self._n += 1
        return f"H44010600001{self._n:018d}"

    async def call(self, infno: str, input: dict, *, visit_key: str | None = None, msgid: str | None = None,
                   insuplc_admdvs: str | None = None, read_timeout_s: float | None = None, call_log: Any = None
                   ) -> Reply_:
        assert msgid is not None
        self.calls.append((infno, msgid))
        if self.during_call is not None:
            self.during_call(infno)
        queue = self.queue.get(infno, [])
        outcome = queue.pop(0) if queue else None
        if outcome == "commit_then_lose":
            self.effects[msgid] = infno
            raise UnknownOutcome(infno, msgid, "read timeout")
        if isinstance(outcome, Exception):
            raise outcome
        if infno == "5204":
            done = [m for m, i in self.effects.items() if i in ("2207", "2102")]
            return Reply_({"feedetail": [{"feedetl_sn": "F1", "setl_id": "S1", "msgid": done[-1]}] if done else []})
        if infno == "5201":
            done = [m for m, i in self.effects.items() if i == "2201"]
            return Reply_({"mdtrtinfo": [{"mdtrt_id": "M1", "ipt_otp_no": "O1"}] if done else []})
        self.effects[msgid] = infno
        return Reply_({"data": {"mdtrt_id": "M1"}} if infno == "2201" else {"setlinfo": {"setl_id": "S1"}})

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, *, insuplc_admdvs: str | None = None,
                      visit_key: str | None = None, msgid: str | None = None, call_log: Any = None) -> Reply_:
        self.calls.append(("2601", omsgid))
        if omsgid in self.effects:
            del self.effects[omsgid]
            return Reply_({})
        raise BusinessRejection("2601", "原交易不存在 (omsgid not received): nothing was done")


class Toy:
    """register (2201) then settle (``settle_infno``, 2207 by default)."""

    service = "toy"

    def __init__(self, settle_infno: str = "2207", lookup_infno: str | None = "5204") -> None:
        self.settle_infno = settle_infno
        self.lookup_infno = lookup_infno

    def new_state(self, key: str, kind: str) -> ToyState:
        return ToyState()

    def next_action(self, s: ToyState, now: _dt.datetime) -> Any:
        if not s.requested or s.rejected:
            return Wait("nothing requested")
        if s.mdtrt_id is None:
            return Call("2201", "2201", {}, on_ok=self._registered, on_refused=self._refused, psn_no="P1",
                        lookup=Lookup("5201", {}, found=lambda out, m: {"data": {"mdtrt_id": "M1"}}
                                      if out.get("mdtrtinfo") else None))
        if s.setl_id is None:
            lookup = None
            if self.lookup_infno:
                lookup = Lookup(self.lookup_infno, {}, found=lambda out, m: {"setlinfo": {"setl_id": "S1"}}
                                if out.get("feedetail") else None)
            return Call(self.settle_infno, self.settle_infno, {}, on_ok=self._settled, on_refused=self._refused,
                        psn_no="P1", lookup=lookup)
        return Idle()

    def _registered(self, s: ToyState, reply: Reply, fx: Effects) -> None:
        s.mdtrt_id = reply.output["data"]["mdtrt_id"]

    def _settled(self, s: ToyState, reply: Reply, fx: Effects) -> None:
        s.setl_id = reply.output["setlinfo"]["setl_id"]

    def _refused(self, s: ToyState, refusal: Refusal, fx: Effects) -> None:
        s.rejected = refusal.text

    def on_parked(self, s: ToyState, fx: Effects, reason_code: str, reason: str) -> None:
        s.parked = reason_code


class Db:
    """Runs units on SQLite in a thread, counting them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.units = 0
        self.fail_next = 0  #: make the next N units fail as a database outage would
        self.lose_commit_next = 0  #: let the next N units run, then lose their commit to an outage (rolled back)
        self.after: Callable[[], None] | None = None

    async def __call__(self, fn: Callable[[Any], Any]) -> Any:
        def unit() -> Any:
            if self.fail_next:
                self.fail_next -= 1
                from yibao.core.errors import OutageError
                raise OutageError("the database is down", resource="database")
            with self.engine.begin() as conn:
                result = fn(conn)
                if self.lose_commit_next:
                    self.lose_commit_next -= 1
                    from yibao.core.errors import OutageError
                    raise OutageError("the database went away before the commit", resource="database")
                return result

        self.units += 1
        result = await asyncio.to_thread(unit)
        if self.after is not None:
            self.after()
        return result


def engine_for(db: Db, platform: Script, chain: Any = None, **settings: Any) -> ChainEngine[Any]:
    return ChainEngine(chain or Toy(), db=db, client=platform, catalog=Catalog.load(),
                       settings=EngineSettings(**{"retry_backoff_s": 0.0, **settings}))


async def request(engine: ChainEngine[Any], message_id: str = "m1", key: str = "V1") -> bool:
    def apply(s: ToyState, fx: Effects) -> None:
        s.requested = True

    return (await engine.absorb([Absorption(message_id, key, "outpatient", apply)]))[0]


def state_of(db: Engine, key: str = "V1") -> ToyState:
    with db.connect() as conn:
        return ToyState.model_validate_json(conn.execute(
            select(chain_visits.c.state).where(chain_visits.c.visit_key == key)).scalar_one())


def status_of(db: Engine, key: str = "V1") -> str:
    with db.connect() as conn:
        return str(conn.execute(select(chain_visits.c.status).where(chain_visits.c.visit_key == key)).scalar_one())


def journal(db: Engine) -> list[tuple[str, str, str | None]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(select(chain_calls.c.infno, chain_calls.c.status,
                                                      chain_calls.c.resolution).order_by(chain_calls.c.id))]
