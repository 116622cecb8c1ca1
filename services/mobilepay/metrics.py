"""Metrics of the mobile-pay service (served at the worker's /metrics). Labels are bounded vocabularies — versions,
outcomes, phases, actions — never an order, a patient or a payOrdId. Order outcomes are counted once the unit of
work committed (:mod:`yibao.mobilepay.results`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ORDERS", "REFUNDS", "CALLBACKS", "CHANNEL_REQUESTS", "ORDERS_BY_PHASE", "ORDER_SECONDS"]

ORDERS = Counter("yibao_mobilepay_orders_total",
                 "Mobile-pay orders that ended, by version (2.0, 1.0) and outcome (settled, revoked, failed, refused)",
                 ["version", "outcome"])
REFUNDS = Counter("yibao_mobilepay_refunds_total", "Mobile-pay refunds that ended, by version, refdType and outcome",
                  ["version", "refd_type", "outcome"])
CALLBACKS = Counter(
    "yibao_mobilepay_callbacks_total",
    "Settlement-result callbacks received, by outcome: accepted, duplicate (the same event again, acknowledged), "
    "replayed (a message seen before: refused), bad_signature, undecryptable, stale, malformed, unknown_order",
    ["outcome"])
CHANNEL_REQUESTS = Counter("yibao_mobilepay_channel_requests_total",
                           "Channel API requests by action and outcome (ok, refused, denied, invalid)",
                           ["action", "outcome"])
ORDERS_BY_PHASE = Gauge("yibao_mobilepay_orders_by_phase", "Mobile-pay orders by phase (refreshed every few seconds)",
                        ["phase"])
ORDER_SECONDS = Histogram("yibao_mobilepay_order_seconds",
                          "From the channel's order to its end (settled, revoked, failed), by version",
                          ["version", "outcome"],
                          buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600))
