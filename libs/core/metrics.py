"""Prometheus metrics every worker exposes (prometheus-client, default registry, served at /metrics).

Conventions: names ``yibao_<what>_total`` for counters and ``_seconds`` for durations; labels are bounded
vocabularies (service, topic, outcome, reason code, infno) — never a patient, visit or message id.
"""

from __future__ import annotations

import re

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "EVENTS_CONSUMED",
    "EVENTS_HANDLED",
    "DEAD_LETTERS",
    "DLQ_DEPTH",
    "PROCESSING_SECONDS",
    "RETRIES",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PENDING",
    "WORKER_READY",
    "OUTAGE",
    "OUTAGES",
    "OUTBOX_PARKED",
    "PURGED",
    "render",
    "bounded",
    "CONTENT_TYPE_LATEST",
]

EVENTS_CONSUMED = Counter(
    "yibao_events_consumed_total", "Messages taken from a topic", ["service", "topic"]
)
EVENTS_HANDLED = Counter(
    "yibao_events_handled_total",
    "Messages handled, by outcome: processed, duplicate (absorbed by the inbox), skipped (tombstones and the "
    "like), parked (dead-lettered)",
    ["service", "outcome"],
)
DEAD_LETTERS = Counter(
    "yibao_dead_letters_total", "Messages parked with a reason", ["service", "reason_code"]
)
PROCESSING_SECONDS = Histogram(
    "yibao_event_processing_seconds", "Time to handle one message, retries included", ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter("yibao_retries_total", "Transient failures retried", ["service", "error"])
OUTBOX_PUBLISHED = Counter("yibao_outbox_published_total", "Outbox messages published", ["service"])
OUTBOX_PENDING = Gauge("yibao_outbox_pending", "Outbox messages not yet published (last seen)", ["service"])
DLQ_DEPTH = Gauge(
    "yibao_dlq_depth", "Dead letters waiting for `yibao replay dlq`: on the DLQ topic, or in the parked_work table "
    "when the topic could not take them (the same figure from every worker: use max)", ["store"])
WORKER_READY = Gauge("yibao_worker_ready", "1 when the worker is consuming and its database answers", ["service"])
OUTAGE = Gauge("yibao_outage", "1 while the service waits for an unreachable database or broker (nothing is "
               "parked meanwhile, no attempt is spent)", ["service", "resource"])
OUTAGES = Counter("yibao_outages_total", "Outages the service met and waited out, by resource", ["service", "resource"])
OUTBOX_PARKED = Counter("yibao_outbox_parked_total", "Outbox rows the broker refused for good (too large, invalid), "
                        "parked in parked_work so the rows behind them flow", ["service", "reason_code"])
PURGED = Counter("yibao_retention_purged_total", "Rows deleted by the retention policy, by table", ["table"])

_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,119}$")


def bounded(value: object, *, other: str = "other") -> str:
    """A label value fed from anything but a constant (a reason code, a topic): kept when it is a short machine
    word with nothing personal-looking in it (no run of 11 or more digits: a phone, an id, a psn_no), else
    ``other``. Labels are never ids."""
    text = str(value)
    if not _LABEL.match(text) or re.search(r"\d{11,}", text):
        return other
    return text


def render() -> bytes:
    return generate_latest()
