"""The 9001 签到 session: one sign_no per institution and operator, shared by every worker of a service.

Every envelope after 9001 carries ``sign_no`` until 9002 签退 (national-platform.md). Signing in once per
process would multiply sessions on the platform and race on renewal; so the session lives in table
``signin_sessions`` and exactly one process signs in while the others read its sign_no:

1. A worker looks for the current row (same fixmedins_code and opter, not signed out, not expired). A row
   with a sign_no is used as it is and cached in memory until its ``expires_at``.
2. If there is none, the worker *claims* the sign-in by inserting a row with an empty sign_no (a claim
   expiring after ``claim_ttl_s``) in a serialised transaction — ``BEGIN IMMEDIATE`` on SQLite (see
   ``make_engine``), a transaction-scoped advisory lock on PostgreSQL — so two workers cannot both claim.
3. The claimant sends 9001 outside any transaction, then fills in sign_no and ``expires_at``; the others poll
   until the row has a sign_no (or the claim expires, e.g. the claimant died, and one of them claims again).

Renewal: a session expires ``renew_s`` after sign-in, and at Shanghai midnight when ``renew_at_midnight``;
the next call then signs in again. When the platform answers that a sign_no is invalid, the client calls
:meth:`SigninManager.invalidate`, which expires that row for every worker at once. On shutdown the process that
signed in sends 9002 (``signout_on_close``) and marks the row signed out; the other workers' next call then
meets an invalid sign_no and renews.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from yibao.core import clock
from yibao.core.db.schema import signin_sessions
from yibao.envelope.errors import GatewayAuthError, PlatformError, TransportError

__all__ = ["SignInError", "SigninStore", "SigninManager", "session_expiry"]

log = logging.getLogger(__name__)


class SignInError(TransportError):
    """The call was not sent because no sign_no could be obtained (9001 failed, or another worker's 9001
    did not finish in time). Nothing of the call reached the platform; it may be retried."""

    code = "sign_in"


class _Current(NamedTuple):
    state: str  # "valid", "claimed" (by us), "wait" (someone else is signing in)
    sign_no: str = ""
    expires_at: _dt.datetime | None = None
    row_id: int | None = None


def session_expiry(signed_in_at: _dt.datetime, renew_s: float, renew_at_midnight: bool) -> _dt.datetime:
    """When a session signed in at ``signed_in_at`` must be renewed."""
    signed_in_at = clock.as_shanghai(signed_in_at)
    expiry = signed_in_at + _dt.timedelta(seconds=renew_s)
    if renew_at_midnight:
        midnight = _dt.datetime.combine(signed_in_at.date() + _dt.timedelta(days=1), _dt.time(),
                                        tzinfo=clock.SHANGHAI)
        expiry = min(expiry, midnight)
    return expiry


def _lock_key(fixmedins_code: str, opter: str) -> int:
    digest = hashlib.sha256(f"yibao-signin:{fixmedins_code}:{opter}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SigninStore:
    """The ``signin_sessions`` rows of one institution and operator (synchronous; run in a thread)."""

    def __init__(self, engine: Engine, fixmedins_code: str, opter: str, owner: str) -> None:
        self.engine = engine
        self.fixmedins_code = fixmedins_code
        self.opter = opter
        self.owner = owner
        self._pg = engine.dialect.name == "postgresql"

    def _mine(self) -> Any:
        t = signin_sessions.c
        return (t.fixmedins_code == self.fixmedins_code) & (t.opter == self.opter)

    def current_or_claim(self, now: _dt.datetime, claim_ttl_s: float) -> _Current:
        t = signin_sessions.c
        with self.engine.begin() as conn:
            if self._pg:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _lock_key(self.fixmedins_code, self.opter)})
            row = conn.execute(
                select(t.id, t.sign_no, t.expires_at, t.owner)
                .where(self._mine(), t.signed_out_at.is_(None), t.expires_at > now)
                .order_by(t.id.desc()).limit(1)
            ).first()
            if row is not None and row.sign_no:
                return _Current("valid", row.sign_no, row.expires_at, row.id)
            if row is not None:
                return _Current("wait")
            result = conn.execute(
                insert(signin_sessions).values(
                    fixmedins_code=self.fixmedins_code, opter=self.opter, sign_no="", signed_in_at=now,
                    expires_at=now + _dt.timedelta(seconds=claim_ttl_s), owner=self.owner,
                )
            )
            return _Current("claimed", row_id=result.inserted_primary_key[0])

    def complete(self, row_id: int, sign_no: str, signed_in_at: _dt.datetime, expires_at: _dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(signin_sessions).where(signin_sessions.c.id == row_id)
                         .values(sign_no=sign_no, signed_in_at=signed_in_at, expires_at=expires_at))

    def abandon(self, row_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(signin_sessions).where(signin_sessions.c.id == row_id,
                                                       signin_sessions.c.sign_no == ""))

    def invalidate(self, sign_no: str, now: _dt.datetime) -> None:
        t = signin_sessions.c
        with self.engine.begin() as conn:
            conn.execute(update(signin_sessions)
                         .where(self._mine(), t.sign_no == sign_no, t.signed_out_at.is_(None), t.expires_at > now)
                         .values(expires_at=now))

    def signed_out(self, sign_no: str, now: _dt.datetime) -> None:
        t = signin_sessions.c
        with self.engine.begin() as conn:
            conn.execute(update(signin_sessions)
                         .where(self._mine(), t.sign_no == sign_no, t.signed_out_at.is_(None))
                         .values(signed_out_at=now))


SignInCall = Callable[[], Awaitable[str]]
SignOutCall = Callable[[str], Awaitable[Any]]


class SigninManager:
    """The sign_no for this process: cached, shared through :class:`SigninStore`, renewed, signed out."""

    def __init__(
        self,
        store: SigninStore,
        sign_in: SignInCall,
        sign_out: SignOutCall,
        *,
        renew_s: float = 4 * 3600.0,
        renew_at_midnight: bool = True,
        wait_s: float = 30.0,
        claim_ttl_s: float = 120.0,
        poll_s: float = 0.2,
        now: Callable[[], _dt.datetime] = clock.now,
    ) -> None:
        self.store = store
        self._sign_in = sign_in
        self._sign_out = sign_out
        self._renew_s = renew_s
        self._renew_at_midnight = renew_at_midnight
        self._wait_s = wait_s
        self._claim_ttl_s = claim_ttl_s
        self._poll_s = poll_s
        self._now = now
        self._lock = asyncio.Lock()
        self._sign_no: str | None = None
        self._expires_at: _dt.datetime | None = None
        self._mine: set[str] = set()

    def _cached(self) -> str | None:
        if self._sign_no and self._expires_at is not None and self._now() < self._expires_at:
            return self._sign_no
        return None

    @property
    def signed_in_here(self) -> bool:
        """Whether the current sign_no was obtained by this process (it then sends 9002 on close)."""
        return self._sign_no is not None and self._sign_no in self._mine

    async def sign_no(self) -> str:
        """The current sign_no, signing in (9001) when no worker has a valid one."""
        cached = self._cached()
        if cached:
            return cached
        async with self._lock:
            cached = self._cached()
            if cached:
                return cached
            return await self._obtain()

    async def _obtain(self) -> str:
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                current = await asyncio.to_thread(self.store.current_or_claim, self._now(), self._claim_ttl_s)
            except SQLAlchemyError as exc:
                raise SignInError("9001", f"the sign-in session store is unreachable ({type(exc).__name__})") from None
            if current.state == "valid":
                self._sign_no, self._expires_at = current.sign_no, current.expires_at
                return current.sign_no
            if current.state == "claimed":
                assert current.row_id is not None
                return await self._sign_in_now(current.row_id)
            if time.monotonic() >= deadline:
                raise SignInError("9001", "another worker's sign-in did not finish in time")
            await asyncio.sleep(self._poll_s)

    async def _sign_in_now(self, row_id: int) -> str:
        try:
            sign_no = await self._sign_in()
        except BaseException as exc:
            await asyncio.to_thread(self.store.abandon, row_id)
            if isinstance(exc, (GatewayAuthError, SignInError)) or not isinstance(exc, PlatformError):
                raise
            raise SignInError("9001", f"sign-in failed: {exc}") from exc
        signed_in_at = self._now()
        expires_at = session_expiry(signed_in_at, self._renew_s, self._renew_at_midnight)
        try:
            await asyncio.to_thread(self.store.complete, row_id, sign_no, signed_in_at, expires_at)
        except SQLAlchemyError as exc:  # usable here; the other workers sign in once the claim expires
            log.warning("could not share the sign-in session", extra={"fields": {"error": type(exc).__name__}})
        self._sign_no, self._expires_at = sign_no, expires_at
        self._mine.add(sign_no)
        log.info("signed in (9001)", extra={"fields": {"expires_at": expires_at.isoformat()}})
        return sign_no

    async def invalidate(self, sign_no: str) -> None:
        """The platform says ``sign_no`` is not valid: expire it for every worker; the next call signs in."""
        if not sign_no:
            return
        if self._sign_no == sign_no:
            self._sign_no, self._expires_at = None, None
        try:
            await asyncio.to_thread(self.store.invalidate, sign_no, self._now())
        except SQLAlchemyError as exc:  # the other workers will meet the same answer and try again
            log.warning("could not expire the sign-in session", extra={"fields": {"error": type(exc).__name__}})

    async def sign_out(self) -> bool:
        """Send 9002 for a session this process signed in; True when one was signed out."""
        sign_no = self._sign_no
        if not sign_no or sign_no not in self._mine or self._cached() is None:
            return False
        self._sign_no, self._expires_at = None, None
        try:
            await self._sign_out(sign_no)
        except PlatformError as exc:
            log.warning("sign-out (9002) failed", extra={"fields": {"error": exc.code}})
        try:
            await asyncio.to_thread(self.store.signed_out, sign_no, self._now())
        except SQLAlchemyError as exc:  # the row expires on its own at expires_at
            log.warning("could not mark the session signed out", extra={"fields": {"error": type(exc).__name__}})
        return True
