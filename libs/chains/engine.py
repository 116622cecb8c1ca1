"""The chain engine: absorb messages into visits, lease and drive visits with work, resolve unknown outcomes.

Concurrency and crash safety, in short:

* a visit is driven by one driver at a time across all replicas (a lease on its row, renewed each step);
* every platform call is journalled (``chain_calls``, status ``sent``, with its msgid) *before* it is sent; its
  outcome, the state change and the results to HIS are written in one transaction afterwards;
* a journal row still ``sent`` or ``unknown`` means the answer never arrived (or the worker died): the visit's
  next drive resolves it first, with the step's :class:`~yibao.chains.model.UnknownPolicy`;
* the state is reloaded inside every transaction, so a message absorbed while a call was in flight is kept;
* transient failures back off exponentially (``retry_backoff_s`` × 2ⁿ, capped); after ``max_attempts`` the visit
  is parked: status ``parked``, the definition tells HIS, a dead letter goes out — all in one transaction; a
  definition failing to record the parking (``on_parked`` raising) does not stop the parking itself.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from yibao.chains import metrics
from yibao.chains.model import ChainDefinition, Idle, LocalChange, Park, QuerySpec, Step, Visit, Wait
from yibao.chains.store import CallRow, ChainStore, ConcurrentChange, dumps_state
from yibao.core import clock
from yibao.core.messaging.deadletter import DeadLetter
from yibao.core.messaging.inbox import first_time
from yibao.core.privacy import mask_text
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome

__all__ = ["ChainEngine", "EngineSettings", "NOTHING_DONE_MARKERS", "NOT_REVERSIBLE_MARKERS"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Db = Callable[[Callable[[Connection], T]], Awaitable[T]]

#: 2601 answers meaning "the original did nothing" (so sending again is safe); platforms word them differently
NOTHING_DONE_MARKERS = ("原交易不存在", "原交易未成功", "已冲正", "无此交易", "nothing was done")
NOT_REVERSIBLE_MARKERS = ("不可冲正", "not reversible")


@dataclass
class EngineSettings:
    concurrency: int = 16  #: visits driven at once by one worker
    lease_s: float = 30.0
    poll_interval_s: float = 0.5
    max_steps_per_drive: int = 200
    max_attempts: int = 8  #: transient failures before a visit is parked
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 300.0
    nothing_done_markers: tuple[str, ...] = NOTHING_DONE_MARKERS
    not_reversible_markers: tuple[str, ...] = NOT_REVERSIBLE_MARKERS


class _Stop(Exception):
    """Leave this visit for now (backoff scheduled, parked, or lease lost)."""


class ChainEngine:
    def __init__(self, definition: ChainDefinition, *, db: Db, client: Any, settings: EngineSettings | None = None,
                 topic_prefix: str = "", on_drive_done: Callable[[], None] | None = None) -> None:
        self.definition = definition
        self.service = definition.service
        self.db = db
        self.client = client
        self.settings = settings or EngineSettings()
        self.store = ChainStore(self.service, topic_prefix=topic_prefix)
        self.owner = f"{self.service}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_drive_done = on_drive_done

    # --- absorbing messages (called by the service's agents, inside their unit of work) ------------------------

    def absorb(self, conn: Connection, *, message_id: str, visit_key: str, visit_kind: str,
               apply: Callable[[Connection, Visit], None]) -> bool:
        """Apply one incoming message to its visit, once. Returns False for a duplicate."""
        if not first_time(conn, self.service, message_id):
            return False
        visit = self.store.load_or_create(conn, visit_key, visit_kind, self.definition.new_state(visit_kind))
        apply(conn, visit)
        status = "parked" if visit.status == "parked" else "ready"
        self.store.save(conn, visit, status=status, next_attempt_at=clock.now() if status == "ready" else None,
                        attempts=visit.attempts)
        return True

    def wake(self) -> None:
        self._wake.set()

    # --- the scheduler ----------------------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Claim due visits and drive them, until ``stopping`` is set (or the task is cancelled)."""
        stopping = stopping or asyncio.Event()
        last_gauges = 0.0
        try:
            while not stopping.is_set():
                free = self.settings.concurrency - len(self._running)
                claimed: list[str] = []
                if free > 0:
                    try:
                        claimed = await self.db(lambda c: self.store.claim_due(
                            c, self.owner, limit=free, lease_s=self.settings.lease_s))
                    except Exception:
                        log.exception("chain scheduler could not claim visits")
                        await asyncio.sleep(self.settings.poll_interval_s * 4)
                for key in claimed:
                    if key in self._running:
                        continue
                    self._running.add(key)
                    task = asyncio.create_task(self._drive_and_release(key))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if time.monotonic() - last_gauges > 5:
                    last_gauges = time.monotonic()
                    await self._refresh_gauges()
                if not claimed:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
                    except asyncio.TimeoutError:
                        pass
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self, *, timeout: float = 60.0) -> None:
        """Drive until no visit is due (tests and the demo); raises TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            keys = await self.db(lambda c: self.store.claim_due(c, self.owner, limit=self.settings.concurrency,
                                                                lease_s=self.settings.lease_s))
            if not keys and not self._running:
                return
            await asyncio.gather(*(self._drive_and_release(k) for k in keys if k not in self._running))
        raise TimeoutError("chains still have due work")

    async def _refresh_gauges(self) -> None:
        try:
            counts = await self.db(self.store.count_by_status)
        except Exception:
            return
        metrics.PARKED_OPEN.labels(self.service).set(counts.get("parked", 0))
        for status in ("ready", "idle", "waiting", "parked"):
            metrics.VISITS_BY_STATUS.labels(self.service, status).set(counts.get(status, 0))

    async def _drive_and_release(self, key: str) -> None:
        self._running.add(key)
        try:
            await self.drive(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("chain driver failed; the visit will be retried",
                          extra={"fields": {"service": self.service}})
            try:
                await self.db(lambda c: self._backoff(c, key, "driver error"))
            except Exception:
                pass
        finally:
            self._running.discard(key)
            try:
                await self.db(lambda c: self.store.release(c, key, self.owner))
            except Exception:
                pass
            if self._on_drive_done:
                self._on_drive_done()

    # --- driving one visit ------------------------------------------------------------------------------------

    async def drive(self, key: str) -> None:
        for _ in range(self.settings.max_steps_per_drive):
            try:
                done = await self._one_step(key)
            except _Stop:
                return
            except ConcurrentChange:
                continue  # somebody absorbed a message meanwhile: look again
            if done:
                return
        # a long chain (many batches): yield to other visits, come back soon
        await self.db(lambda c: self._set_status(c, key, "ready", clock.now()))

    async def _one_step(self, key: str) -> bool:
        now = clock.now()

        def look(conn: Connection) -> tuple[Visit | None, CallRow | None, Any]:
            if not self.store.renew(conn, key, self.owner, self.settings.lease_s):
                return None, None, None
            visit = self.store.load(conn, key)
            if visit is None or visit.status == "parked":
                return visit, None, None
            pending = self.store.unresolved_step_call(conn, key)
            return visit, pending, self.definition.next_action(conn, visit, now)

        visit, pending, action = await self.db(look)
        if visit is None or visit.status == "parked" or action is None:
            return True
        if isinstance(action, Park):  # before resolving: a Park must never mark a pending call superseded
            await self._park(key, action.reason_code, action.reason)
            return True
        if pending is not None:
            await self._resolve(visit, pending, action)
            return False
        if isinstance(action, Idle):
            await self.db(lambda c: self._set_status(c, key, "idle", None, decided_at=visit.version))
            return True
        if isinstance(action, Wait):
            await self.db(lambda c: self._set_status(c, key, "waiting", action.until, decided_at=visit.version))
            return True
        if isinstance(action, LocalChange):
            await self.db(lambda c: self._apply(c, key, lambda cc, v: action.apply(cc, v)))
            return False
        assert isinstance(action, Step), action
        await self._execute(visit, action)
        return False

    def _set_status(self, conn: Connection, key: str, status: str, at: _dt.datetime | None, *,
                    decided_at: int | None = None) -> None:
        visit = self.store.load(conn, key)
        if visit is None or visit.status == "parked":
            return
        if decided_at is not None and visit.version != decided_at:
            # a message was absorbed after the decision (Idle/Wait) was taken: decide again, never put it to sleep
            raise ConcurrentChange(f"visit changed since the decision (version {decided_at} → {visit.version})")
        self.store.save(conn, visit, status=status, next_attempt_at=at, attempts=visit.attempts)

    def _apply(self, conn: Connection, key: str, change: Callable[[Connection, Visit], None], *,
               reset_attempts: bool = True) -> Visit:
        visit = self.store.load(conn, key)
        assert visit is not None
        change(conn, visit)
        self.store.save(conn, visit, attempts=0 if reset_attempts else visit.attempts)
        return visit

    async def _execute(self, visit: Visit, step: Step) -> None:
        key = visit.key
        msgid = await self.client.allocate_msgid()
        call_id = await self.db(lambda c: self.store.open_call(c, key, step=step.name, infno=step.infno,
                                                               msgid=msgid, purpose="step"))
        started = time.perf_counter()
        try:
            response = await self.client.call(step.infno, step.input, visit_key=key, msgid=msgid,
                                              insuplc_admdvs=step.insuplc_admdvs,
                                              read_timeout_s=step.read_timeout_s)
        except (BusinessRejection, EnvelopeValidationError) as exc:
            status = "rejected" if isinstance(exc, BusinessRejection) else "invalid"
            text = exc.err_msg if isinstance(exc, BusinessRejection) else str(exc)

            def refused(conn: Connection) -> None:
                self._apply(conn, key, lambda cc, v: step.on_refused(cc, v, exc))
                self.store.close_call(conn, call_id, status, err_msg=text)

            await self.db(refused)
            return
        except UnknownOutcome as exc:
            metrics.UNKNOWN_OUTCOMES.labels(self.service, step.infno, "unresolved").inc()
            # counts as a failed attempt: the resolution (and any resend) waits for the backoff, so a platform
            # that keeps losing answers is not hammered in a loop, and the visit is parked after max_attempts
            reason = f"{step.infno}: outcome unknown: {mask_text(exc.detail or '')}"
            await self.db(lambda c: (self.store.close_call(c, call_id, "unknown", err_msg=exc.detail),
                                     self._backoff(c, key, reason)))
            log.warning("unknown outcome; resolving before anything else", extra={"fields": {
                "service": self.service, "infno": step.infno, "msgid": msgid, "policy": step.unknown.kind}})
            raise _Stop from exc
        except Exception as exc:  # nothing reached the platform (or the gateway refused): back off, try later
            reason = f"{step.infno}: {type(exc).__name__}: {mask_text(str(exc))}"
            await self.db(lambda c: (self.store.close_call(c, call_id, "not_sent", err_msg=reason),
                                     self._backoff(c, key, reason)))
            raise _Stop from exc
        finally:
            metrics.STEP_SECONDS.labels(self.service, step.infno).observe(time.perf_counter() - started)

        output = dict(response.output or {})

        def succeeded(conn: Connection) -> None:
            self._apply(conn, key, lambda cc, v: step.on_ok(cc, v, output, msgid))
            self.store.close_call(conn, call_id, "ok")

        await self.db(succeeded)

    # --- unknown outcomes -------------------------------------------------------------------------------------

    async def _resolve(self, visit: Visit, call: CallRow, action: Any) -> None:
        key = visit.key
        if not isinstance(action, Step) or action.name != call.step:
            # the state no longer asks for this step (it moved on through another path): nothing to redo
            await self.db(lambda c: self.store.close_call(c, call.id, "resolved", resolution="superseded"))
            return
        step: Step = action
        policy = step.unknown
        omsgid = call.msgid or ""
        if policy.kind == "retry":
            await self._close_resolved(call, step, "retried")
            return
        if policy.kind in ("query", "query_then_reverse"):
            assert policy.query is not None
            spec = policy.query(visit, omsgid)
            output = await self._query(key, spec)
            adopted = spec.found(output, omsgid) if output is not None else None
            if adopted is not None:
                def adopt(conn: Connection) -> None:
                    self._apply(conn, key, lambda cc, v: step.on_ok(cc, v, adopted, omsgid))
                    self.store.close_call(conn, call.id, "resolved", resolution="adopted")

                await self.db(adopt)
                metrics.UNKNOWN_OUTCOMES.labels(self.service, step.infno, "adopted").inc()
                return
            if policy.kind == "query":
                await self._close_resolved(call, step, "absent")
                return
        # reverse (or query_then_reverse with no trace): 2601 the original, then the step may be sent again
        resolution = await self._reverse(visit, step, omsgid)
        await self._close_resolved(call, step, resolution)

    async def _close_resolved(self, call: CallRow, step: Step, resolution: str) -> None:
        await self.db(lambda c: self.store.close_call(c, call.id, "resolved", resolution=resolution))
        metrics.UNKNOWN_OUTCOMES.labels(self.service, step.infno, resolution).inc()
        log.info("unknown outcome resolved", extra={"fields": {
            "service": self.service, "infno": step.infno, "msgid": call.msgid, "resolution": resolution}})

    async def _query(self, key: str, spec: QuerySpec) -> dict[str, Any] | None:
        """The query's output; None when the platform answers that it has no such record."""
        msgid = await self.client.allocate_msgid()
        call_id = await self.db(lambda c: self.store.open_call(c, key, step=f"query:{spec.infno}",
                                                               infno=spec.infno, msgid=msgid, purpose="query"))
        try:
            response = await self.client.call(spec.infno, spec.input, visit_key=key, msgid=msgid,
                                              insuplc_admdvs=spec.insuplc_admdvs)
        except BusinessRejection as exc:  # "no such record" is how platforms answer an empty query
            await self.db(lambda c: self.store.close_call(c, call_id, "rejected", err_msg=exc.err_msg))
            return None
        except Exception as exc:
            reason = f"query {spec.infno}: {type(exc).__name__}: {mask_text(str(exc))}"
            await self.db(lambda c: (self.store.close_call(c, call_id, "not_sent", err_msg=reason),
                                     self._backoff(c, key, reason)))
            raise _Stop from exc
        await self.db(lambda c: self.store.close_call(c, call_id, "ok"))
        return dict(response.output or {})

    async def _reverse(self, visit: Visit, step: Step, omsgid: str) -> str:
        key = visit.key
        if not step.psn_no:
            await self._park(key, "unknown_outcome", f"{step.infno} outcome unknown (msgid {omsgid}) and no psn_no "
                                                     "to reverse it with: needs a person")
            raise _Stop
        msgid = await self.client.allocate_msgid()
        call_id = await self.db(lambda c: self.store.open_call(c, key, step=f"2601:{step.infno}", infno="2601",
                                                               msgid=msgid, purpose="reversal"))
        try:
            await self.client.reverse(step.psn_no, omsgid, step.infno, insuplc_admdvs=step.insuplc_admdvs,
                                      visit_key=key, msgid=msgid)
        except BusinessRejection as exc:
            text = exc.err_msg or ""
            await self.db(lambda c: self.store.close_call(c, call_id, "rejected", err_msg=text))
            if any(m in text for m in self.settings.nothing_done_markers):
                return "nothing_done"
            metrics.UNKNOWN_OUTCOMES.labels(self.service, step.infno, "manual").inc()
            await self._park(key, "unknown_outcome",
                             f"{step.infno} outcome unknown (msgid {omsgid}) and 2601 refused: {mask_text(text)}")
            raise _Stop from exc
        except Exception as exc:  # the reversal's own outcome is unknown or it was not sent: try it again later
            reason = f"2601 of {step.infno}: {type(exc).__name__}: {mask_text(str(exc))}"
            await self.db(lambda c: (self.store.close_call(c, call_id, "not_sent", err_msg=reason),
                                     self._backoff(c, key, reason)))
            raise _Stop from exc
        await self.db(lambda c: self.store.close_call(c, call_id, "ok"))
        return "reversed"

    # --- backoff and parking ----------------------------------------------------------------------------------

    def _backoff(self, conn: Connection, key: str, reason: str) -> None:
        visit = self.store.load(conn, key)
        if visit is None or visit.status == "parked":
            return
        attempts = visit.attempts + 1
        if attempts >= self.settings.max_attempts:
            self._park_in(conn, visit, "exhausted", f"gave up after {attempts} attempts: {reason}")
            return
        delay = min(self.settings.retry_backoff_max_s, self.settings.retry_backoff_s * 2 ** (attempts - 1))
        self.store.save(conn, visit, status="waiting", attempts=attempts, last_error=reason[:2000],
                        next_attempt_at=clock.now() + _dt.timedelta(seconds=delay))

    async def _park(self, key: str, reason_code: str, reason: str) -> None:
        def park(conn: Connection) -> None:
            visit = self.store.load(conn, key)
            if visit is not None and visit.status != "parked":
                self._park_in(conn, visit, reason_code, reason)

        await self.db(park)

    def _park_in(self, conn: Connection, visit: Visit, reason_code: str, reason: str) -> None:
        """Park ``visit`` in the caller's transaction. The definition records it first (``on_parked``: its state,
        HIS told); when that fails too — often the very cause of the parking, e.g. a state that no longer loads —
        its partial work is undone (a savepoint, the state and emissions as they were) and the visit is parked
        all the same: a visit that cannot even be parked would otherwise be driven, fail and back off forever."""
        state, emitted = copy.deepcopy(visit.state), list(visit.emitted)
        try:
            with conn.begin_nested():
                self.definition.on_parked(conn, visit, reason_code, reason)
        except Exception as exc:
            visit.state, visit.emitted[:] = state, emitted
            metrics.PARK_RECORD_FAILURES.labels(self.service).inc()
            log.exception("recording the parking failed; the visit is parked without it",
                          extra={"fields": {"service": self.service, "reason_code": reason_code}})
            reason = f"{reason} (recording the parking failed too: {type(exc).__name__}: {mask_text(str(exc))})"
        letter = DeadLetter.of(service=self.service, reason_code=reason_code, reason=mask_text(reason),
                               topic=None, partition=None, offset=None, key=visit.key.encode(),
                               value=dumps_state({"visit_key": visit.key, "visit_kind": visit.kind}).encode(),
                               attempts=visit.attempts + 1)
        visit.emit("dlq", _Letter(message_id=f"parked:{visit.key}:{visit.version}", letter=letter))
        self.store.save(conn, visit, status="parked", attempts=visit.attempts + 1, last_error=reason[:2000])
        log.warning("visit parked", extra={"fields": {"service": self.service, "reason_code": reason_code,
                                                       "reason": mask_text(reason)}})


class _Letter:
    """Adapts a DeadLetter to the emission interface (message_id + to_json)."""

    def __init__(self, *, message_id: str, letter: DeadLetter) -> None:
        self.message_id = message_id
        self.letter = letter

    def to_json(self) -> bytes:
        return self.letter.to_bytes()
