"""The 备案 chain: from a filing's state alone, what to do next (:meth:`FilingChain.next_action`).

1. nothing before the filing event (its revocation may arrive first: it waits ``orphan_timeout``, then HIS is told
   it names no filing);
2. the filing runs to its end — 1101, then 2501/2501A / 2503 / 2505 — before any revocation is looked at (a lost
   filing answer is always resolved by the filing's own call);
3. revocations one at a time in arrival order: 2502 / 2504 / 2506 by the filing's serial; a filing the platform
   refused, or one revoked already, answers a revocation without a call.

Idempotent: a filing or a revocation HIS repeats (a CDC update of its row) is recognised by its request id and
changes nothing (:mod:`yibao.counter.absorb`).
"""

from __future__ import annotations

import datetime as _dt

from yibao.chains.model import Action, Change, Effects, Idle, Wait
from yibao.chains.state import JsonStateStore
from yibao.core.privacy import mask_text
from yibao.counter.config import CounterConfig
from yibao.counter.results import SERVICE, emit_result
from yibao.counter.state import Failure, FilingState
from yibao.counter.steps import filing, person, revoke
from yibao.counter.steps.common import answer_revocation

__all__ = ["FilingChain"]


class FilingChain:
    """The :class:`~yibao.chains.model.Chain` of the counter's 备案."""

    service = SERVICE
    store = JsonStateStore(FilingState)

    def __init__(self, config: CounterConfig) -> None:
        self.config = config

    def new_state(self, key: str, kind: str) -> FilingState:
        return FilingState()

    def next_action(self, state: FilingState, now: _dt.datetime) -> Action:
        head = state.head()
        if state.filing is None:
            if head is None:
                return Wait("no filing event yet")
            deadline = head.received_at + self.config.orphan_timeout
            if now < deadline:
                return Wait("a revocation waits for the filing it names", until=deadline)
            return Change(f"orphan:{head.tag}", _refuse(head.id, "no_filing", "the revocation names no filing HIS "
                                                                             "asked for"))
        if state.status == "pending":
            if state.person is None:
                return person.person_call(state)
            return filing.filing_call(self.config, state)
        if head is None:
            return Idle()
        if state.status == "filed" and state.serial:
            return revoke.revoke_call(state, head)
        if state.status == "filed":
            return Change(f"noserial:{head.tag}", _refuse(head.id, "no_serial", "the platform gave no "
                                                          "trt_dcla_detl_sn for the filing: revoke it at the 医保局"))
        if state.status == "revoked":
            return Change(f"again:{head.tag}", _refuse(head.id, "already_revoked", "the filing is revoked already"))
        return Change(f"unfiled:{head.tag}", _refuse(head.id, "not_filed", "the platform never took the filing: "
                                                                          "nothing to revoke"))

    def on_parked(self, s: FilingState, fx: Effects, reason_code: str, reason: str) -> None:
        s.parked = Failure(reason_code=reason_code, reason=mask_text(reason))
        head = s.head() if s.status != "pending" else None
        request = head.id if head else (s.event().his_request_id if s.filing else None)
        emit_result(fx, "parked", ("parked", fx.version), request="parked", his_request_id=request,
                    reason_code=reason_code, reason=mask_text(reason))


def _refuse(revocation_id: str, code: str, reason: str):  # type: ignore[no-untyped-def]
    def apply(s: FilingState, fx: Effects) -> None:
        r = s.revocation(revocation_id)
        if r is not None and r.phase == "new":
            answer_revocation(s, fx, r, done=False, reason_code=code, reason=reason)

    return apply
