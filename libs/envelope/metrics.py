"""Prometheus metrics of platform calls, shared by every envelope (national, mobile pay, work injury).

Labels are the platform, the transaction number and the outcome — never a msgid, a visit or a person: label
values must stay few, and personal data never leaves the process through metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["PLATFORM_CALLS", "PLATFORM_CALL_SECONDS", "OUTCOMES", "record_call"]

#: the outcome label values (also the ``outcome`` column of ``platform_calls``)
OUTCOMES = ("success", "rejected", "invalid", "transport", "unknown", "gateway_auth", "error")

PLATFORM_CALLS = Counter(
    "yibao_platform_calls_total",
    "Calls to a 医保 platform by transaction and outcome",
    ["platform", "infno", "outcome"],
)

PLATFORM_CALL_SECONDS = Histogram(
    "yibao_platform_call_seconds",
    "Duration of a call to a 医保 platform (one HTTP exchange, or a refusal before sending)",
    ["platform", "infno"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)


def record_call(platform: str, infno: str, outcome: str, seconds: float) -> None:
    """Count one call and observe its duration."""
    PLATFORM_CALLS.labels(platform=platform, infno=infno, outcome=outcome).inc()
    PLATFORM_CALL_SECONDS.labels(platform=platform, infno=infno).observe(seconds)
