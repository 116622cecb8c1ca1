"""Metrics of the results-to-HIS writer (besides the runtime's own)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["RESULTS_WRITTEN"]

RESULTS_WRITTEN = Counter(
    "yibao_his_results_written_total",
    "HisResults taken to the HIS database: written (a new row) or duplicate (its message_id was there already)",
    ["outcome"],
)
