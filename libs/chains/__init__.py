"""yibao.chains: the engine that runs a service's 医保 chains as persisted, self-repairing state machines.

A service (registration, settlement) supplies a :class:`~yibao.chains.model.ChainDefinition`: how an incoming
message changes a visit's state (``absorb``) and, from the state alone, what to do next (``next_action``: a
platform :class:`~yibao.chains.model.Step`, a :class:`~yibao.chains.model.Wait`, a local change, or nothing).
The :class:`~yibao.chains.engine.ChainEngine` does the rest, the same way for every chain:

* **absorb** — in one transaction: the inbox (a duplicate changes nothing), the state change, the outbox;
* **drive** — visits with work are leased (one driver per visit across replicas) and driven step by step:
  the call is journalled with its msgid *before* it is sent, its outcome and the state change after it in one
  transaction, results to HIS through the outbox;
* **unknown outcomes** — a step whose answer was lost (or a worker killed mid-call) is resolved before anything
  else happens to that visit, by the step's documented policy: query the platform and adopt what it did, or
  冲正 2601 the original msgid, then (only then) send again — never blindly;
* **transient failures** retry with exponential backoff; exhausted visits are **parked** (status, a HIS result
  and a dead letter) until ``yibao replay`` after the cause is fixed.
"""

from yibao.chains.engine import ChainEngine
from yibao.chains.model import (
    ChainDefinition,
    Idle,
    LocalChange,
    Park,
    QuerySpec,
    Step,
    UnknownPolicy,
    Visit,
    Wait,
)

__all__ = [
    "ChainEngine",
    "ChainDefinition",
    "Visit",
    "Step",
    "Wait",
    "Idle",
    "LocalChange",
    "Park",
    "QuerySpec",
    "UnknownPolicy",
]
