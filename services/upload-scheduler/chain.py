"""The upload chain of one lane: choose a batch of due records, send it, settle each record by the answer —
decided from the lane's state (its records included), one action at a time.

:meth:`UploadChain.next_action` is a pure decision, in this order:

1. **held** — a rule stopped the lane (a platform task that never finished): park it for a person;
2. **a batch decided** — its call (or, for a platform that answers with a task, the poll of that task when it is
   due): always first, so a lost answer or a crash finds the very same call again and the engine resolves it the
   way the catalog says (a query, or a resend the platform's keys make harmless);
3. **records to send** — the records a refused batch was split into, one by one, else the earliest due records
   that may go (content from HIS there, the record they require accepted, the lane's target enabled): freeze the
   next batch, parking a record that breaks a catalog rule with the field named while the others go on;
4. **nothing due** — wait for the next record's due time (its schedule: realtime, daily at HH:MM, every N
   minutes), or for a prerequisite, else idle until a record arrives.

What each call sends and what its answer changes lives in its family's module under
:mod:`yibao.upload_scheduler.steps`.
"""

from __future__ import annotations

import datetime as _dt
from importlib import import_module
from types import ModuleType
from typing import Any

from yibao.chains.model import Action, Effects, Idle, Park, Wait
from yibao.upload_scheduler.config import UploadConfig, parse_lane_key
from yibao.upload_scheduler.state import LaneState, Parked
from yibao.upload_scheduler.steps.common import StepContext, freeze_change, sendable, waiting_reason
from yibao.upload_scheduler.store import SERVICE, UploadStore

__all__ = ["UploadChain", "SERVICE"]

FAMILIES = ("settlement_list", "selfpay", "medical_records", "catalog_mapping", "departments", "inventory",
            "prescriptions", "zifei", "yimatong", "drg", "surveillance")


class UploadChain:
    """The :class:`~yibao.chains.model.Chain` of ``yibao worker upload-scheduler``."""

    service = SERVICE

    def __init__(self, config: UploadConfig, *, catalog: Any) -> None:
        self.config = config
        self.catalog = catalog
        self.store = UploadStore(config)
        self._families: dict[str, ModuleType] = {}
        self._contexts: dict[str, StepContext] = {}
        for kind, spec in config.lanes.items():
            if spec.family not in FAMILIES:
                raise ValueError(f"lane {kind}: unknown family {spec.family}")
            self._contexts[kind] = StepContext(config, spec, catalog)

    def family(self, name: str) -> ModuleType:
        module = self._families.get(name)
        if module is None:
            module = self._families[name] = import_module(f"yibao.upload_scheduler.steps.{name}")
        return module

    def new_state(self, key: str, kind: str) -> LaneState:
        target, lane_kind, _ = parse_lane_key(key)
        st = LaneState(lane=key, target=target, kind=lane_kind)
        st.records.lane = key
        return st

    # --- the decision ---------------------------------------------------------------------------------------------

    def next_action(self, st: LaneState, now: _dt.datetime) -> Action:
        if st.hold is not None:
            return Park(st.hold.reason_code, st.hold.reason)
        ctx = self._contexts.get(st.kind)
        if ctx is None:
            return Park("unknown_lane", f"lane {st.lane}: no lane {st.kind} in the lanes file any more")
        family = self.family(ctx.spec.family)
        batch = st.batch
        if batch is not None:
            if batch.phase == "polling":
                if batch.next_poll_at is not None and now < batch.next_poll_at:
                    return Wait(f"task {batch.task_id} of batch {batch.no}: next poll", until=batch.next_poll_at)
                return family.poll_call(ctx, st, batch)
            return family.batch_call(ctx, st, batch)
        if st.singles or sendable(ctx, st, now):
            return freeze_change(ctx)
        return self._wait(ctx, st, now)

    def _wait(self, ctx: StepContext, st: LaneState, now: _dt.datetime) -> Action:
        wakes: list[_dt.datetime] = []
        for rec in st.records.pending():
            if rec.key in st.records.provisional:
                wakes.append(now)  # just arrived: a driver decides once it is written
                continue
            reason = waiting_reason(ctx, rec)
            if reason is None:
                if rec.due_at is not None:
                    wakes.append(rec.due_at)
            elif rec.has_content and ctx.spec.requires is not None:
                wakes.append(now + self.config.requirement_poll)
        if st.records.next_due is not None:
            wakes.append(st.records.next_due)
        if not wakes:
            return Idle()
        until = min(wakes)
        return Wait(f"{st.kind}: next record due at {until:%Y-%m-%d %H:%M:%S}", until=max(until, now))

    def on_parked(self, st: LaneState, fx: Effects, reason_code: str, reason: str) -> None:
        """The lane is parked (a person looks; `yibao replay chains --service upload-scheduler` brings it back). A batch
        decided stays decided — its call may have reached the platform — and its records say why they wait."""
        st.parked = Parked(reason_code=reason_code, reason=reason[:2000])
        st.hold = None  # parked now: a replay means "look again"
        if st.batch is not None:
            for key in st.batch.keys:
                st.records.note(key, f"lane parked ({reason_code}): {reason}", fx.now)
