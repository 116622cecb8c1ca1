"""What each incoming message does to a lane (the ``absorb`` half of the chain). Nothing here calls a platform or
decides a step: :meth:`~yibao.upload_scheduler.chain.UploadChain.next_action` does that from the state this leaves.

Two topics feed the scheduler:

* ``upload_sources`` — HIS's records (:class:`~yibao.upload_scheduler.models.UploadSource`): a record's content
  (a new revision when it changed: a fix is sent again), or its withdrawal. The record goes to its lane (and
  shard) by kind and business key;
* ``his_results`` — what the chains told HIS: an inpatient settlement opens its 4101 结算清单, owed by the
  deadline the settings give, before HIS has sent the content; a refund withdraws a 清单 not sent yet.

A message that cannot be read — not JSON, a kind no lane uploads, a record without its business key — raises
:class:`~yibao.core.errors.InputError` naming what is wrong (the runtime parks it). Inbox keys are prefixed by
origin (``src:`` source id, ``his:`` result id) so the two id spaces never collide.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from yibao.chains.model import Absorption, Effects
from yibao.core.errors import InputError
from yibao.core.results import HisResult
from yibao.hisevents.models import validation_reason
from yibao.upload_scheduler.config import LaneSpec, UploadConfig, lane_key
from yibao.upload_scheduler.errors import UnknownLaneError
from yibao.upload_scheduler.models import UploadSource, parse_source
from yibao.upload_scheduler.records import Intent, key_of
from yibao.upload_scheduler.state import LaneState

__all__ = ["make_router", "absorb_source", "absorb_his_result", "SETTLEMENT_LIST"]

Router = Callable[[str, bytes], "Absorption[LaneState] | None"]
#: the lane a settled inpatient stay owes a 清单 to
SETTLEMENT_LIST = "4101"


def make_router(config: UploadConfig) -> Router:
    def route(topic_id: str, value: bytes) -> Absorption[LaneState] | None:
        if topic_id == "upload_sources":
            return absorb_source(config, value)
        if topic_id == "his_results":
            return absorb_his_result(config, value)
        return None

    return route


def _lane(config: UploadConfig, kind: str) -> LaneSpec:
    spec = config.lane(kind)
    if spec is None:
        known = ", ".join(sorted(config.lanes))
        raise UnknownLaneError(f"kind {kind!r}: no lane uploads it (known: {known})")
    return spec


def absorb_source(config: UploadConfig, value: bytes) -> Absorption[LaneState]:
    src: UploadSource = parse_source(value)
    spec = _lane(config, src.kind)
    if src.op == "upsert" and not src.record:
        raise InputError(f"{src.kind}: record is empty (an upsert carries the record's content)")
    key = key_of(spec, src.record, src.record_key)
    lane = lane_key(spec, key)
    deadline = src.deadline_at or src.occurred_at + spec.deadline.span
    if src.op == "withdraw":
        reason: str | None = "withdrawn by HIS"
    elif spec.requires is not None:
        reason = f"sent once {spec.requires.lane} of the same key is accepted"
    else:
        reason = None

    def apply(st: LaneState, fx: Effects) -> None:
        st.records.offer(Intent(
            what="source" if src.op == "upsert" else "withdraw", lane=lane, key=key, target=spec.target,
            kind=spec.kind, occurred_at=src.occurred_at, due_at=spec.schedule.due(src.occurred_at),
            deadline_at=deadline, now=fx.now, his_visit_id=src.his_visit_id, insuplc_admdvs=src.insuplc_admdvs,
            payload=dict(src.record) if src.op == "upsert" else None, source_id=src.source_id,
            reason=reason))

    return Absorption(message_id=f"src:{src.source_id}", visit_key=lane, visit_kind="upload", apply=apply)


def absorb_his_result(config: UploadConfig, value: bytes) -> Absorption[LaneState] | None:
    try:
        result = HisResult.model_validate_json(value)
    except ValidationError as exc:
        raise InputError(f"not a HisResult: {validation_reason(exc)}") from None
    spec = config.lane(SETTLEMENT_LIST)
    if spec is None or result.visit_kind != "inpatient":
        return None
    if result.kind == "settled" and result.setl_id:
        key, what, reason = result.setl_id, "expect", "awaiting the 清单 content from HIS"
        occurred = result.setl_time or result.occurred_at
    elif result.kind == "refunded" and result.orig_setl_id:
        key, what, reason = result.orig_setl_id, "withdraw", "the settlement was refunded before its 清单 went"
        occurred = result.occurred_at
    else:
        return None
    lane = lane_key(spec, key)
    deadline: _dt.datetime = occurred + config.settlement_list_deadline

    def apply(st: LaneState, fx: Effects) -> None:
        st.records.offer(Intent(what=what, lane=lane, key=key, target=spec.target, kind=spec.kind,  # type: ignore[arg-type]
                                occurred_at=occurred, due_at=spec.schedule.due(occurred), deadline_at=deadline,
                                now=fx.now, his_visit_id=result.his_visit_id, reason=reason,
                                insuplc_admdvs=result.insuplc_admdvs))

    return Absorption(message_id=f"his:{result.message_id}", visit_key=lane, visit_kind="upload", apply=apply)


