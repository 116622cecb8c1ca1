"""Metrics of the reconciliation service (served at the worker's /metrics with the runtime's).

Label values are bounded vocabularies: run results (the final states), difference classes, repair actions and
outcomes — never a setl_id, a person or a visit.
"""

from __future__ import annotations

import datetime as _dt

from prometheus_client import Counter, Gauge

from yibao.core import clock

__all__ = ["RUNS", "DIFFERENCES", "REPAIRS", "SINGLE_SIDED_OPEN", "SINGLE_SIDED_OLDEST_AGE", "set_single_sided",
           "MOBILE_SINGLE_SIDED_OPEN", "set_mobile_single_sided"]

RUNS = Counter(
    "yibao_recon_runs", "Reconciliation runs ended, by result: balanced, differences_found, repaired_and_balanced, "
    "failed, refused", ["result"],
)
DIFFERENCES = Counter(
    "yibao_recon_differences", "Differences found by 3202, by class: platform_only (单边账), his_only, "
    "amount_mismatch, status_mismatch", ["class"],
)
REPAIRS = Counter(
    "yibao_recon_repairs", "Repairs of differences, by class, action and outcome (repaired, resolved, manual, "
    "pending_approval, failed)", ["class", "action", "outcome"],
)
SINGLE_SIDED_OPEN = Gauge(
    "yibao_single_sided_open", "Single-sided ledger entries (单边账: platform-only and HIS-only) not yet repaired",
)
SINGLE_SIDED_OLDEST_AGE = Gauge(
    "yibao_single_sided_oldest_age_seconds", "Age of the oldest open single-sided entry since first found (0: none)",
)


MOBILE_SINGLE_SIDED_OPEN = Gauge(
    "yibao_mobile_single_sided_open",
    "Mobile-pay single-sided orders (paid on the platform not in HIS, or the reverse) not yet repaired",
)


def set_mobile_single_sided(open_count: int) -> None:
    MOBILE_SINGLE_SIDED_OPEN.set(open_count)


def set_single_sided(open_count: int, oldest_first_seen: _dt.datetime | None,
                     now: _dt.datetime | None = None) -> None:
    SINGLE_SIDED_OPEN.set(open_count)
    if oldest_first_seen is None or open_count == 0:
        SINGLE_SIDED_OLDEST_AGE.set(0)
    else:
        SINGLE_SIDED_OLDEST_AGE.set(max(0.0, ((now or clock.now()) - oldest_first_seen).total_seconds()))
