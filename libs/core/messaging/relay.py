"""The outbox relay: publishes a producer's pending outbox rows, in order, then marks them published.

Replicas publish in parallel, each message key in order. On PostgreSQL a producer's rows fall in ``SHARDS`` shards
by a hash of their message key (rows of one key — on any topic — and every keyless row share a shard); a relay
claims the shards that have rows waiting with transaction-scoped advisory locks (skipping shards another replica's
relay holds) and, only once it holds them, reads and publishes their rows in id order. So no two relays ever publish
rows of one key at once or out of order, while the replicas of a service publish different keys side by side (they
no longer take turns on the whole producer). Every relay also holds the producer's lock shared, which keeps out a
relay of the previous, unsharded version (it takes that lock exclusively) during a rolling upgrade. ``SHARDS`` must
be the same in every replica of a producer: it is a constant of this module, not a setting. Within one process
relays of a producer take turns on an asyncio lock, which is all SQLite (one process, the embedded default) needs.
Published rows are deleted after ``retention``.

The producer name and the payloads are the deployment's (:mod:`yibao.core.deployment`): the relay publishes
only rows of its own deployment and opens sealed payloads before they go out.

Failures are classified by :func:`yibao.core.failures.classify`:

* **poison** — the broker refuses one row for good (too large, invalid): that row is parked in ``parked_work``
  with its payload and reason, marked (``parked_at``) so no relay tries it again, and counted in
  ``yibao_outbox_parked_total``; the rows behind it flow. When a whole batch fails with a poison error the relay
  sends its rows one by one to find the row at fault.
* **outage** — the broker or the database is away: the rows stay, the relay waits with a capped backoff, and
  :meth:`OutboxRelay.blocked` tells readiness why.
* **transient** — anything else: logged, retried after a pause.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, text, update

from yibao.core import clock
from yibao.core.atrest import SealedDataError
from yibao.core.db.schema import outbox
from yibao.core.deployment import Deployment
from yibao.core.failures import Failure, FailureKind, OutageWatch, classify
from yibao.core.messaging.deadletter import DeadLetter, park_in_table
from yibao.core.messaging.outbox import OutboxMessage
from yibao.core.metrics import DEAD_LETTERS, OUTBOX_PARKED, OUTBOX_PENDING, OUTBOX_PUBLISHED, bounded

__all__ = ["OutboxRelay", "SendBatch", "BatchPartlySent"]

log = logging.getLogger(__name__)

SendBatch = Callable[[list[OutboxMessage]], Awaitable[None]]

_IN_PROCESS: dict[tuple[int, str, str], asyncio.Lock] = {}

#: how soon a relay looks again when another replica's relay held the producer's lock (rows that replica committed
#: after the other relay's claim would otherwise wait a whole poll interval)
CONTENDED_RETRY_S = 0.02

#: shards of a producer's rows on PostgreSQL (by a hash of the message key): how many replicas' relays can publish
#: at once. The same in every replica of a producer (a constant, never a setting: two counts would shard one key two
#: ways)
SHARDS = 16

# the statements of every batch, built once (SQLAlchemy then only looks up their compiled form)
_SHARD_OF = "abs(mod(hashtext(coalesce(msg_key, '')), :shards))"
#: the shards with rows waiting, and which of them this relay locked (a shard another relay holds is skipped); the
#: producer's own lock taken shared keeps a relay of the unsharded version out
_LOCK_SHARDS = text(f"""
    SELECT w.shard, pg_try_advisory_xact_lock(:base + w.shard) AS mine
    FROM (SELECT DISTINCT {_SHARD_OF} AS shard FROM outbox
          WHERE producer = :p AND published_at IS NULL) AS w
    WHERE pg_try_advisory_xact_lock_shared(:producer_lock)
    ORDER BY w.shard""")
#: the waiting rows of the shards this relay holds, read after the locks were taken (a new statement, so a new
#: snapshot: rows another relay marked published before letting a shard go are seen as published). The claim's
#: transaction also commits without waiting for the disk flush: all it writes is the rows' published mark, and a mark
#: lost to a server crash only publishes the rows again (the consumers' inboxes absorb them) — in the same statement,
#: so no trip is added
_PENDING_IN_SHARDS = text(f"""
    SELECT id, topic, msg_key, payload, headers, set_config('synchronous_commit', 'off', true) AS relaxed FROM outbox
    WHERE producer = :p AND published_at IS NULL AND {_SHARD_OF} = ANY(:mine)
    ORDER BY id LIMIT :n""")
_PENDING_ROWS = and_(outbox.c.producer == bindparam("p"), outbox.c.published_at.is_(None))
_PENDING = (select(outbox.c.id, outbox.c.topic, outbox.c.msg_key, outbox.c.payload, outbox.c.headers)
            .where(_PENDING_ROWS).order_by(outbox.c.id).limit(bindparam("n")))
_COUNT_PENDING = select(func.count()).where(_PENDING_ROWS)
_MARK = update(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True))).values(published_at=bindparam("at"))


class BatchPartlySent(Exception):
    """Raised by a sender that knows how far it got: the first ``sent`` messages of the batch are published and
    message ``sent`` failed with ``__cause__`` (nothing after it was sent)."""

    def __init__(self, sent: int, cause: BaseException) -> None:
        super().__init__(f"{sent} sent, then {type(cause).__name__}")
        self.sent = sent
        self.__cause__ = cause


class _Unreadable(Exception):
    """A row whose sealed payload cannot be opened."""

    def __init__(self, cause: SealedDataError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        producer: str,
        send_batch: SendBatch,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        retention: _dt.timedelta = _dt.timedelta(days=1),
        outages: OutageWatch | None = None,
        stall_after_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.deployment = Deployment.of(engine)
        self.service = producer
        self.producer = self.deployment.scoped(producer)
        self.send_batch = send_batch
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.outages = outages or OutageWatch(producer)
        self.stall_after_s = stall_after_s
        self._wake = asyncio.Event()
        self._lock_id = zlib.crc32(f"yibao-outbox-{self.producer}".encode())
        #: the advisory lock of shard ``s`` is ``_shard_base + s`` (a 64-bit key apart from every crc32 lock id)
        self._shard_base = ((zlib.crc32(f"yibao-outbox-shards-{self.producer}".encode()) & 0x3FFFFFFF) + 1) << 32
        self._last_cleanup = 0.0
        self._sending_since: float | None = None
        self._last_error: str | None = None
        self.contended = False  #: the last claim found another replica's relay publishing

    def wake(self) -> None:
        """Publish soon: called after a unit of work committed outbox rows."""
        self._wake.set()

    def blocked(self) -> str | None:
        """Why the relay cannot publish right now (for readiness), or None."""
        if self.outages.waiting():
            return "; ".join(f"outbox relay: {p}" for p in self.outages.problems())
        if self._sending_since is not None and time.monotonic() - self._sending_since > self.stall_after_s:
            return (f"outbox relay: a batch has waited {time.monotonic() - self._sending_since:.0f}s for the broker "
                    "to acknowledge it")
        if self._last_error is not None:
            return f"outbox relay: {self._last_error}"
        return None

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        pause = self.poll_interval
        while not stopping.is_set():
            # cleared before looking, not after: a commit that wakes the relay while it looks is not lost (its rows
            # would otherwise wait a whole poll interval)
            self._wake.clear()
            try:
                sent = await self.drain_once()
            except Exception as exc:
                failure = classify(exc.cause if isinstance(exc, _Unreadable) else exc)
                if failure.kind is FailureKind.OUTAGE:  # the rows stay; look again later
                    await self.outages.wait("relay", failure)
                    continue
                self._last_error = failure.summary
                log.error("outbox relay could not publish; will retry", extra={"fields": {
                    "producer": self.producer, "error": failure.summary}})
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                continue
            self.outages.recovered("relay")
            self._last_error = None
            pause = self.poll_interval
            if sent == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=CONTENDED_RETRY_S if self.contended
                                           else self.poll_interval)
                except asyncio.TimeoutError:
                    pass

    async def drain_once(self) -> int:
        """Publish one batch; returns how many rows left the outbox (published or parked)."""
        key = (id(asyncio.get_running_loop()), str(self.engine.url), self.producer)
        lock = _IN_PROCESS.setdefault(key, asyncio.Lock())
        async with lock:  # relays of one producer in one process take turns (SQLite has no advisory lock)
            return await self._drain_once()

    async def _drain_once(self) -> int:
        # two trips to a database thread per batch: open + claim, then mark + close (an empty claim closes at once)
        conn, rows = await asyncio.to_thread(self._open_and_claim)
        if conn is None:
            return 0
        try:
            published, parked = await self._publish(rows)
        except BaseException:
            await asyncio.to_thread(conn.close)
            raise
        await asyncio.to_thread(self._mark_and_close, conn, published, parked)
        if published:
            OUTBOX_PUBLISHED.labels(self.service).inc(len(published))
        return len(published) + len(parked)

    def _open_and_claim(self) -> tuple[Connection | None, list[OutboxMessage | _Unreadable]]:
        """A connection holding the claimed rows' transaction (and the producer's lock), or (None, []) when there is
        nothing to publish — or another replica's relay is publishing (then :attr:`contended` is set)."""
        conn = self.engine.connect()
        try:
            rows = self._claim(conn)
        except BaseException:
            conn.close()
            raise
        if not rows:
            conn.rollback()
            conn.close()
            return None, []
        return conn, rows

    def _mark_and_close(self, conn: Connection, ids: list[int],
                        parked: list[tuple[OutboxMessage | None, int, Failure]]) -> None:
        try:
            self._mark(conn, ids, parked)
        finally:
            conn.close()

    # --- sending ----------------------------------------------------------------------------------------------

    async def _send(self, batch: list[OutboxMessage]) -> None:
        self._sending_since = time.monotonic()
        try:
            await self.send_batch(batch)
        finally:
            self._sending_since = None

    async def _publish(self, rows: list[OutboxMessage | _Unreadable]) -> tuple[list[int], list[tuple[OutboxMessage | None, int, Failure]]]:
        """Send the rows in order. Returns the ids published and the rows to park (row, id, why).

        Stops at the first row that fails for another reason than poison: the rows before it are marked, it and
        the rest stay pending (the exception propagates when nothing could be marked)."""
        published: list[int] = []
        parked: list[tuple[OutboxMessage | None, int, Failure]] = []
        pending = list(rows)
        isolate = False
        while pending:
            # rows that cannot even be read are parked where they stand (they would stop everything behind them)
            head = pending[0]
            if isinstance(head, _Unreadable):  # a key is missing or the row was altered: stop here, say why
                if published or parked:
                    return published, parked
                raise head
            chunk: list[OutboxMessage] = []
            for row in pending:
                if isinstance(row, _Unreadable) or (isolate and chunk):
                    break
                chunk.append(row)
            try:
                await self._send(chunk)
            except Exception as exc:
                sent = exc.sent if isinstance(exc, BatchPartlySent) else 0
                cause = exc.__cause__ if isinstance(exc, BatchPartlySent) and exc.__cause__ else exc
                published += [m.id for m in chunk[:sent]]
                failure = classify(cause)
                if failure.kind is not FailureKind.POISON:
                    if published or parked:
                        log.warning("outbox relay stopped part-way; the rest stays pending", extra={"fields": {
                            "producer": self.producer, "error": failure.summary}})
                        return published, parked
                    raise
                if isinstance(exc, BatchPartlySent) or len(chunk) == 1:
                    bad = chunk[sent]
                    parked.append((bad, bad.id, failure))
                    pending = pending[pending.index(bad) + 1:]
                    isolate = False
                else:  # which row of the batch? send them one at a time
                    isolate = True
                continue
            published += [m.id for m in chunk]
            pending = pending[len(chunk):]
        return published, parked

    # --- the database -----------------------------------------------------------------------------------------

    def _claim(self, conn: Connection) -> list[OutboxMessage | _Unreadable]:
        conn.begin()
        self.contended = False
        if conn.dialect.name == "postgresql":
            shards = conn.execute(_LOCK_SHARDS, {"p": self.producer, "shards": SHARDS, "base": self._shard_base,
                                                 "producer_lock": self._lock_id}).all()
            mine = [shard for shard, locked in shards if locked]
            # another replica's relay holds some: look again soon, not after a whole poll interval
            self.contended = len(mine) < len(shards)
            if not mine:
                return []
            result = conn.execute(_PENDING_IN_SHARDS, {"p": self.producer, "shards": SHARDS, "mine": mine,
                                                       "n": self.batch_size}).all()
        else:
            result = conn.execute(_PENDING, {"p": self.producer, "n": self.batch_size}).all()
        if len(result) < self.batch_size:
            OUTBOX_PENDING.labels(self.service).set(len(result))
        else:
            OUTBOX_PENDING.labels(self.service).set(conn.execute(_COUNT_PENDING, {"p": self.producer}).scalar() or 0)
        if conn.dialect.name == "sqlite":  # do not hold SQLite's single write lock while Kafka answers
            conn.commit()
        cipher = self.deployment.cipher
        messages: list[OutboxMessage | _Unreadable] = []
        for r in result:
            try:
                value = cipher.open(r.payload).encode()
            except SealedDataError as exc:
                messages.append(_Unreadable(exc))
                continue
            messages.append(OutboxMessage(
                id=r.id, topic=r.topic, key=r.msg_key.encode() if r.msg_key is not None else None, value=value,
                headers=[(k, str(v).encode()) for k, v in _headers(r.headers).items()],
            ))
        return messages

    def _mark(self, conn: Connection, ids: list[int], parked: list[tuple[OutboxMessage | None, int, Failure]]) -> None:
        now = clock.now()
        if ids:
            conn.execute(_MARK, {"ids": ids, "at": now})
        for message, row_id, failure in parked:
            self._park(conn, message, row_id, failure, now)
        if now.timestamp() - self._last_cleanup > 300:
            conn.execute(
                delete(outbox).where(and_(outbox.c.producer == self.producer,
                                          outbox.c.published_at < now - self.retention))
            )
            self._last_cleanup = now.timestamp()
        conn.commit()

    def _park(self, conn: Connection, message: OutboxMessage | None, row_id: int, failure: Failure,
              now: _dt.datetime) -> None:
        """A row the broker refused: its payload goes to ``parked_work`` (sealed), the row is marked done."""
        size = len(message.value) if message is not None else 0
        letter = DeadLetter.of(
            service=self.service, reason_code=failure.code,
            reason=f"the broker refused outbox row {row_id} ({size} bytes): {failure.summary}",
            topic=message.topic if message else None, partition=None, offset=None,
            key=message.key if message else None, value=message.value if message else None)
        park_in_table(conn, letter)
        conn.execute(update(outbox).where(outbox.c.id == row_id).values(published_at=now, parked_at=now))
        OUTBOX_PARKED.labels(self.service, bounded(failure.code)).inc()
        DEAD_LETTERS.labels(self.service, bounded(failure.code)).inc()
        log.error("outbox row refused by the broker; parked, the rows behind it flow", extra={"fields": {
            "producer": self.producer, "row": row_id, "topic": letter.source_topic, "bytes": size,
            "reason_code": failure.code, "error": failure.summary}})


def _headers(raw: str | None) -> dict[str, object]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
