"""Console logins (``recon_sessions``): a random token in an HttpOnly, SameSite=Strict cookie; its SHA-256 in the
table with the user, roles, a CSRF token, and when it ends (``console_session_ttl_s`` after login, or
``console_idle_timeout_s`` after its last use). Logging out deletes the row. Rows live in the database, so any
replica of the worker knows every login and a login survives a restart."""

from __future__ import annotations

import datetime as _dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from yibao.core import clock
from yibao.core.db.schema import recon_sessions

from .auth import ROLES, Principal

__all__ = ["Session", "open_session", "find_session", "close_session", "purge_sessions"]


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: _dt.datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def open_session(conn: Connection, principal: Principal, *, source: str, ttl_s: float) -> tuple[str, Session]:
    """A new login: (the cookie's token, the session)."""
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), clock.now()
    expires = now + _dt.timedelta(seconds=ttl_s)
    conn.execute(insert(recon_sessions).values(
        token_hash=_hash(token), actor=principal.user[:128], roles=principal.roles_text[:64],
        method=principal.method[:16], csrf=csrf, source=source[:200], created_at=now, last_seen_at=now,
        expires_at=expires))
    return token, Session(principal, csrf, expires)


def find_session(conn: Connection, token: str, *, idle_s: float) -> Session | None:
    """The session of a cookie token, still valid (its last use is refreshed); None otherwise."""
    if not token or len(token) > 200:
        return None
    now = clock.now()
    row = conn.execute(select(recon_sessions).where(recon_sessions.c.token_hash == _hash(token))).first()
    if row is None:
        return None
    if row.expires_at <= now or row.last_seen_at + _dt.timedelta(seconds=idle_s) <= now:
        conn.execute(delete(recon_sessions).where(recon_sessions.c.token_hash == row.token_hash))
        return None
    conn.execute(update(recon_sessions).where(recon_sessions.c.token_hash == row.token_hash)
                 .values(last_seen_at=now))
    roles = frozenset(r for r in row.roles.split(",") if r in ROLES)
    return Session(Principal(row.actor, roles, "session"), row.csrf, row.expires_at)


def close_session(conn: Connection, token: str) -> bool:
    return conn.execute(delete(recon_sessions).where(recon_sessions.c.token_hash == _hash(token))).rowcount == 1


def purge_sessions(conn: Connection) -> int:
    return conn.execute(delete(recon_sessions).where(recon_sessions.c.expires_at <= clock.now())).rowcount
