"""What the 备案 chain tells HIS: HisResults on ``yibao.his.results.v1``, keyed by the HIS filing record's id —
``filed`` (the serial in ``detail.trt_dcla_detl_sn``), ``cancelled`` (target ``filing``) for a revocation,
``rejected`` with the platform's reason, ``parked`` with ours — so the his-writer writes them into HIS like every
other answer. Ids are stable (the same unit run again emits the same ids)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from yibao.chains.metrics import CHAIN_OUTCOMES, CHAIN_SECONDS
from yibao.chains.model import Effects
from yibao.core import clock
from yibao.core.results import HisResult, HisResultKind, stable_id

__all__ = ["SERVICE", "emit_result"]

SERVICE = "counter"


def emit_result(fx: Effects, kind: HisResultKind, ident: tuple[object, ...], *, request: str,
                since: _dt.datetime | None = None, **fields: Any) -> HisResult:
    visit_kind = "inpatient" if fx.kind == "inpatient" else "outpatient"
    result = HisResult(message_id=stable_id(SERVICE, fx.key, *ident, "result", kind), his_visit_id=fx.key,
                       visit_kind=visit_kind, kind=kind, service=SERVICE, **fields)  # type: ignore[arg-type]
    fx.emit("his_results", result)

    def count() -> None:  # labels: bounded vocabularies
        CHAIN_OUTCOMES.labels(SERVICE, "filing", kind).inc()
        if since is not None:
            CHAIN_SECONDS.labels(SERVICE, "filing", request).observe(
                max(0.0, (clock.now() - clock.as_shanghai(since)).total_seconds()))

    fx.after_commit(count)
    return result
