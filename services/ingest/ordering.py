"""HIS commit order across the CDC topics, while the worker works through a backlog.

Every HIS table comes on its own CDC topic; each is in its table's commit order, but after an outage, a restart
or a long stop the consumer reads one topic far ahead of another, and a visit cancelled in HIS *after* a
settlement was requested would reach the chain services first. The worker therefore merges its partitions by the
changes' place in HIS commit order (:func:`yibao.hisevents.order.commit_key`): a message's events are handed on
only when no partition can still deliver an earlier change (:func:`yibao.hisevents.order.release_bound`) — every
other partition has delivered a later change or is caught up. Until then they wait in the ``ingest_held`` table,
written in the same transaction as their inbox rows (:mod:`yibao.ingest.handler`): a kill -9 loses nothing, and
the held events are released by whichever comes first — a later message, or the release timer.

When ingest is not behind, every other partition is caught up, the bound is "everything" and a message's events go
straight to the outbox as before: no row is held, no query added.

**Caught up** means consumed up to the partition's high-water mark with nothing of it on its way to the agent. A
partition the worker has consumed nothing from since it started (a quiet table), or whose last offsets are not
records (transaction markers), is judged by :meth:`CommitOrder.refresh` on the timer: its fetch position reached
the high-water mark and the agent has been idle for a moment (nothing fetched is still waiting for it).

This assumes one ingest worker consumes all the CDC topics (the shipped deployment runs one replica): a worker
that owns only some of the partitions orders only those.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter, Gauge

from yibao.hisevents.order import EVERYTHING, CommitKey, PartitionState, release_bound
from yibao.ingest.handler import Held, IngestOutcome, load_held

__all__ = ["CommitOrder", "ConsumerView", "FaustConsumerView", "HELD", "HELD_TOTAL"]

log = logging.getLogger(__name__)

HELD = Gauge("yibao_ingest_held_events",
             "canonical events held back until HIS changes committed before them on other tables are handed on")
HELD_TOTAL = Counter("yibao_ingest_held_total",
                     "canonical events that were held back for HIS commit order across tables")

TP = tuple[str, int]
T = TypeVar("T")
#: runs one function in one database transaction (the worker's ``runtime.db``)
Db = Callable[[Callable[[Any], T]], Awaitable[T]]


class ConsumerView(Protocol):
    """What the release decision reads of the Kafka consumer."""

    def assignment(self) -> Iterable[Any]: ...

    def highwater(self, tp: Any) -> int | None: ...

    def delivered(self, tp: Any) -> int | None:
        """Offset of the last record of ``tp`` the consumer handed towards the agent (None: none yet) — or, after
        the consumer was set to an offset (start, rebalance), that offset: the next one it will read."""

    async def position(self, tp: Any) -> int | None:
        """The consumer's fetch position of ``tp``: the next offset it will hand on."""


class FaustConsumerView:
    """:class:`ConsumerView` over a faust app's consumer (aiokafka underneath)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def assignment(self) -> Iterable[Any]:
        try:
            return self.app.consumer.assignment()
        except Exception:  # not started, or between rebalances
            return ()

    def highwater(self, tp: Any) -> int | None:
        try:
            return self.app.consumer.highwater(tp)
        except Exception:
            return None

    def delivered(self, tp: Any) -> int | None:
        read = getattr(self.app.consumer, "_read_offset", None)  # faust: the last offset passed to the streams
        return read.get(tp) if read is not None else None

    async def position(self, tp: Any) -> int | None:
        try:
            return await asyncio.wait_for(self.app.consumer.position(tp), timeout=2.0)
        except Exception:
            return None


class CommitOrder:
    """The merge state of one ingest worker: per partition the frontier and how far it was consumed, and the held
    events' keys (their rows are in ``ingest_held``). Use under :attr:`lock`; update only after a commit."""

    def __init__(self, topics: Iterable[str], view: ConsumerView, *, batch: int = 1000,
                 idle_s: float = 0.5) -> None:
        self.topics = frozenset(topics)
        self.view = view
        self.batch = batch
        self.idle_s = idle_s
        self.lock = asyncio.Lock()
        self.held: list[Held] = []
        self.loaded = False
        self._frontier: dict[TP, CommitKey] = {}
        self._last: dict[TP, int] = {}  # last offset the agent consumed
        self._next: dict[TP, int] = {}  # consumed up to here (a later offset when the rest are not records)
        self._current: TP | None = None  # the partition of the record the agent is on
        self._busy_since: float | None = None
        self._idle_since = time.monotonic()

    # --- the agent ----------------------------------------------------------------------------------------------

    def consuming(self, topic: str, partition: int, offset: int) -> None:
        """The agent took this record: its partition is not caught up until the record is stored or parked."""
        tp = (topic, partition)
        self._current = tp
        self._busy_since = time.monotonic()
        self._last[tp] = max(offset, self._last.get(tp, -1))
        self._next[tp] = max(offset + 1, self._next.get(tp, 0))

    def placed(self, topic: str, partition: int, key: CommitKey | None) -> None:
        """The record being consumed has this place in commit order: its partition's frontier moves there."""
        if key is not None:
            self._frontier[(topic, partition)] = key

    def consumed(self) -> None:
        """The agent is done with its record (stored or parked)."""
        self._current = None
        self._busy_since = None
        self._idle_since = time.monotonic()

    # --- the decision -------------------------------------------------------------------------------------------

    def _assigned(self) -> list[Any]:
        return [tp for tp in self.view.assignment() if tp[0] in self.topics]

    def _caught_up(self, tp: Any, own: TP | None = None) -> bool:
        hw = self.view.highwater(tp)
        if hw is None:
            return False
        if hw == 0:
            return True  # nothing was ever written to it
        key = (tp[0], tp[1])
        if key == self._current and key != own:
            return False  # its record is not stored yet (``own``: it is, in the transaction this bound is for)
        delivered = self.view.delivered(tp)
        if delivered is not None and delivered >= hw:
            return True  # no record has that offset: the consumer was set there (a restart at the end of it)
        if delivered is not None and delivered > self._last.get(key, -1):
            return False  # records of it are on their way to the agent
        return self._next.get(key, -1) >= hw

    def states(self, own: TP | None = None) -> list[PartitionState]:
        return [PartitionState(self._frontier.get((tp[0], tp[1])), self._caught_up(tp, own))
                for tp in self._assigned()]

    def bound(self, own: TP | None = None) -> CommitKey:
        """The release bound now; ``own``: the partition of the record the agent is storing in the transaction
        the bound is for (that record counts as consumed)."""
        return release_bound(self.states(own)) if self._assigned() else EVERYTHING

    def releasable(self, bound: CommitKey) -> tuple[list[Held], CommitKey]:
        """The held events that may go now (at most ``batch``, key order) and the bound that leaves for new ones:
        lowered to the last one released when more were due than one batch takes."""
        out: list[Held] = []
        for h in self.held:
            if h.key > bound:
                break
            if len(out) >= self.batch:
                return out, out[-1].key
            out.append(h)
        return out, bound

    def applied(self, outcome: IngestOutcome) -> None:
        """After the transaction committed: forget what was released, remember what is now held."""
        if outcome.released_ids:
            n = len(outcome.released_ids)
            if tuple(h.id for h in self.held[:n]) == outcome.released_ids:
                del self.held[:n]  # a release is the front of the key order
            else:
                gone = set(outcome.released_ids)
                self.held = [h for h in self.held if h.id not in gone]
        if outcome.held:
            for h in outcome.held:
                bisect.insort(self.held, h)
            HELD_TOTAL.inc(len(outcome.held))
        HELD.set(len(self.held))

    async def load(self, db: Db) -> None:
        """Read the held events from the database unless the list in memory is known to be theirs (at start, and
        after a transaction whose outcome is unknown)."""
        if not self.loaded:
            self.loaded_from(await db(load_held))

    async def commit(self, db: Db, work: Callable[[Any], IngestOutcome]) -> IngestOutcome:
        """Run one transaction that holds or releases events and keep the list in memory in step with it. A call
        that fails may still have committed (the connection dropped while the COMMIT was under way, the worker was
        cancelled while its thread went on): its retry finds its events in the inbox and holds nothing, so the
        list is read again from the database before the next decision — else an event held by it would be missing
        from memory and a later change of its visit handed on first."""
        try:
            outcome = await db(work)
        except BaseException:
            self.loaded = False
            raise
        self.applied(outcome)
        return outcome

    def loaded_from(self, held: list[Held]) -> None:
        self.held = sorted(held)
        self.loaded = True
        HELD.set(len(self.held))

    # --- the timer ----------------------------------------------------------------------------------------------

    def idle(self) -> bool:
        return self._busy_since is None and time.monotonic() - self._idle_since >= self.idle_s

    async def refresh(self) -> None:
        """Partitions that are not caught up by what the agent consumed but have nothing left to deliver — quiet
        since the worker started, or ending in offsets that are no records (transaction markers): caught up once
        the fetch position reached the high-water mark while the agent was idle."""
        if not self.idle():
            return
        for tp in self._assigned():
            if self._caught_up(tp):
                continue
            hw = self.view.highwater(tp)
            if hw is None:
                continue
            delivered = self.view.delivered(tp)
            key = (tp[0], tp[1])
            if delivered is not None and self._last.get(key, -1) < delivered < hw:
                continue
            position = await self.view.position(tp)
            if position is not None and position >= hw and self.idle():
                self._next[key] = max(self._next.get(key, 0), position)
