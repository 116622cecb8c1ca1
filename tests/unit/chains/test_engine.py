"""The chain engine, one test per rule, with a toy chain over real catalog transactions (SQLite): the order of calls,
journal before send, a lost answer resolved the catalog's way before anything else, backoff then parking, database
outages waited out, and one transaction per platform call."""

from __future__ import annotations

import datetime as _dt
import json
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Engine, func, select, update

from unit.chains.toy import Db, Script, Toy, ToyState, engine_for, journal, request, state_of, status_of
from yibao.chains import Call, ChainDefinitionError, Change, Effects, Lookup, Park, Reply, Wait
from yibao.core.db.schema import chain_calls, chain_visits, outbox, platform_calls
from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome


async def test_a_chain_runs_its_calls_in_order_each_journalled(sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform)
    assert await request(engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207"]
    assert state_of(sqlite_engine).setl_id == "S1"
    assert journal(sqlite_engine) == [("2201", "ok", None), ("2207", "ok", None)]


async def test_a_platform_call_costs_one_transaction(sqlite_engine: Engine) -> None:
    db = Db(sqlite_engine)
    engine = engine_for(db, Script())
    await request(engine)
    before = db.units
    await engine.drain()
    # a claim, the unit journalling 2201, the one recording it and journalling 2207, the one recording 2207,
    # and the claim that finds nothing left
    assert db.units - before == 2 + 3


async def test_every_call_is_in_the_call_log_from_its_journal_transaction(sqlite_engine: Engine) -> None:
    platform = Script()
    db = Db(sqlite_engine)
    engine = engine_for(db, platform)
    await request(engine)
    seen: list[list[str]] = []

    def look(infno: str) -> None:  # while the call is in flight, its log row is there already
        with sqlite_engine.connect() as conn:
            seen.append(list(conn.execute(select(platform_calls.c.outcome)
                                          .where(platform_calls.c.infno == infno)).scalars()))

    platform.during_call = look
    await engine.drain()
    assert seen == [["sent"], ["sent"]]
    with sqlite_engine.connect() as conn:
        assert sorted(conn.execute(select(platform_calls.c.infno)).scalars()) == ["2201", "2207"]


async def test_a_duplicate_message_changes_nothing(sqlite_engine: Engine) -> None:
    engine = engine_for(Db(sqlite_engine), Script())
    assert await request(engine, "same") is True
    assert await request(engine, "same") is False


async def test_a_message_needing_no_call_is_decided_as_it_is_absorbed(sqlite_engine: Engine) -> None:
    class Noting(Toy):
        def next_action(self, s: ToyState, now: _dt.datetime) -> Any:
            if s.requested and not s.notes:
                return Change("note", lambda st, fx: st.notes.append("seen"))
            return Wait("nothing to send")

    db = Db(sqlite_engine)
    engine = engine_for(db, Script(), Noting())
    await request(engine)
    assert db.units == 1  # no driver needed
    assert state_of(sqlite_engine).notes == ["seen"]
    assert status_of(sqlite_engine) == "waiting"


async def test_a_settlement_done_but_unheard_is_adopted_by_the_catalogs_lookup_not_sent_again(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2207"] = ["commit_then_lose"]
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "5204"]
    assert state_of(sqlite_engine).setl_id == "S1"
    assert ("2207", "resolved", "adopted") in journal(sqlite_engine)


async def test_a_reversible_call_the_lookup_finds_no_trace_of_is_reversed_then_sent_again(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2207"] = [UnknownOutcome("2207", None, "connection reset")]
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "5204", "2601", "2207"]
    assert ("2207", "resolved", "nothing_done") in journal(sqlite_engine)
    assert list(platform.effects.values()).count("2207") == 1


async def test_a_reversible_call_without_a_catalog_query_is_reversed_before_it_is_sent_again(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2102"] = ["commit_then_lose"]  # 药店结算: reversible, no lookup in the catalog
    engine = engine_for(Db(sqlite_engine), platform, Toy(settle_infno="2102", lookup_infno=None))
    await request(engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2102", "2601", "2102"]
    assert ("2102", "resolved", "reversed") in journal(sqlite_engine)
    assert list(platform.effects.values()).count("2102") == 1


async def test_a_call_the_catalog_cannot_resolve_is_parked_for_a_person(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2101"] = ["commit_then_lose"]  # 药店预结算: neither reversible nor looked up
    engine = engine_for(Db(sqlite_engine), platform, Toy(settle_infno="2101", lookup_infno=None))
    await request(engine)
    await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    assert state_of(sqlite_engine).parked == "unknown_outcome"
    assert [c[0] for c in platform.calls] == ["2201", "2101"]


async def test_a_lookup_with_another_query_than_the_catalogs_is_a_chain_error(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2207"] = ["commit_then_lose"]
    engine = engine_for(Db(sqlite_engine), platform, Toy(lookup_infno="5203"), max_attempts=2)
    await request(engine)
    for _ in range(3):
        await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    with sqlite_engine.connect() as conn:
        error = conn.execute(select(chain_visits.c.last_error)).scalar_one()
    assert ChainDefinitionError.__name__ in error and "5204" in error


async def test_a_call_sent_by_a_worker_that_died_is_resolved_before_anything_else(sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    with sqlite_engine.begin() as conn:  # a worker journalled a 2207 and died before hearing back
        call_id = engine.store.open_call(conn, "V1", step="2207", infno="2207",
                                         msgid="H44010600001000000000000000099", purpose="step")
        conn.execute(update(chain_visits).values(
            state=ToyState(requested=True, mdtrt_id="M1").model_dump_json(), open_call=call_id, status="ready",
            next_attempt_at=_dt.datetime(2000, 1, 1)))
    platform.effects["H44010600001000000000000000099"] = "2207"
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["5204"]
    assert state_of(sqlite_engine).setl_id == "S1"


async def test_a_business_rejection_goes_to_the_chain_and_stops_it(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = [BusinessRejection("2201", "人员不存在")]
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    await engine.drain()
    assert state_of(sqlite_engine).rejected == "人员不存在"
    assert [c[0] for c in platform.calls] == ["2201"]


async def test_a_call_refused_because_the_session_was_signed_out_is_sent_again_under_a_new_msgid(
        sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = [BusinessRejection("2201", "该机构已签退，请重新签到")]
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    for _ in range(3):
        await engine.drain()
    assert state_of(sqlite_engine).setl_id == "S1"
    assert state_of(sqlite_engine).rejected is None
    sent = [msgid for infno, msgid in platform.calls if infno == "2201"]
    assert len(sent) == 2 and sent[0] != sent[1]
    assert journal(sqlite_engine)[:2] == [("2201", "not_sent", None), ("2201", "ok", None)]


async def test_transport_failures_back_off_then_park_until_replayed(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = [TransportError("2201", "connection refused") for _ in range(10)]
    engine = engine_for(Db(sqlite_engine), platform, max_attempts=3)
    await request(engine)
    for _ in range(5):
        await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    assert state_of(sqlite_engine).parked == "exhausted"
    assert len(platform.calls) == 3
    with sqlite_engine.begin() as conn:
        assert engine.store.unpark(conn) == 1
    platform.queue["2201"] = []
    await engine.drain()
    assert state_of(sqlite_engine).setl_id == "S1"


async def test_an_unknown_outcome_waits_for_its_backoff_before_it_is_resolved(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = [UnknownOutcome("2201", None, "read timeout")]
    engine = engine_for(Db(sqlite_engine), platform, retry_backoff_s=60.0)
    await request(engine)
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201"]  # the lookup waits for the backoff
    assert status_of(sqlite_engine) == "waiting"


async def test_answers_lost_again_and_again_park_the_visit(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = [UnknownOutcome("2201", None, "read timeout") for _ in range(10)]
    engine = engine_for(Db(sqlite_engine), platform, max_attempts=3)
    await request(engine)
    for _ in range(6):
        await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    assert [c[0] for c in platform.calls].count("2201") == 3


async def test_a_park_action_parks_the_visit_with_its_reason_and_a_dead_letter(sqlite_engine: Engine) -> None:
    class Holding(Toy):
        def next_action(self, s: ToyState, now: _dt.datetime) -> Any:
            return Park("inconsistent_split", "fund + psn_part ≠ medfee")

    engine = engine_for(Db(sqlite_engine), Script(), Holding())
    await request(engine)
    await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    assert state_of(sqlite_engine).parked == "inconsistent_split"
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(outbox.c.topic)).scalars().all() == ["yibao.dlq.v1"]


async def test_a_park_action_leaves_an_unresolved_call_unresolved(sqlite_engine: Engine) -> None:
    class Holding(Toy):
        def next_action(self, s: ToyState, now: _dt.datetime) -> Any:
            return Park("inconsistent_split", "a person decides") if s.mdtrt_id else super().next_action(s, now)

    engine = engine_for(Db(sqlite_engine), Script(), Holding())
    await request(engine)
    with sqlite_engine.begin() as conn:
        call_id = engine.store.open_call(conn, "V1", step="2207", infno="2207", msgid="H1", purpose="step")
        conn.execute(update(chain_visits).values(
            state=ToyState(requested=True, mdtrt_id="M1").model_dump_json(), open_call=call_id, status="ready",
            next_attempt_at=_dt.datetime(2000, 1, 1)))
    await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(chain_calls.c.status)).scalar_one() == "sent"


async def test_a_visit_whose_parking_cannot_be_recorded_is_parked_all_the_same(sqlite_engine: Engine) -> None:
    class Broken(Toy):
        def next_action(self, s: ToyState, now: _dt.datetime) -> Any:
            return Park("inconsistent_split", "a person decides")

        def on_parked(self, s: ToyState, fx: Effects, reason_code: str, reason: str) -> None:
            s.notes.append("half written")  # partial work: must not survive
            raise ValueError("cannot record")

    engine = engine_for(Db(sqlite_engine), Script(), Broken())
    await request(engine)
    await engine.drain()
    assert status_of(sqlite_engine) == "parked"
    assert state_of(sqlite_engine).notes == []


async def test_a_message_absorbed_during_a_call_is_seen_by_the_calls_outcome(sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)

    def note(s: ToyState, fx: Effects) -> None:
        s.notes.append("arrived mid-call")

    absorbed: list[str] = []

    def during(infno: str) -> None:  # a message lands while 2207 is in flight
        if infno == "2207" and not absorbed:
            absorbed.append(infno)
            with sqlite_engine.begin() as conn:
                from yibao.chains import Absorption
                engine.absorb_in(conn, [Absorption("m2", "V1", "outpatient", note)])

    platform.during_call = during
    await engine.drain()
    final = state_of(sqlite_engine)
    assert final.setl_id == "S1" and final.notes == ["arrived mid-call"]


async def test_a_database_outage_is_waited_out_without_spending_an_attempt(sqlite_engine: Engine) -> None:
    db = Db(sqlite_engine)
    platform = Script()
    engine = engine_for(db, platform, max_attempts=2)
    await request(engine)

    def outage_after_2201() -> None:  # the database goes away while the 2201 answer is being recorded
        if [c[0] for c in platform.calls] == ["2201"] and not getattr(db, "hit", False):
            db.hit = True  # type: ignore[attr-defined]
            db.fail_next = 5

    db.after = outage_after_2201
    await engine.drain()
    assert state_of(sqlite_engine).setl_id == "S1"
    assert [c[0] for c in platform.calls] == ["2201", "2207"]  # the 2201 answer was kept, not lost or resent
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(chain_visits.c.attempts)).scalar_one() == 0


class _Told:
    """A message to HIS (what a chain emits once, when its call's answer is booked)."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id

    def to_json(self) -> bytes:
        return json.dumps({"message_id": self.message_id}).encode()


class _TellingToy(Toy):
    """Books the settlement once, and tells HIS then — as settlement's 2207 handler does."""

    def _settled(self, s: ToyState, reply: Reply, fx: Effects) -> None:
        if s.setl_id is not None:
            return  # booked already
        s.setl_id = reply.output["setlinfo"]["setl_id"]
        fx.emit("his_results", _Told(f"settled:{s.setl_id}"))


async def test_an_answer_whose_commit_was_lost_to_an_outage_is_booked_again_with_its_messages(
        sqlite_engine: Engine) -> None:
    db = Db(sqlite_engine)
    platform = Script()
    engine = engine_for(db, platform, _TellingToy())
    await request(engine)

    def lose_the_commit_of_the_answer(infno: str) -> None:  # the database goes away as the 2207 answer is committed
        if infno == "2207":
            db.lose_commit_next = 1

    platform.during_call = lose_the_commit_of_the_answer
    await engine.drain()
    assert state_of(sqlite_engine).setl_id == "S1"
    with sqlite_engine.connect() as conn:
        told = [json.loads(p)["message_id"] for p in conn.execute(select(outbox.c.payload)).scalars()]
    assert told == ["settled:S1"]  # booked once, and HIS is told
    assert [c[0] for c in platform.calls] == ["2201", "2207"]


async def test_a_lookup_is_journalled_like_any_call(sqlite_engine: Engine) -> None:
    platform = Script()
    platform.queue["2201"] = ["commit_then_lose"]
    engine = engine_for(Db(sqlite_engine), platform)
    await request(engine)
    await engine.drain()
    assert journal(sqlite_engine)[:3] == [("2201", "resolved", "adopted"), ("5201", "ok", None), ("2207", "ok", None)]
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(platform_calls)).scalar_one() == 3


def test_a_call_names_its_lookup_query(sqlite_engine: Engine) -> None:
    call = Call("2201", "2201", {}, on_ok=lambda s, r, fx: None, on_refused=lambda s, r, fx: None,
                lookup=Lookup("5201", {}, found=lambda out, m: None))
    assert call.lookup is not None and call.lookup.infno == "5201"


async def test_a_visit_claimed_again_while_its_driver_finishes_is_driven_again(sqlite_engine: Engine) -> None:
    """A driver's last unit released the lease; before the driver has ended, a message makes the visit due again and
    the scheduler claims it: the claim must not be dropped (its lease would sit undriven until it lapsed)."""
    from yibao.chains import Absorption

    db = Db(sqlite_engine)
    platform = Script()
    engine = engine_for(db, platform)
    await request(engine)

    def settle_again(s: ToyState, fx: Effects) -> None:
        s.setl_id = None

    def after_unit() -> None:
        if [c[0] for c in platform.calls] == ["2201", "2207"] and not getattr(db, "hit", False):
            db.hit = True  # type: ignore[attr-defined]
            assert "V1" in engine._running  # the driver's last unit has committed; the driver has not ended
            with sqlite_engine.begin() as conn:
                engine.absorb_in(conn, [Absorption("m2", "V1", "outpatient", settle_again)])
            with sqlite_engine.begin() as conn:
                assert engine.store.claim_due(conn, engine.owner, limit=1, lease_s=60) == ["V1"]
            engine._start("V1")

    db.after = after_unit
    await engine.drain()
    assert [c[0] for c in platform.calls] == ["2201", "2207", "2207"]
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(chain_visits.c.status, chain_visits.c.lease_owner)).one()
    assert tuple(row) == ("idle", None)


async def test_a_worker_never_drives_more_visits_than_its_in_flight_limit(sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform, concurrency=3)
    for i in range(10):
        await request(engine, message_id=f"m{i}", key=f"V{i}")
    seen: list[int] = []
    platform.during_call = lambda infno: seen.append(len(engine._running))
    await engine.drain()
    assert len(platform.calls) == 20
    assert max(seen) == 3  # the limit is used, and never passed


@contextlib.asynccontextmanager
async def _scheduling(engine: Any) -> AsyncIterator[None]:
    """The engine's scheduler running (as in a worker), past its first claim; stopped after."""
    import asyncio

    stopping = asyncio.Event()
    task = asyncio.create_task(engine.run(stopping))
    for _ in range(100):
        if engine._scheduling:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    try:
        yield
    finally:
        stopping.set()
        engine.wake()
        await task


async def _until(check: Any, timeout: float = 10.0) -> None:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def _counted(metric: Any, *labels: str) -> float:
    return metric.labels(*labels)._value.get()


async def test_a_visit_its_worker_made_ready_is_driven_at_once_without_a_claim(sqlite_engine: Engine) -> None:
    from yibao.chains import metrics

    db = Db(sqlite_engine)
    engine = engine_for(db, Script(), poll_interval_s=30.0, lease_s=60.0)
    async with _scheduling(engine):
        claims, handoffs = _counted(metrics.TRANSACTIONS, "toy", "claim"), _counted(metrics.HANDOFFS, "toy")
        units = db.units
        await request(engine)
        await _until(lambda: state_of(sqlite_engine).setl_id == "S1" and not engine._running)
        assert _counted(metrics.TRANSACTIONS, "toy", "claim") == claims
        assert _counted(metrics.HANDOFFS, "toy") == handoffs + 1
        # the absorb, then one unit per call's journal and outcome: 2201 journalled, 2201 booked + 2207
        # journalled, 2207 booked
        assert db.units - units == 1 + 3
        with sqlite_engine.connect() as conn:
            row = conn.execute(select(chain_visits.c.status, chain_visits.c.lease_owner)).one()
        assert tuple(row) == ("idle", None)


async def test_a_visit_handed_over_while_another_worker_holds_its_lease_is_left_to_that_worker(
        sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform, poll_interval_s=30.0, lease_s=60.0)
    async with _scheduling(engine):
        with sqlite_engine.begin() as conn:
            engine.store.create(conn, "V1", "outpatient", ToyState(requested=True).model_dump_json())
            now = _dt.datetime.now(_dt.timezone.utc)
            conn.execute(update(chain_visits).values(status="ready", next_attempt_at=now, lease_owner="another-worker",
                                                     lease_until=now + _dt.timedelta(seconds=60)))
        engine._handoff("V1")
        await _until(lambda: not engine._running)
        assert platform.calls == []
        with sqlite_engine.connect() as conn:
            assert conn.execute(select(chain_visits.c.lease_owner)).scalar_one() == "another-worker"


async def test_visits_handed_over_never_pass_the_in_flight_limit(sqlite_engine: Engine) -> None:
    platform = Script()
    engine = engine_for(Db(sqlite_engine), platform, concurrency=3, poll_interval_s=0.05)
    seen: list[int] = []
    platform.during_call = lambda infno: seen.append(len(engine._running))
    async with _scheduling(engine):
        for i in range(10):
            await request(engine, message_id=f"m{i}", key=f"V{i}")
        await _until(lambda: len(platform.calls) == 20 and not engine._running)
        assert max(seen) == 3
