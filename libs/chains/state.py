"""How a chain's typed state is read from and written to its row: :class:`StateStore`.

The default, :class:`JsonStateStore`, keeps the whole state as JSON in ``chain_visits.state`` — sealed with the
deployment's data key (:mod:`yibao.core.atrest`: a state holds personal data, certno and names among them), opened
when it is read; a row written before a key was configured reads as it is. A chain whose state
has parts too large to rewrite at every step (settlement's charge lines: thousands for a long stay) supplies its
own store, an adapter that also reads and writes those parts in their own table — in the engine's transaction,
so the state, its parts, the journal and the results still commit together.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from sqlalchemy import Connection

from yibao.chains.model import ChainState
from yibao.core.deployment import Deployment

__all__ = ["StateStore", "JsonStateStore"]

S = TypeVar("S", bound=ChainState)


class StateStore(Protocol[S]):
    def load(self, conn: Connection, key: str, kind: str, text: str) -> S:
        """The state of visit ``key`` from its row's JSON ``text`` (and whatever else it is built from)."""
        ...

    def dump(self, conn: Connection, key: str, state: S) -> str:
        """Write what changed outside the row (if anything) and return the row's JSON."""
        ...


class JsonStateStore(Generic[S]):
    """The whole state as the row's JSON."""

    def __init__(self, model: type[S]) -> None:
        self.model = model

    def load(self, conn: Connection, key: str, kind: str, text: str) -> S:
        return self.model.model_validate_json(Deployment.of(conn).cipher.open(text))

    def dump(self, conn: Connection, key: str, state: S) -> str:
        return Deployment.of(conn).cipher.seal(state.model_dump_json())
