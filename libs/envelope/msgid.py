"""msgid: ``fixmedins_code(12) + yyyyMMddHHmmss(14, Shanghai) + serial(4)`` — unique by construction.

A random serial collides (a known field failure, national-platform.md); this one is a per-second sequence
partitioned between the processes of one institution.

How it stays unique
-------------------
* The 10000 serials of a second are split into ``slots`` equal ranges (``slots`` divides 10000). Slot ``k``
  owns serials ``k × (10000 / slots)`` up to the next range. Two processes never hold the same slot.
* A process *leases* a slot in table ``msgid_slots`` (primary key fixmedins_code + slot): it inserts the row
  of a slot nobody has used yet, or takes a *released* row (``WHERE owner = ''``) or a *stale* one (no
  heartbeat for ``stale_after_s``: ``WHERE owner = <old owner> AND heartbeat_at < cutoff``) with a
  compare-and-set UPDATE. Each statement succeeds for exactly one process on SQLite and on PostgreSQL (a lost
  INSERT race is a primary-key violation, a lost UPDATE race matches no row), so processes end up with
  different slots.
* Inside its range a process counts per second: the counter restarts at each new second; when the range is
  used up within a second, callers wait for the next second. Concurrent asyncio tasks and threads share one
  counter under a lock. The second never goes backwards: if the wall clock steps back, issuing continues in
  the last second used until the clock catches up.
* A new owner never issues in a second a previous owner of the slot may have used:

  - a slot row that never existed starts at the current second;
  - a slot *released* by a clean shutdown (owner set to ``''``, ``heartbeat_at`` set to the last second it
    issued in) starts at the second after that last second, or now if later;
  - a slot taken over from a *stale* owner (crashed, hung or cut off from the database) starts at the second
    after the lease: the stale owner stopped issuing on its own ``lease_ttl_s`` after its last successful
    heartbeat (self-fencing), well before anyone may take the slot over (``stale_after_s`` > ``lease_ttl_s``).

  This holds as long as the hosts' clocks agree within ``stale_after_s - lease_ttl_s`` (30 s by default; NTP
  keeps them within milliseconds).
* Heartbeats are lazy: a process renews its lease (an UPDATE guarded by ``owner = me``) on the first
  allocation after ``heartbeat_s``; an idle process may lose its slot to another process, notices at its
  next renewal (the UPDATE matches no row) and leases a slot again, starting afresh at the next second.

Every process that sends messages for an institution — the replicas of a service and the other services —
must use the same database for ``msgid_slots`` (the project's one ``DATABASE_URL``); ``slots`` is then the most
such processes at one time, and each issues at most 10000 / ``slots`` msgids per second (default 10 slots:
1000 per second each). Database work runs in a worker thread (``asyncio.to_thread`` from async callers); the
common path is an in-memory counter under a lock (under a microsecond).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from yibao.core import clock
from yibao.core.db.schema import msgid_slots
from yibao.core.errors import ConfigurationError, StackError

__all__ = [
    "MSGID_LENGTH",
    "SERIALS_PER_SECOND",
    "MsgidLeaseError",
    "ParsedMsgid",
    "format_msgid",
    "parse_msgid",
    "MsgidAllocator",
]

log = logging.getLogger(__name__)

MSGID_LENGTH = 30
SERIALS_PER_SECOND = 10000


class MsgidLeaseError(StackError):
    """No msgid slot could be leased or kept (database unreachable, or every slot held by a live process)."""

    code = "msgid_lease"


class ParsedMsgid(NamedTuple):
    fixmedins_code: str
    sent_at: _dt.datetime
    serial: int


def _stamp(second: int) -> str:
    return _dt.datetime.fromtimestamp(second, clock.SHANGHAI).strftime("%Y%m%d%H%M%S")


def format_msgid(fixmedins_code: str, second: int, serial: int) -> str:
    """The msgid of ``serial`` in the unix ``second`` (rendered in Shanghai time)."""
    if len(fixmedins_code) != 12:
        raise ConfigurationError("fixmedins_code must be exactly 12 characters")
    if not 0 <= serial < SERIALS_PER_SECOND:
        raise ValueError("serial must be 0..9999")
    return f"{fixmedins_code}{_stamp(second)}{serial:04d}"


def parse_msgid(msgid: str) -> ParsedMsgid:
    """Split a msgid into institution, time (aware, Shanghai) and serial; ValueError when malformed."""
    if len(msgid) != MSGID_LENGTH or not msgid[12:].isdigit():
        raise ValueError("a msgid is 12 characters of institution code and 18 digits")
    sent_at = _dt.datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S").replace(tzinfo=clock.SHANGHAI)
    return ParsedMsgid(msgid[:12], sent_at, int(msgid[26:]))


def _default_owner() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class MsgidAllocator:
    """Issues msgids for one institution from a leased slot (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        fixmedins_code: str,
        *,
        slots: int = 10,
        heartbeat_s: float = 5.0,
        lease_ttl_s: float = 15.0,
        stale_after_s: float = 45.0,
        lease_wait_s: float = 60.0,
        owner: str | None = None,
        clock_s: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if len(fixmedins_code) != 12:
            raise ConfigurationError("fixmedins_code must be exactly 12 characters")
        if slots < 1 or SERIALS_PER_SECOND % slots:
            raise ConfigurationError("msgid slots must divide 10000")
        if not heartbeat_s < lease_ttl_s < stale_after_s:
            raise ConfigurationError("msgid times must satisfy heartbeat < lease_ttl < stale_after")
        self.engine = engine
        self.fixmedins_code = fixmedins_code
        self.slots = slots
        self.per_slot = SERIALS_PER_SECOND // slots
        self.owner = owner or _default_owner()
        self._heartbeat_s = heartbeat_s
        self._ttl_s = lease_ttl_s
        self._stale_s = stale_after_s
        self._wait_s = lease_wait_s
        self._clock = clock_s
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()  # the in-memory counter
        self._db_lock = threading.Lock()  # one lease/heartbeat at a time
        self._slot: int | None = None
        self._base = 0
        self._first_second = 0
        self._second = 0
        self._next = 0
        self._renew_at = 0.0
        self._valid_until = 0.0
        self._stamp_second = -1
        self._stamp_text = ""
        self._closed = False

    @classmethod
    def from_settings(cls, engine: Engine, settings: Any, **kwargs: Any) -> "MsgidAllocator":
        return cls(
            engine,
            settings.fixmedins_code,
            slots=settings.msgid_slots,
            heartbeat_s=settings.msgid_heartbeat_s,
            lease_ttl_s=settings.msgid_lease_ttl_s,
            stale_after_s=settings.msgid_stale_after_s,
            lease_wait_s=settings.msgid_lease_wait_s,
            **kwargs,
        )

    @property
    def slot(self) -> int | None:
        return self._slot

    # --- issuing ---------------------------------------------------------------------------------------------

    def _try_issue(self) -> str | float | None:
        """Under ``_lock``: a msgid, or seconds to wait, or None when the lease needs database work."""
        now = self._clock()
        if self._closed:
            raise MsgidLeaseError("the msgid allocator is closed")
        if self._slot is None or now >= self._renew_at:
            return None
        second = max(int(now), self._second)
        if second < self._first_second:
            return max(self._first_second - now, 0.001)
        if second > self._second:
            self._second = second
            self._next = 0
        if self._next >= self.per_slot:
            return max(self._second + 1 - now, 0.001)
        serial = self._base + self._next
        self._next += 1
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp_text = self.fixmedins_code + _stamp(second)
        return f"{self._stamp_text}{serial:04d}"

    def allocate_sync(self) -> str:
        """The next msgid; blocks (database, or waiting for the next second). For threads and scripts."""
        while True:
            with self._lock:
                result = self._try_issue()
            if isinstance(result, str):
                return result
            if result is None:
                self._maintain()
            else:
                self._sleep(result)

    async def allocate(self) -> str:
        """The next msgid, without blocking the event loop."""
        while True:
            with self._lock:
                result = self._try_issue()
            if isinstance(result, str):
                return result
            if result is None:
                await asyncio.to_thread(self._maintain)
            else:
                await self._async_sleep(result)

    # --- the lease -------------------------------------------------------------------------------------------

    def _at(self, seconds: float) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(seconds, clock.SHANGHAI)

    def _maintain(self) -> None:
        with self._db_lock:
            now = self._clock()
            if self._slot is not None and now < self._renew_at:
                return  # another thread renewed meanwhile
            if self._slot is not None and self._renew(now):
                return
            self._acquire()

    def _renew(self, now: float) -> bool:
        """Heartbeat; False when the slot was lost (or may no longer be trusted)."""
        slot = self._slot
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    update(msgid_slots)
                    .where(msgid_slots.c.fixmedins_code == self.fixmedins_code, msgid_slots.c.slot == slot,
                           msgid_slots.c.owner == self.owner)
                    .values(heartbeat_at=self._at(now))
                )
                kept = result.rowcount == 1
        except SQLAlchemyError as exc:
            if now < self._valid_until:
                log.warning("msgid lease renewal failed; retrying", extra={"fields": {"error": type(exc).__name__}})
                with self._lock:
                    self._renew_at = now + 1.0
                return True
            with self._lock:
                self._slot = None
            raise MsgidLeaseError(f"msgid slot lease could not be renewed ({type(exc).__name__})") from None
        with self._lock:
            if kept:
                self._renew_at = now + self._heartbeat_s
                self._valid_until = now + self._ttl_s
            else:
                log.warning("msgid slot taken over by another process; leasing again",
                            extra={"fields": {"slot": slot}})
                self._slot = None
        return kept

    def _acquire(self) -> None:
        deadline = self._clock() + self._wait_s
        while True:
            now = self._clock()
            try:
                leased = self._lease_once(now)
            except SQLAlchemyError as exc:
                raise MsgidLeaseError(f"msgid slot could not be leased ({type(exc).__name__})") from None
            if leased is not None:
                slot, start = leased
                with self._lock:
                    self._slot = slot
                    self._base = slot * self.per_slot
                    self._first_second = start
                    if self._second >= start:
                        self._next = 0  # a fresh range of the new slot in the second we are in
                    else:
                        self._second, self._next = start - 1, self.per_slot  # wait for `start`
                    self._renew_at = now + self._heartbeat_s
                    self._valid_until = now + self._ttl_s
                return
            if now >= deadline:
                raise MsgidLeaseError(
                    f"all {self.slots} msgid slots of this institution are held by live processes; "
                    "raise msgid_slots or run fewer processes"
                )
            self._sleep(min(1.0, max(deadline - now, 0.01)))

    def _lease_once(self, now: float) -> tuple[int, int] | None:
        """(slot, first second it may issue in), or None when every slot is held by a live process."""
        code = self.fixmedins_code
        table = msgid_slots
        mine = (table.c.fixmedins_code == code)
        for _ in range(self.slots + 1):
            try:
                with self.engine.begin() as conn:
                    rows = conn.execute(select(table.c.slot, table.c.owner, table.c.heartbeat_at).where(mine)).all()
                    held = {row.slot for row in rows}
                    free = next((s for s in range(self.slots) if s not in held), None)
                    if free is not None:
                        conn.execute(insert(table).values(fixmedins_code=code, slot=free, owner=self.owner,
                                                          leased_at=self._at(now), heartbeat_at=self._at(now)))
                        return free, int(now)
                    usable = [r for r in rows if r.slot < self.slots]
                    for row in sorted((r for r in usable if r.owner == ""), key=lambda r: r.slot):
                        taken = conn.execute(
                            update(table).where(mine, table.c.slot == row.slot, table.c.owner == "")
                            .values(owner=self.owner, leased_at=self._at(now), heartbeat_at=self._at(now))
                        )
                        if taken.rowcount == 1:
                            return row.slot, max(int(now), int(row.heartbeat_at.timestamp()) + 1)
                    cutoff = self._at(now - self._stale_s)
                    stale = sorted((r for r in usable if r.owner and r.heartbeat_at < cutoff),
                                   key=lambda r: r.heartbeat_at)
                    for row in stale:
                        taken = conn.execute(
                            update(table)
                            .where(mine, table.c.slot == row.slot, table.c.owner == row.owner,
                                   table.c.heartbeat_at < cutoff)
                            .values(owner=self.owner, leased_at=self._at(now), heartbeat_at=self._at(now))
                        )
                        if taken.rowcount == 1:
                            log.info("msgid slot taken over from a stale owner", extra={"fields": {"slot": row.slot}})
                            return row.slot, int(now) + 1
                    return None
            except IntegrityError:
                continue  # another process inserted that slot first: look again
        return None

    # --- shutdown --------------------------------------------------------------------------------------------

    def close_sync(self) -> None:
        """Release the slot: owner ``''`` and ``heartbeat_at`` = the last second issued in, so that the next
        owner starts after it (module docstring). A failed release just lets the lease go stale."""
        with self._db_lock:
            with self._lock:
                slot, last_second, self._slot, self._closed = self._slot, self._second, None, True
            if slot is None:
                return
            last = max(last_second, int(self._clock()))
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(msgid_slots)
                                 .where(msgid_slots.c.fixmedins_code == self.fixmedins_code,
                                        msgid_slots.c.slot == slot, msgid_slots.c.owner == self.owner)
                                 .values(owner="", heartbeat_at=self._at(last)))
            except SQLAlchemyError as exc:
                log.warning("msgid slot release failed", extra={"fields": {"error": type(exc).__name__}})

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close_sync)
