"""Upload and catalog metrics (Prometheus). Labels are bounded vocabularies — target, kind (a lane of lanes.yaml),
status, outcome, catalog infno — never a patient, a record key or a message id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["RECORDS", "BACKLOG", "DEADLINE_MARGIN", "OVERDUE", "DELIVERY_SECONDS", "CATALOG_SYNCS", "CATALOG_ROWS",
           "CATALOG_APPLIED_ROWS", "CATALOG_LAST_SUCCESS", "CATALOG_APPLY_SECONDS", "CATALOG_PUBLISHED_ROWS",
           "INBOUND"]

RECORDS = Counter(
    "yibao_upload_records_total",
    "Upload records settled, by target, kind and outcome: accepted, rejected (the platform's reason), parked (ours: "
    "a field that breaks a rule, a target not enabled), withdrawn", ["target", "kind", "outcome"])
BACKLOG = Gauge(
    "yibao_upload_backlog",
    "Upload records the platform does not hold yet, by target, kind and status (pending, sent, rejected, parked)",
    ["target", "kind", "status"])
DEADLINE_MARGIN = Gauge(
    "yibao_upload_deadline_margin_seconds",
    "Seconds until the earliest deadline among the records of a kind not accepted yet (negative: missed by that "
    "long); no series while every record is accepted", ["target", "kind"])
OVERDUE = Gauge("yibao_upload_overdue", "Upload records past their deadline and not accepted, by target and kind",
                ["target", "kind"])
DELIVERY_SECONDS = Histogram(
    "yibao_upload_delivery_seconds",
    "From a record's event (settlement, discharge, the HIS change) to the platform accepting it, by target and kind",
    ["target", "kind"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400))
CATALOG_SYNCS = Counter(
    "yibao_catalog_syncs_total",
    "Catalog sync rounds by catalog and outcome: updated, current (nothing newer), refused (a corrupt file: the "
    "catalog in force stays), failed (the platform did not answer)", ["infno", "outcome"])
CATALOG_ROWS = Gauge("yibao_catalog_rows", "Rows of each catalog in force", ["infno"])
CATALOG_APPLIED_ROWS = Counter("yibao_catalog_applied_rows_total", "Catalog rows applied, by catalog", ["infno"])
CATALOG_LAST_SUCCESS = Gauge("yibao_catalog_last_success_timestamp_seconds",
                             "When each catalog was last found current or updated (unix time)", ["infno"])
CATALOG_APPLY_SECONDS = Histogram("yibao_catalog_apply_seconds", "Time to apply one catalog update (download "
                                  "excluded), by catalog", ["infno"],
                                  buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
CATALOG_PUBLISHED_ROWS = Counter("yibao_catalog_published_rows_total",
                                 "Catalog rows published on yibao.catalog.v1, by catalog", ["infno"])
INBOUND = Counter(
    "yibao_upload_inbound_total",
    "What the platform posted back about uploaded records (7102 处方审核结果, 7103 处方购药结果), by transaction and "
    "outcome: recorded, duplicate (a msgid heard before: answered the same), unknown_rx (no prescription of ours "
    "with that hi_rxno), not_yet (a 7101 answer still being recorded: the platform sends again), invalid (a field "
    "that breaks the catalog's rule), unauthenticated, forbidden (address not allowed, or inbound not configured), "
    "unavailable (the database: the platform sends again). infno is \"-\" for a post refused before its body was "
    "read", ["infno", "outcome"])
