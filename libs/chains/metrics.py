"""Chain metrics (Prometheus). Labels are bounded: service, chain kind, outcome, infno, resolution."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CHAIN_OUTCOMES", "STEP_SECONDS", "UNKNOWN_OUTCOMES", "PARKED_OPEN", "CHAIN_SECONDS", "VISITS_BY_STATUS",
           "PARK_RECORD_FAILURES", "IN_FLIGHT", "IN_FLIGHT_LIMIT", "DATABASE_OUTAGE", "TRANSACTIONS", "CALLS_SENT",
           "HANDOFFS"]

CHAIN_OUTCOMES = Counter(
    "yibao_chain_outcomes_total", "Results given back to HIS, by chain (outpatient/inpatient) and outcome",
    ["service", "chain", "outcome"],
)
STEP_SECONDS = Histogram(
    "yibao_chain_step_seconds", "Platform call time of a chain step, by transaction", ["service", "infno"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UNKNOWN_OUTCOMES = Counter(
    "yibao_unknown_outcomes_total",
    "Steps whose outcome was unknown (lost answer, crash mid-call), by how they were resolved: "
    "unresolved (just seen), retried, adopted (the platform had done it), absent (it had not), reversed (2601), "
    "nothing_done (2601 found nothing), manual (parked for a person)",
    ["service", "infno", "resolution"],
)
PARK_RECORD_FAILURES = Counter(
    "yibao_chain_park_record_failures_total",
    "Visits parked although the chain could not record the parking in its state (e.g. a state that no longer "
    "loads): look at the visit before replaying it", ["service"],
)
PARKED_OPEN = Gauge("yibao_parked_open", "Visits parked and waiting for `yibao replay`", ["service"])
VISITS_BY_STATUS = Gauge("yibao_chain_visits", "Visits by chain status", ["service", "status"])
CHAIN_SECONDS = Histogram(
    "yibao_chain_seconds", "From the HIS request to its final result, by chain and request kind",
    ["service", "chain", "request"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
IN_FLIGHT = Gauge("yibao_chain_in_flight", "Visits this worker is driving now (a platform call in flight or about to be)",
                  ["service"])
IN_FLIGHT_LIMIT = Gauge(
    "yibao_chain_in_flight_limit",
    "The most visits one worker drives at once (setting chain_concurrency): when yibao_chain_in_flight stays at it, "
    "raise it or add replicas", ["service"])
DATABASE_OUTAGE = Gauge("yibao_chain_database_outage",
                        "1 while the chain engine cannot reach its database (work waits; no attempt is spent)",
                        ["service"])
TRANSACTIONS = Counter(
    "yibao_chain_transactions_total",
    "Database transactions of the chain engine, by kind: absorb (messages in), drive (a call's outcome and the next "
    "call's journal), claim (leasing due visits, in batches), renew (leases of every visit held), failure", ["service", "kind"])
CALLS_SENT = Counter("yibao_chain_calls_total", "Platform calls the chain engine sent, by purpose (step, query, reversal)",
                     ["service", "purpose"])
HANDOFFS = Counter(
    "yibao_chain_handoffs_total",
    "Visits made ready by this worker's absorbing and driven at once by it, without a claim transaction (the rest "
    "wait for the scheduler's claim)", ["service"])
