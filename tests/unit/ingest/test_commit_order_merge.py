"""The ingest worker's merge state (yibao.ingest.ordering.CommitOrder): what it reads of the consumer and what it
lets go, with the consumer's view given by the test (the decision itself is pure; the worker test runs it on the
real broker and database)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from yibao.core.errors import OutageError
from yibao.hisevents.order import EVERYTHING, NOTHING
from yibao.ingest.handler import Held, IngestOutcome, load_held
from yibao.ingest.ordering import CommitOrder

VISITS = ("cdc.OUTP_REGISTER", 0)
SETTLE = ("cdc.YB_SETTLE_REQUEST", 0)


@dataclass
class View:
    hw: dict = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    pos: dict = field(default_factory=dict)

    def assignment(self):  # type: ignore[no-untyped-def]
        return list(self.hw)

    def highwater(self, tp):  # type: ignore[no-untyped-def]
        return self.hw.get(tp)

    def delivered(self, tp):  # type: ignore[no-untyped-def]
        return self.read.get(tp)

    async def position(self, tp):  # type: ignore[no-untyped-def]
        return self.pos.get(tp)


def _order(view: View, **kw) -> CommitOrder:  # type: ignore[no-untyped-def]
    order = CommitOrder({VISITS[0], SETTLE[0]}, view, **kw)
    order.loaded_from([])
    return order


def _take(order: CommitOrder, view: View, tp, offset: int, key) -> None:  # type: ignore[no-untyped-def]
    view.read[tp] = offset
    order.consuming(tp[0], tp[1], offset)
    order.placed(tp[0], tp[1], key)


def test_not_behind_every_message_goes_straight_on() -> None:
    view = View(hw={VISITS: 10, SETTLE: 4})
    order = _order(view)
    order.consuming(*SETTLE, 3)
    order.consumed()
    _take(order, view, VISITS, 9, (100,))
    assert order.bound() >= (100,)
    assert order.releasable(order.bound()) == ([], order.bound())


def test_a_table_read_ahead_waits_for_the_lagging_table_to_pass_it() -> None:
    view = View(hw={VISITS: 10, SETTLE: 500})
    order = _order(view)
    _take(order, view, SETTLE, 100, (40,))
    order.consumed()
    _take(order, view, VISITS, 9, (90,))  # the cancellation, committed after settlement requests still unread
    assert order.bound() == (40,)
    order.applied(IngestOutcome("processed", new=1, held=(Held((90,), 1),)))
    order.consumed()
    _take(order, view, SETTLE, 300, (80,))
    assert order.releasable(order.bound())[0] == []
    order.consumed()
    _take(order, view, SETTLE, 499, (95,))  # the last one: the settlement table is caught up after it
    release, _ = order.releasable(order.bound())
    assert release == [Held((90,), 1)]
    order.consumed()
    assert order.bound() == EVERYTHING


def test_a_partition_with_records_on_their_way_to_the_agent_is_not_caught_up() -> None:
    view = View(hw={VISITS: 10, SETTLE: 5})
    order = _order(view)
    _take(order, view, VISITS, 9, (30,))
    order.consumed()
    _take(order, view, SETTLE, 4, (40,))
    order.consumed()
    assert order.bound() == EVERYTHING
    view.hw[SETTLE] = 7
    view.read[SETTLE] = 6  # fetched and handed to the stream, not yet consumed by the agent
    assert order.bound() == (40,)


def test_a_partition_the_worker_consumed_nothing_from_holds_everything_until_it_is_known() -> None:
    view = View(hw={VISITS: 10, SETTLE: 500}, pos={SETTLE: 120})
    order = _order(view, idle_s=0)
    _take(order, view, VISITS, 9, (90,))
    assert order.bound() == NOTHING
    order.consumed()
    asyncio.run(order.refresh())  # its fetch position is behind the high-water mark: records are coming
    assert order.bound() == NOTHING


def test_a_quiet_partition_or_one_ending_in_transaction_markers_counts_as_caught_up_when_the_agent_is_idle() -> None:
    view = View(hw={VISITS: 10, SETTLE: 500}, pos={SETTLE: 500})
    order = _order(view, idle_s=0)
    _take(order, view, VISITS, 9, (90,))
    assert order.bound() == NOTHING
    asyncio.run(order.refresh())  # the agent is busy: nothing is judged
    assert order.bound() == NOTHING
    order.consumed()
    asyncio.run(order.refresh())
    assert order.bound() == EVERYTHING
    view.hw[SETTLE] = 501  # a new record whose place is not known yet: everything waits until it is consumed
    assert order.bound() == NOTHING


def test_an_empty_partition_is_caught_up() -> None:
    view = View(hw={VISITS: 10, SETTLE: 0})
    order = _order(view)
    _take(order, view, VISITS, 9, (90,))
    order.consumed()
    assert order.bound() == EVERYTHING


def test_a_large_release_goes_in_batches_and_new_messages_wait_behind_it() -> None:
    view = View(hw={VISITS: 10})
    order = _order(view, batch=2)
    order.loaded_from([Held((k,), k) for k in (5, 1, 3)])
    release, bound = order.releasable(EVERYTHING)
    assert release == [Held((1,), 1), Held((3,), 3)]
    assert bound == (3,), "a message later than the last one released waits for the rest"
    order.applied(IngestOutcome("skipped", released_ids=(1, 3)))
    assert order.held == [Held((5,), 5)]


def test_after_a_restart_a_partition_whose_consumer_was_set_to_its_end_is_caught_up() -> None:
    # the consumer starts the partition at its committed offset; faust reports that offset until a record comes
    view = View(hw={VISITS: 10, SETTLE: 500}, read={SETTLE: 500})
    order = _order(view)
    _take(order, view, VISITS, 9, (90,))
    order.consumed()
    assert order.bound() == EVERYTHING
    view.read[SETTLE] = 300  # set to an offset with records after it: they are coming
    assert order.bound() == NOTHING


def test_changes_of_one_visit_arriving_together_on_several_tables_wait_for_no_timer() -> None:
    # the settlement request (later) is consumed before the visit's charge (earlier) still on its way: it is held,
    # and goes in the transaction that stores the charge, right after it
    view = View(hw={VISITS: 10, SETTLE: 5})
    order = _order(view)
    for tp, offset, key in ((VISITS, 8, (10,)), (SETTLE, 3, (11,))):
        _take(order, view, tp, offset, key)
        order.consumed()
    view.read[VISITS] = 9  # the charge: fetched, not consumed yet
    _take(order, view, SETTLE, 4, (21,))
    assert order.bound(own=SETTLE) == (10,)
    order.applied(IngestOutcome("processed", new=1, held=(Held((21,), 1),)))
    order.consumed()
    _take(order, view, VISITS, 9, (20,))
    assert order.bound() == (20,), "for anyone else its record is not stored yet"
    bound = order.bound(own=VISITS)
    assert bound == EVERYTHING
    assert order.releasable(bound)[0] == [Held((21,), 1)]


def test_a_transaction_that_failed_after_it_may_have_committed_makes_the_worker_read_the_held_events_again() -> None:
    # the COMMIT that held an event reached the database, its answer did not: the retry finds the event in the
    # inbox and holds nothing; unless the list is read again a later change of the visit would overtake the event
    in_database: list[Held] = []
    reads = []

    async def db(fn):  # type: ignore[no-untyped-def]
        if fn is load_held:
            reads.append(1)
            return list(in_database)
        in_database.append(Held((21,), 7))  # committed …
        raise OutageError("the connection dropped during COMMIT", resource="database")  # … unanswered

    async def scenario() -> None:
        order = _order(View(hw={VISITS: 10}))
        with pytest.raises(OutageError):
            await order.commit(db, lambda conn: IngestOutcome("processed", new=1, held=(Held((21,), 7),)))
        assert order.held == [] and not order.loaded
        await order.load(db)
        assert order.held == [Held((21,), 7)] and reads == [1]
        await order.load(db)
        assert reads == [1], "a list known to be the database's is not read again"

    asyncio.run(scenario())
