"""The chain engine: it owns the state and the I/O; a chain only decides.

One **unit of work** is one transaction. A unit locks the visit's row, takes its typed state (from the unit before
it, or loaded when a message changed it since), applies what happened — a message absorbed, or the answer to the
call the previous unit sent — then asks the chain what to do next, again and again while the answer is a local
:class:`~yibao.chains.model.Change`, and writes everything in the same transaction: the state, the status, the
outbox messages, the call log, and, when the next action is a platform call, its journal row (``chain_calls``,
status ``sent``, with its msgid) — *before* the call is sent. So a platform call costs one transaction: the one that
records its outcome also journals the next call.

Guarantees:

* **journal before send** — a call is sent only after the transaction journalling it committed;
* **outcome, state and results in one transaction** — a crash leaves either all of them or none;
* **unknown outcomes** — a journalled call whose outcome is not known (a lost answer, a worker killed mid-call)
  is resolved before the visit does anything else, the way the catalog says for that transaction
  (:attr:`yibao.envelope.catalog.fields.TransactionSpec.resolution`): sent again (``retry``), looked up with the
  chain's :class:`~yibao.chains.model.Lookup` and adopted (``query``), or — when the lookup finds no trace of a
  reversible transaction — 冲正 2601 first (``query_then_reverse``, ``reverse``); anything else is parked;
* **one driver per visit** across replicas: a lease on the row (claimed in batches, or taken by a driver's first
  unit when nobody holds it; renewed in one statement for every visit a worker holds, checked by every unit — a
  worker that lost it writes nothing);
* **transient failures** back off exponentially; after ``max_attempts`` the visit is **parked** (``on_parked``, a
  dead letter; ``yibao replay chains`` brings it back);
* **database outages** are not the work's fault: the unit waits for the database and runs again, spending no
  attempt; an answer already received is kept in memory meanwhile and written when the database is back.

A message absorbed into a visit nobody is driving is decided right in the absorbing transaction: local changes,
Idle and Wait cost nothing more; a visit that needs the platform is made ready for a driver — once the absorbing
transaction committed, one of this worker's drivers starts on it at once when the in-flight limit has room (its
first unit takes the free lease: no claim transaction, no wait for the scheduler), else the scheduler claims it
when a slot frees.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Connection

from yibao.chains import metrics
from yibao.chains.errors import ChainDefinitionError, ConcurrentChange, is_outage
from yibao.chains.model import (
    Absorption,
    Call,
    Chain,
    ChainState,
    Change,
    Effects,
    Idle,
    Park,
    Refusal,
    Reply,
    Wait,
)
from yibao.chains.ports import CallLogBuffer, PlatformClient
from yibao.chains.state import JsonStateStore, StateStore
from yibao.chains.store import CallRow, ChainStore, VisitRow, dumps_state
from yibao.core import clock
from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.messaging.inbox import first_times
from yibao.core.privacy import mask_text
from yibao.envelope.calllog import row_values, write_rows
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome

__all__ = ["ChainEngine", "EngineSettings", "REVERSAL"]

log = logging.getLogger(__name__)
S = TypeVar("S", bound=ChainState)
T = TypeVar("T")
Db = Callable[[Callable[[Connection], T]], Awaitable[T]]

REVERSAL = "2601"
_MAX_LOCAL_CHANGES = 200  #: local changes decided in one unit before the visit is handed back to the scheduler


@dataclass
class EngineSettings:
    concurrency: int = 16  #: visits one worker drives at once: the in-flight limit (``yibao_chain_in_flight``)
    lease_s: float = 60.0
    poll_interval_s: float = 0.5
    max_attempts: int = 8  #: transient failures before a visit is parked
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 300.0
    outage_backoff_max_s: float = 10.0  #: longest wait between tries while the database is unreachable


# --- what flows between units --------------------------------------------------------------------------------------

Purpose = Literal["step", "query", "reversal"]


@dataclass(frozen=True)
class _Send:
    """A journalled call, to be sent after its unit committed."""

    purpose: Purpose
    call: Call[Any]  #: the chain's call (for a query or a reversal: the call being resolved)
    journal_id: int
    msgid: str
    infno: str  #: what is actually sent
    input: dict[str, Any]
    pending: CallRow | None = None  #: the unresolved call a query or a reversal is about


@dataclass
class _Outcome:
    send: _Send
    result: Literal["ok", "rejected", "invalid", "unknown", "not_sent"]
    output: dict[str, Any] = field(default_factory=dict)
    exc: BaseException | None = None
    log: CallLogBuffer = field(default_factory=CallLogBuffer)

    @property
    def text(self) -> str:
        exc = self.exc
        if isinstance(exc, BusinessRejection):
            return mask_text(exc.err_msg or "")
        if exc is None:
            return ""
        detail = getattr(exc, "detail", None) or str(exc)
        return f"{type(exc).__name__}: {mask_text(detail)}"


@dataclass
class _Held(Generic[S]):
    """What a driver keeps of its visit between units: the state as the last unit wrote it."""

    row: VisitRow
    state: S


@dataclass
class _Next:
    held: _Held[Any] | None
    send: _Send | None = None
    lost_lease: bool = False


class _Unit(Generic[S]):
    """One transaction's work on one visit."""

    def __init__(self, engine: ChainEngine[S], conn: Connection, row: VisitRow, state: S, now: _dt.datetime,
                 *, driving: bool) -> None:
        self.engine, self.conn, self.row, self.state, self.now = engine, conn, row, state, now
        self.driving = driving  #: a driver holding the lease (may send); else an absorbing consumer
        self.fx = Effects(engine.service, row.key, row.kind, now, row.version)
        self.status, self.next_at = row.status, None if row.status in ("idle", "parked") else now
        self.attempts = row.attempts
        self.keep_lease = driving
        self.last_error: str | None = None
        self.clear_error = False
        self.touched = False
        self.send: _Send | None = None
        self.log_rows: list[dict[str, Any]] = []
        self.done = False
        self.open_call = row.open_call  #: the step call journalled whose outcome is not known yet
        self._pending: CallRow | None | bool = False  # False: not looked up yet

    # the status the unit ends with
    def settle(self, status: str, at: _dt.datetime | None, *, keep_lease: bool = False) -> None:
        self.status, self.next_at, self.keep_lease, self.done = status, at, keep_lease, True

    def pending(self) -> CallRow | None:
        """The journalled step call whose outcome is not known (a lost answer, a worker killed mid-call)."""
        if self.open_call is None:
            return None
        if self._pending is False:
            self._pending = self.engine.store.call(self.conn, self.open_call)
        return self._pending  # type: ignore[return-value]

    def ended(self) -> None:
        """The open call's outcome is known now (answered, refused, or resolved)."""
        self.open_call, self._pending = None, False

    def progressed(self) -> None:
        """The open call stays open (its resolution goes on): read its row again when needed."""
        self._pending = False


# --- the engine -------------------------------------------------------------------------------------------------------


class ChainEngine(Generic[S]):
    def __init__(self, chain: Chain[S], *, db: Db[Any], client: PlatformClient | None, catalog: Any,
                 store: StateStore[S] | None = None, settings: EngineSettings | None = None,
                 topic_prefix: str = "", outages: Any = None) -> None:
        self.chain = chain
        self.service = chain.service
        self.db = db
        self.client = client
        self.catalog = catalog
        self.states: StateStore[S] = store or getattr(chain, "store", None) or JsonStateStore(
            type(chain.new_state("", "outpatient")))
        self.settings = settings or EngineSettings()
        self.store = ChainStore(self.service, topic_prefix=topic_prefix)
        self.owner = f"{self.service}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        #: visits claimed again while their driver was finishing: driven again once it has (else the new lease
        #: would sit unrenewed and undriven until it lapsed)
        self._again: set[str] = set()
        self._outage_since: float | None = None
        self._scheduling = False  #: :meth:`run` is scheduling: absorbed work may be handed to a driver directly
        self._claiming = 0  #: room a claim under way may fill (handoffs leave it alone)
        #: due work may wait for room: the last claim filled every free slot, or the limit turned work away (a
        #: driver that ends then wakes the scheduler; else nothing waits for its slot and no claim is spent on it)
        self._starved = True
        #: the worker's OutageWatch (yibao.core.failures): readiness says what the engine waits for
        self.outages = outages
        metrics.IN_FLIGHT_LIMIT.labels(self.service).set(self.settings.concurrency)

    # ==============================================================================================================
    # absorbing messages
    # ==============================================================================================================

    async def absorb(self, absorptions: Sequence[Absorption[S]]) -> list[bool]:
        """Apply incoming messages to their visits once each, in one transaction; which were new (not duplicates).
        Waits through a database outage."""
        flags, after = await self._unit_with_retries(lambda conn: self.absorb_in(conn, absorptions))
        metrics.TRANSACTIONS.labels(self.service, "absorb").inc()
        for fn in after:
            fn()
        return flags

    def absorb_in(self, conn: Connection, absorptions: Sequence[Absorption[S]], *,
                  states: dict[str, S] | None = None) -> tuple[list[bool], list[Callable[[], None]]]:
        """:meth:`absorb` in the caller's transaction; returns the flags and what to run once it commits. ``states``,
        when given, receives each changed visit's state as this transaction writes it (a caller answering with it
        need not read it back)."""
        flags: list[bool] = []
        groups: OrderedDict[str, list[Absorption[S]]] = OrderedDict()
        for a, fresh in zip(absorptions, first_times(conn, self.service, [a.message_id for a in absorptions])):
            flags.append(fresh)
            if fresh:
                groups.setdefault(a.visit_key, []).append(a)
        after: list[Callable[[], None]] = []
        now = clock.now()
        for key, items in groups.items():
            row = self.store.lock(conn, key)
            if row is None:
                state = self.chain.new_state(key, items[0].visit_kind)
                row = self.store.create(conn, key, items[0].visit_kind, self.states.dump(conn, key, state))
            else:
                state = self.states.load(conn, key, row.kind, row.state)
            unit = _Unit(self, conn, row, state, now, driving=False)
            for a in items:
                a.apply(unit.state, unit.fx)
            unit.touched = True
            held_elsewhere = row.lease_owner is not None and row.lease_until is not None and row.lease_until > now
            if row.status == "parked":
                unit.settle("parked", None)
            elif held_elsewhere:  # its driver decides when its call is answered (it reloads: the version moves)
                unit.settle("ready", now, keep_lease=True)
            else:
                self._decide(unit)
            self._finish(unit)
            if states is not None:
                states[key] = unit.state
            after.extend(unit.fx.after)
            if unit.status == "ready" and not held_elsewhere:
                # a driver has work: once this commits, one of this worker's drivers takes it at once if the
                # in-flight limit allows (no claim transaction), else the scheduler claims it
                after.append(functools.partial(self._handoff, key))
        return flags, after

    def _handoff(self, key: str) -> None:
        """A visit this worker's absorbing made ready (its transaction committed): drive it now when the in-flight
        limit allows — the driver's first unit takes the lease if nobody holds it (:meth:`_drive_unit`) —, else
        wake the scheduler. Only while :meth:`run` schedules (a worker that has not started driving yet, or has
        stopped, leaves it to the scheduler)."""
        if (self._scheduling and self.client is not None
                and len(self._running) + self._claiming < self.settings.concurrency):
            metrics.HANDOFFS.labels(self.service).inc()
            self._start(key)
        else:
            self._starved = True
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    # ==============================================================================================================
    # the scheduler
    # ==============================================================================================================

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Claim due visits and drive them, until ``stopping`` is set (or the task is cancelled)."""
        if self.client is None:
            raise ChainDefinitionError("the engine has no platform client")
        stopping = stopping or asyncio.Event()
        renewer = asyncio.create_task(self._renew_leases(stopping))
        last_gauges = 0.0
        self._scheduling = True
        try:
            while not stopping.is_set():
                # cleared before claiming, not after: a commit that wakes the scheduler while it claims is not lost
                # (its visit would otherwise wait a whole poll interval)
                self._wake.clear()
                claimed = await self._claim()
                if time.monotonic() - last_gauges > 5:
                    last_gauges = time.monotonic()
                    await self._refresh_gauges()
                if claimed == 0 or len(self._running) >= self.settings.concurrency:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
                    except asyncio.TimeoutError:
                        pass
        finally:
            self._scheduling = False
            renewer.cancel()
            tasks = list(self._running.values())
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(renewer, return_exceptions=True)

    async def _claim(self) -> int:
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            self._starved = True
            return 0
        self._claiming = free  # room a claim may fill: no handoff takes it meanwhile
        try:
            keys = await self.db(lambda c: self.store.claim_due(c, self.owner, limit=free,
                                                                lease_s=self.settings.lease_s))
        except Exception as exc:
            await self._database_trouble(exc, "claiming visits")
            return 0
        finally:
            self._claiming = 0
        self._starved = len(keys) >= free  # a full claim may have left due visits behind
        metrics.TRANSACTIONS.labels(self.service, "claim").inc()
        self._database_back()
        for key in keys:
            self._start(key)
        return len(keys)

    def _start(self, key: str) -> None:
        if key in self._running:
            # its driver committed its last unit (the lease released) but has not ended yet, and this claim took
            # the visit again: the running driver will not look at it again, so a new one starts when it ends
            self._again.add(key)
            return
        task = asyncio.create_task(self._drive(key))
        self._running[key] = task
        metrics.IN_FLIGHT.labels(self.service).set(len(self._running))

    async def drain(self, *, timeout: float = 60.0) -> None:
        """Drive until no visit is due (tests and the demo); raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self._claim()
            if not self._running:
                return
            await asyncio.wait(list(self._running.values()), timeout=max(0.0, deadline - time.monotonic()))
        raise TimeoutError("chains still have due work")

    async def _renew_leases(self, stopping: asyncio.Event) -> None:
        every = max(0.5, self.settings.lease_s / 3)
        while not stopping.is_set():
            await asyncio.sleep(every)
            keys = list(self._running)
            if keys:
                try:
                    await self.db(lambda c: self.store.renew(c, keys, self.owner, self.settings.lease_s))
                    metrics.TRANSACTIONS.labels(self.service, "renew").inc()
                except Exception:
                    log.warning("chain leases not renewed (the database?)", extra={"fields": {"service": self.service}})

    async def _refresh_gauges(self) -> None:
        try:
            counts = await self.db(self.store.count_by_status)
        except Exception:
            return
        metrics.PARKED_OPEN.labels(self.service).set(counts.get("parked", 0))
        for status in ("ready", "idle", "waiting", "parked"):
            metrics.VISITS_BY_STATUS.labels(self.service, status).set(counts.get(status, 0))

    # ==============================================================================================================
    # driving one visit
    # ==============================================================================================================

    async def _drive(self, key: str) -> None:
        held: _Held[S] | None = None
        outcome: _Outcome | None = None
        spare: str | None = None
        cancelled = False
        try:
            while True:
                if spare is None:
                    spare = await self.client.allocate_msgid()  # type: ignore[union-attr]
                msgid, sent_outcome = spare, outcome
                nxt, after = await self._unit_with_retries(self._once_with(held, key, sent_outcome, msgid))
                metrics.TRANSACTIONS.labels(self.service, "drive").inc()
                for fn in after:
                    fn()
                outcome = None
                if nxt.send is None:
                    return
                held = nxt.held
                if nxt.send.msgid == spare:
                    spare = None
                outcome = await self._send(key, nxt.send)
        except asyncio.CancelledError:  # the worker stops: let another take the visit now (its call is journalled)
            cancelled = True
            try:
                await asyncio.shield(self.db(lambda c: self.store.release(c, [key], self.owner)))
            except Exception:
                pass
            raise
        except Exception as exc:  # a bug in a chain (or the engine): back off, park after the attempts
            log.exception("chain driver failed; the visit backs off", extra={"fields": {"service": self.service}})
            reason = f"driver error: {type(exc).__name__}: {mask_text(str(exc))}"
            try:
                _, after = await self._unit_with_retries(lambda conn: self._fail_unit(conn, key, reason),
                                                         give_up_s=30.0)
                metrics.TRANSACTIONS.labels(self.service, "failure").inc()
                for fn in after:
                    fn()
            except Exception:
                log.exception("could not record the driver failure; the lease will lapse")
        finally:
            self._running.pop(key, None)
            if key in self._again:
                self._again.discard(key)
                if not cancelled:
                    self._start(key)
            metrics.IN_FLIGHT.labels(self.service).set(len(self._running))
            if self._starved:  # capacity is free again, and due work may have waited for it
                self._wake.set()

    async def _unit_with_retries(self, fn: Callable[[Connection], T], *, give_up_s: float | None = None) -> T:
        """Run one unit; through a database outage, wait and run it again (no attempt spent)."""
        started = time.monotonic()
        conflicts = 0
        while True:
            try:
                result = await self.db(fn)
            except ConcurrentChange:
                conflicts += 1
                if conflicts > 20:
                    raise
                continue
            except Exception as exc:
                if not is_outage(exc) or (give_up_s is not None and time.monotonic() - started > give_up_s):
                    raise
                await self._database_trouble(exc, "a unit of work")
                continue
            self._database_back()
            return result

    async def _database_trouble(self, exc: BaseException, what: str) -> None:
        """Wait out an outage (the worker's OutageWatch backs off and tells readiness); anything else is a bug of
        the scheduler's own: logged, then a pause."""
        if not is_outage(exc):
            log.exception("chain scheduler failed", extra={"fields": {"service": self.service, "during": what}})
            await asyncio.sleep(self.settings.poll_interval_s * 4)
            return
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            metrics.DATABASE_OUTAGE.labels(self.service).set(1)
        if self.outages is not None:
            from yibao.core.failures import classify

            await self.outages.wait("chains", classify(exc))
            return
        self._outage_waits = getattr(self, "_outage_waits", 0) + 1
        await asyncio.sleep(min(self.settings.outage_backoff_max_s, 0.1 * 2 ** min(self._outage_waits, 10)))

    def _database_back(self) -> None:
        if self._outage_since is not None:
            self._outage_since = None
            self._outage_waits = 0
            metrics.DATABASE_OUTAGE.labels(self.service).set(0)
            if self.outages is not None:
                self.outages.recovered("chains")

    @property
    def database_outage(self) -> bool:
        return self._outage_since is not None

    def _once_with(self, held: _Held[S] | None, key: str, outcome: _Outcome | None, msgid: str
                   ) -> Callable[[Connection], tuple[_Next, list[Callable[[], None]]]]:
        """The drive unit, handed the state the last commit left in memory only the first time it runs: a unit run
        again (its commit was lost to an outage, or a concurrent change) reloads the state that is committed — the
        held one may carry what the failed run's handlers did, and handlers applied to it again would skip the
        messages and results they emit only once (a settlement booked, HIS never told)."""
        first = [held]

        def unit(conn: Connection) -> tuple[_Next, list[Callable[[], None]]]:
            state, first[0] = first[0], None
            return self._drive_unit(conn, key, state, outcome, msgid)

        return unit

    def _drive_unit(self, conn: Connection, key: str, held: _Held[S] | None, outcome: _Outcome | None,
                    msgid: str) -> tuple[_Next, list[Callable[[], None]]]:
        row = self.store.lock(conn, key)
        first = held is None and outcome is None
        if row is not None and first and row.lease_owner != self.owner and (
                row.lease_owner is None or row.lease_until is None or row.lease_until <= clock.now()):
            # a driver's first unit takes a lease nobody holds — a visit handed over by this worker's absorbing
            # (:meth:`_handoff`) or left by a driver that finished —, as a claim would; the row lock makes the
            # take exclusive, and this unit's write keeps the lease while its call is out (or frees it)
            row.lease_owner = self.owner
        if row is None or row.lease_owner != self.owner:
            if first:  # another worker drives it: nothing of ours to do
                return _Next(None), []
            if outcome is not None:  # the lease lapsed mid-call: the next driver resolves the call from the journal
                log.warning("lease lost during a call; its outcome is left to the journal", extra={"fields": {
                    "service": self.service, "infno": outcome.send.infno, "msgid": outcome.send.msgid}})
            return _Next(None, lost_lease=True), []
        if row.status == "parked":
            self.store.release(conn, [key], self.owner)
            return _Next(None), []
        if held is not None and held.row.version == row.version:
            state = held.state
        else:
            state = self.states.load(conn, key, row.kind, row.state)
        unit = _Unit(self, conn, row, state, clock.now(), driving=True)
        if outcome is not None:
            self._apply(unit, outcome)
        if not unit.done:
            self._decide(unit, msgid)
        self._finish(unit)
        return _Next(_Held(unit.row, unit.state), unit.send), unit.fx.after

    def _fail_unit(self, conn: Connection, key: str, reason: str) -> tuple[None, list[Callable[[], None]]]:
        row = self.store.lock(conn, key)
        if row is None or row.lease_owner != self.owner or row.status == "parked":
            return None, []
        state = self.states.load(conn, key, row.kind, row.state)
        unit = _Unit(self, conn, row, state, clock.now(), driving=True)
        self._backoff(unit, reason)
        self._finish(unit)
        return None, unit.fx.after

    # ==============================================================================================================
    # deciding (inside a unit)
    # ==============================================================================================================

    def _decide(self, u: _Unit[S], msgid: str | None = None) -> None:
        """Ask the chain what to do until it is a call, a wait, idle or a park; apply local changes meanwhile."""
        for _ in range(_MAX_LOCAL_CHANGES):
            action = self.chain.next_action(u.state, u.now)
            if isinstance(action, Park):  # before resolving: a Park never supersedes a pending call
                self._park(u, action.reason_code, action.reason)
                return
            pending = u.pending()
            if pending is not None:
                if not isinstance(action, Call) or action.name != pending.step:
                    # the state no longer asks for that call (it moved on another way): nothing to redo
                    self.store.close_call(u.conn, pending.id, "resolved", resolution="superseded")
                    u.ended()
                    self._resolved(u, pending, "superseded")
                    continue
                if self._resolve(u, action, pending, msgid):
                    return
                continue
            if isinstance(action, Change):
                if action.gathers and not u.driving:
                    u.settle("ready", u.now)  # a driver gathers it, with whatever arrives meanwhile
                    return
                action.apply(u.state, u.fx)
                u.touched = True
                continue
            if isinstance(action, Idle):
                u.settle("idle", None)
                return
            if isinstance(action, Wait):
                u.settle("waiting", action.until)
                return
            assert isinstance(action, Call), action
            if not u.driving or msgid is None:
                u.settle("ready", u.now)  # a driver sends it
                return
            self._journal(u, "step", action, action.infno, action.input, msgid)
            return
        log.warning("a chain decided many local changes in a row; handing the visit back to the scheduler",
                    extra={"fields": {"service": self.service}})
        u.settle("ready", u.now)

    def _resolve(self, u: _Unit[S], call: Call[Any], pending: CallRow, msgid: str | None) -> bool:
        """The next step of resolving ``pending`` (the chain still wants the same call). True when the unit ends
        here (a query or a reversal to send, a park); False when it was resolved locally (decide again)."""
        spec = self.catalog.transaction(call.infno)
        how = spec.resolution
        if how == "manual":
            self._park(u, "unknown_outcome", f"{call.infno} answer lost (msgid {pending.msgid}) and the catalog gives "
                                             "no way to resolve it: a person must check the platform")
            return True
        if how == "retry":
            self.store.close_call(u.conn, pending.id, "resolved", resolution="retried")
            u.ended()
            self._resolved(u, pending, "retried")
            return False
        if how in ("query", "query_then_reverse") and pending.resolution is None:
            lookup = call.lookup
            query = spec.lost_answer.query if spec.lost_answer else None
            if lookup is None or lookup.infno != query:
                raise ChainDefinitionError(
                    f"{call.infno}: the catalog resolves a lost answer with {query}, the chain's lookup is "
                    f"{lookup.infno if lookup else 'missing'}")
            if not u.driving or msgid is None:
                u.settle("ready", u.now)
                return True
            self._journal(u, "query", call, lookup.infno, lookup.input, msgid, pending=pending)
            return True
        # reverse (or query_then_reverse after the lookup found no trace): 2601 the lost msgid, then send again
        if not call.psn_no or not pending.msgid:
            self._park(u, "unknown_outcome", f"{call.infno} answer lost (msgid {pending.msgid}) and no psn_no to "
                                             "reverse it with (2601): a person must check the platform")
            return True
        if not u.driving or msgid is None:
            u.settle("ready", u.now)
            return True
        self._journal(u, "reversal", call, REVERSAL, {}, msgid, pending=pending)
        return True

    def _journal(self, u: _Unit[S], purpose: Purpose, call: Call[Any], infno: str, body: dict[str, Any],
                 msgid: str, *, pending: CallRow | None = None) -> None:
        """Journal the call (and its call-log row) in this unit; it is sent once the unit commits."""
        step = call.name if purpose == "step" else f"{'query' if purpose == 'query' else REVERSAL}:{call.infno}"
        journal_id = self.store.open_call(u.conn, u.row.key, step=step, infno=infno, msgid=msgid, purpose=purpose)
        u.log_rows.append({"service": self.service, "platform": getattr(self.client, "platform", "national"),
                           "infno": infno, "msgid": msgid,
                           "visit_key": u.row.key, "started_at": u.now, "outcome": "sent",
                           "omsgid": pending.msgid if purpose == "reversal" and pending else None,
                           "oinfno": call.infno if purpose == "reversal" else None})
        if purpose == "step":
            u.open_call = journal_id
        u.send = _Send(purpose, call, journal_id, msgid, infno, body, pending)
        u.settle("ready", u.now, keep_lease=True)

    # ==============================================================================================================
    # applying an answer (inside a unit)
    # ==============================================================================================================

    def _apply(self, u: _Unit[S], out: _Outcome) -> None:
        for record, input_obj, output_obj in out.log.records:
            u.log_rows.append(row_values(record, input_obj=input_obj, output_obj=output_obj))
        send = out.send
        if send.purpose == "step":
            self._apply_step(u, out)
        elif send.purpose == "query":
            self._apply_query(u, out)
        else:
            self._apply_reversal(u, out)

    def _apply_step(self, u: _Unit[S], out: _Outcome) -> None:
        send, call = out.send, out.send.call
        if out.result == "ok":
            call.on_ok(u.state, Reply(out.output, send.msgid), u.fx)
            self.store.close_call(u.conn, send.journal_id, "ok")
            u.ended()
            self._succeeded(u)
        elif out.result in ("rejected", "invalid"):
            assert isinstance(out.exc, (BusinessRejection, EnvelopeValidationError))
            call.on_refused(u.state, Refusal.of(out.exc), u.fx)
            self.store.close_call(u.conn, send.journal_id, out.result, err_msg=out.text)
            u.ended()
            self._succeeded(u)
        elif out.result == "unknown":
            # counts as a failed attempt: the resolution waits for the backoff, so a platform that keeps losing
            # answers is not hammered, and the visit is parked after max_attempts
            self.store.close_call(u.conn, send.journal_id, "unknown", err_msg=out.text)
            u.progressed()
            service, infno = self.service, send.infno
            u.fx.after_commit(lambda: metrics.UNKNOWN_OUTCOMES.labels(service, infno, "unresolved").inc())
            log.warning("unknown outcome; resolving it before anything else", extra={"fields": {
                "service": self.service, "infno": send.infno, "msgid": send.msgid,
                "resolution": self.catalog.transaction(send.infno).resolution}})
            self._backoff(u, f"{send.infno}: outcome unknown: {out.text}")
        else:
            # nothing reached the platform: the call is not open (it is decided and journalled anew)
            self.store.close_call(u.conn, send.journal_id, "not_sent", err_msg=out.text)
            u.ended()
            self._backoff(u, f"{send.infno}: {out.text}")

    def _apply_query(self, u: _Unit[S], out: _Outcome) -> None:
        send, call, pending = out.send, out.send.call, out.send.pending
        assert pending is not None and call.lookup is not None
        if out.result == "ok":
            self.store.close_call(u.conn, send.journal_id, "ok")
            adopted = call.lookup.found(out.output, pending.msgid or "")
            if adopted is not None:
                call.on_ok(u.state, Reply(adopted, pending.msgid or "", adopted=True), u.fx)
                self.store.close_call(u.conn, pending.id, "resolved", resolution="adopted")
                u.ended()
                self._resolved(u, pending, "adopted")
                self._succeeded(u)
                return
            self._absent(u, call, pending)
        elif out.result == "rejected" and self.catalog.says("not_found", out.text):
            self.store.close_call(u.conn, send.journal_id, "rejected", err_msg=out.text)
            self._absent(u, call, pending)
        else:  # the lookup itself failed (or answered something that is not "no such record"): try again later
            status = {"rejected": "rejected", "invalid": "invalid"}.get(out.result, "not_sent")
            self.store.close_call(u.conn, send.journal_id, status, err_msg=out.text)
            self._backoff(u, f"lookup {send.infno} of a lost {call.infno}: {out.text}")

    def _absent(self, u: _Unit[S], call: Call[Any], pending: CallRow) -> None:
        """The lookup found no trace of the lost call: send it again — after 2601 when it is reversible."""
        if self.catalog.transaction(call.infno).resolution == "query_then_reverse":
            self.store.close_call(u.conn, pending.id, "unknown", resolution="absent")
            u.progressed()
        else:
            self.store.close_call(u.conn, pending.id, "resolved", resolution="absent")
            self._resolved(u, pending, "absent")
            u.ended()

    def _apply_reversal(self, u: _Unit[S], out: _Outcome) -> None:
        send, call, pending = out.send, out.send.call, out.send.pending
        assert pending is not None
        if out.result == "ok":
            self.store.close_call(u.conn, send.journal_id, "ok")
            self.store.close_call(u.conn, pending.id, "resolved", resolution="reversed")
            u.ended()
            self._resolved(u, pending, "reversed")
        elif out.result == "rejected" and self.catalog.says("reversal_nothing_done", out.text):
            self.store.close_call(u.conn, send.journal_id, "rejected", err_msg=out.text)
            self.store.close_call(u.conn, pending.id, "resolved", resolution="nothing_done")
            u.ended()
            self._resolved(u, pending, "nothing_done")
        elif out.result == "rejected":
            self.store.close_call(u.conn, send.journal_id, "rejected", err_msg=out.text)
            service, infno = self.service, call.infno
            u.fx.after_commit(lambda: metrics.UNKNOWN_OUTCOMES.labels(service, infno, "manual").inc())
            self._park(u, "unknown_outcome", f"{call.infno} outcome unknown (msgid {pending.msgid}) and 2601 refused: "
                                             f"{out.text}")
        else:  # the reversal's own outcome is unknown, or it was not sent: try it again later
            self.store.close_call(u.conn, send.journal_id, "not_sent" if out.result != "unknown" else "unknown",
                                  err_msg=out.text)
            self._backoff(u, f"2601 of {call.infno}: {out.text}")

    def _succeeded(self, u: _Unit[S]) -> None:
        u.touched = True
        u.attempts = 0
        u.clear_error = True

    def _resolved(self, u: _Unit[S], pending: CallRow, resolution: str) -> None:
        service, infno, msgid = self.service, pending.infno, pending.msgid

        def count() -> None:
            metrics.UNKNOWN_OUTCOMES.labels(service, infno, resolution).inc()
            log.info("unknown outcome resolved", extra={"fields": {
                "service": service, "infno": infno, "msgid": msgid, "resolution": resolution}})

        u.fx.after_commit(count)

    # ==============================================================================================================
    # backoff and parking (inside a unit)
    # ==============================================================================================================

    def _backoff(self, u: _Unit[S], reason: str) -> None:
        attempts = u.row.attempts + 1
        if attempts >= self.settings.max_attempts:
            self._park(u, "exhausted", f"gave up after {attempts} attempts: {reason}")
            return
        delay = min(self.settings.retry_backoff_max_s, self.settings.retry_backoff_s * 2 ** (attempts - 1))
        u.attempts, u.last_error = attempts, mask_text(reason)
        u.settle("waiting", u.now + _dt.timedelta(seconds=delay))

    def _park(self, u: _Unit[S], reason_code: str, reason: str) -> None:
        """Park the visit. The chain records it first (``on_parked``: its state, HIS told); when that fails too —
        often the very cause of the parking — its partial work is dropped and the visit is parked all the same: a
        visit that cannot even be parked would otherwise be driven, fail and back off forever."""
        reason = mask_text(reason)
        trial, fx = u.state.model_copy(deep=True), u.fx.fork()
        try:
            self.chain.on_parked(trial, fx, reason_code, reason)
            u.state, u.fx = trial, fx
        except Exception as exc:
            u.fx.after_commit(lambda: metrics.PARK_RECORD_FAILURES.labels(self.service).inc())
            log.exception("recording the parking failed; the visit is parked without it",
                          extra={"fields": {"service": self.service, "reason_code": reason_code}})
            reason = f"{reason} (recording the parking failed too: {type(exc).__name__}: {mask_text(str(exc))})"
        letter = DeadLetter.of(service=self.service, reason_code=reason_code, reason=reason, topic=None,
                               partition=None, offset=None, key=u.row.key.encode(),
                               value=dumps_state({"visit_key": u.row.key, "visit_kind": u.row.kind}).encode(),
                               attempts=u.row.attempts + 1)
        u.fx.emit("dlq", _Letter(message_id=f"parked:{u.row.key}:{u.row.version}", letter=letter))
        u.touched = True
        u.attempts, u.last_error = u.row.attempts + 1, reason
        u.settle("parked", None)
        service = self.service
        u.fx.after_commit(lambda: log.warning("visit parked", extra={"fields": {
            "service": service, "reason_code": reason_code, "reason": reason}}))

    # ==============================================================================================================
    # writing (inside a unit)
    # ==============================================================================================================

    def _finish(self, u: _Unit[S]) -> None:
        conn, row = u.conn, u.row
        # a unit that ran a handler writes the state and moves the version (its side tables may have changed even
        # when the JSON did not): a driver holding the visit then reloads it
        text = self.states.dump(conn, row.key, u.state) if u.touched else None
        lease_owner = self.owner if u.keep_lease and u.driving else (row.lease_owner if u.keep_lease else None)
        lease_until = (u.now + _dt.timedelta(seconds=self.settings.lease_s) if u.keep_lease and u.driving
                       else (row.lease_until if u.keep_lease else None))
        self.store.write(conn, row, state=text, status=u.status, next_attempt_at=u.next_at, attempts=u.attempts,
                         lease_owner=lease_owner, lease_until=lease_until, open_call=u.open_call,
                         last_error=u.last_error, clear_error=u.clear_error)
        self.store.emit(conn, u.fx.emissions)
        if u.log_rows:
            write_rows(conn, u.log_rows)

    # ==============================================================================================================
    # sending (outside any transaction)
    # ==============================================================================================================

    async def _send(self, key: str, send: _Send) -> _Outcome:
        client = self.client
        assert client is not None
        out = _Outcome(send, "ok")
        call = send.call
        metrics.CALLS_SENT.labels(self.service, send.purpose).inc()
        started = time.perf_counter()
        try:
            if send.purpose == "reversal":
                assert send.pending is not None
                reply = await client.reverse(call.psn_no or "", send.pending.msgid or "", call.infno,
                                             insuplc_admdvs=call.insuplc_admdvs, visit_key=key, msgid=send.msgid,
                                             call_log=out.log)
            else:
                reply = await client.call(send.infno, send.input, visit_key=key, msgid=send.msgid,
                                          insuplc_admdvs=call.insuplc_admdvs,
                                          read_timeout_s=call.read_timeout_s if send.purpose == "step" else None,
                                          call_log=out.log)
            output = reply.output
            out.output = dict(output) if isinstance(output, dict) else {}
        except BusinessRejection as exc:
            # a session signed out or expired (another worker's 9002, midnight) is refused before the transaction
            # runs: nothing happened, so the call is journalled anew under a new msgid once the client signed in
            signed_out = ("sign_in_invalid" in self.catalog.wording_lists  # platforms without a sign-in have none
                          and self.catalog.says("sign_in_invalid", exc.err_msg))
            out.result, out.exc = ("not_sent" if signed_out else "rejected"), exc
        except EnvelopeValidationError as exc:
            out.result, out.exc = "invalid", exc
        except UnknownOutcome as exc:
            out.result, out.exc = "unknown", exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # nothing reached the platform (or the gateway refused it)
            out.result, out.exc = "not_sent", exc
        finally:
            metrics.STEP_SECONDS.labels(self.service, send.infno).observe(time.perf_counter() - started)
        return out


class _Letter:
    """Adapts a DeadLetter to an emission's message (message_id + to_json)."""

    def __init__(self, *, message_id: str, letter: DeadLetter) -> None:
        self.message_id = message_id
        self.letter = letter

    def to_json(self) -> bytes:
        return self.letter.to_bytes()
