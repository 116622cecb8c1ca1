"""The chain engine's exceptions (leaves of :class:`yibao.core.errors.ChainError`).

    ChainError
    ├── ConcurrentChange        a unit of work met a change it cannot merge (another visit's unit claimed the same
    │                           charge line first): the engine runs the unit again
    └── ChainDefinitionError    a chain asked for something the catalog does not allow (a call whose lost answer
                                needs a lookup it does not give, a lookup with another query than the catalog's):
                                a bug, the visit backs off and is parked after its attempts
"""

from __future__ import annotations

from yibao.core.errors import ChainError
from yibao.core.failures import FailureKind, classify

__all__ = ["ConcurrentChange", "ChainDefinitionError", "is_outage"]


class ConcurrentChange(ChainError):
    code = "concurrent_change"


class ChainDefinitionError(ChainError):
    code = "chain_definition"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means a resource (the database) is unreachable — not the work's fault: the engine waits and
    tries again without spending an attempt. The classification is the one of :mod:`yibao.core.failures`."""
    return classify(exc).kind is FailureKind.OUTAGE
