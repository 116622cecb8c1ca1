"""yibao.chains: the engine that runs a service's 医保 chains as persisted, self-repairing state machines.

A service supplies a :class:`~yibao.chains.model.Chain`: a typed state (:class:`~yibao.chains.model.ChainState`),
how each incoming message changes it (an :class:`~yibao.chains.model.Absorption`), and — from the state alone — what
to do next (``next_action(state, now)``: a :class:`~yibao.chains.model.Call` to the platform, a local
:class:`~yibao.chains.model.Change`, a :class:`~yibao.chains.model.Wait`, :class:`~yibao.chains.model.Idle` or
:class:`~yibao.chains.model.Park`). The :class:`~yibao.chains.engine.ChainEngine` does every I/O, the same way
for every chain (see its module for the guarantees): it loads and saves the state, journals each call before
sending it, writes the outcome, the state and the results in one transaction, resolves lost answers the way the
catalog says, backs off, parks, and waits out database outages.

How to add a transaction to a chain: docs/adding-a-transaction.md.
"""

from yibao.chains import data as _data  # noqa: F401  (registers the chain tables with yibao data)
from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.chains.errors import ChainDefinitionError, ConcurrentChange
from yibao.chains.model import (
    Absorption,
    Action,
    Call,
    Chain,
    ChainState,
    Change,
    Effects,
    Idle,
    Lookup,
    Park,
    Refusal,
    Reply,
    Wait,
)
from yibao.chains.ports import CallLogBuffer, CallLogSink, PlatformClient, PlatformReply
from yibao.chains.state import JsonStateStore, StateStore

__all__ = [
    "ChainEngine",
    "EngineSettings",
    "Chain",
    "ChainState",
    "Absorption",
    "Action",
    "Call",
    "Change",
    "Wait",
    "Idle",
    "Park",
    "Lookup",
    "Reply",
    "Refusal",
    "Effects",
    "PlatformClient",
    "PlatformReply",
    "CallLogSink",
    "CallLogBuffer",
    "StateStore",
    "JsonStateStore",
    "ConcurrentChange",
    "ChainDefinitionError",
]
