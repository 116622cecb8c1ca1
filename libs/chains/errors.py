"""The chain engine's exceptions (leaves of :class:`yibao.core.errors.ChainError`) and the one place that tells a
database outage from a failure of the work itself.

    ChainError
    ├── ConcurrentChange        a unit of work met a change it cannot merge (another visit's unit claimed the same
    │                           charge line first): the engine runs the unit again
    └── ChainDefinitionError    a chain asked for something the catalog does not allow (a call whose lost answer
                                needs a lookup it does not give, a lookup with another query than the catalog's):
                                a bug, the visit backs off and is parked after its attempts
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from yibao.core.errors import ChainError

__all__ = ["ConcurrentChange", "ChainDefinitionError", "is_outage"]


class ConcurrentChange(ChainError):
    code = "concurrent_change"


class ChainDefinitionError(ChainError):
    code = "chain_definition"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable (not the work's fault): the engine waits and tries again
    without spending an attempt."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # the connection pool's: every connection busy or broken
        return True
    return isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, FileNotFoundError)
