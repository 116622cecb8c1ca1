"""Metrics of workinjury-sync. Labels are bounded: the transaction (GYxxx) and an outcome — never a person, a case
or a serial.

Deadlines are the point of this service (seed 002: uploads within 30 minutes of the business event, downloads every
30 minutes). The gauges below are read from the database by every replica (:mod:`yibao.workinjury_sync.deadlines`),
so they say the same thing whichever pod Prometheus asks and however many there are (aggregate with ``max``):

* ``yibao_workinjury_upload_oldest_age_seconds{infno}`` — the oldest HIS event still waiting for its upload, against
  ``yibao_workinjury_upload_deadline_seconds{infno}`` (the catalog's deadline_s); the alert fires before the limit;
* ``yibao_workinjury_uploads_at_risk{infno}`` — cases past ``deadline_warning_ratio`` of their deadline;
* ``yibao_workinjury_download_lag_seconds{infno}`` — since the stream's last complete poll (every record stored and
  confirmed), against ``yibao_workinjury_download_interval_seconds{infno}``.

Counted when a unit of work commits: each upload's age (``yibao_workinjury_upload_age_seconds``, with the late ones
in ``yibao_workinjury_uploads_late_total``), records by outcome, downloads, confirmations and re-downloads.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["RECORDS", "UPLOAD_AGE", "LATE", "OLDEST_WAITING", "DEADLINE", "AT_RISK", "DOWNLOAD_LAG", "POLL_INTERVAL",
           "DOWNLOADED", "CONFIRMED", "DOWNLOAD_REFUSALS", "REDOWNLOADS", "REALTIME"]

RECORDS = Counter("yibao_workinjury_records_total",
                  "Records HIS asked to upload, by how they ended: uploaded, refused (the platform), invalid (our "
                  "checks: parked for HIS to fix), revoked", ["infno", "outcome"])
UPLOAD_AGE = Histogram("yibao_workinjury_upload_age_seconds",
                       "From the HIS business event to the platform accepting its upload (deadline: 1800 s)",
                       ["infno"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1200, 1500, 1800, 2700, 3600, 7200))
LATE = Counter("yibao_workinjury_uploads_late_total", "Uploads the platform accepted after their deadline",
               ["infno"])
OLDEST_WAITING = Gauge("yibao_workinjury_upload_oldest_age_seconds",
                       "Age of the oldest HIS event still waiting for its upload (0: none waiting)", ["infno"])
DEADLINE = Gauge("yibao_workinjury_upload_deadline_seconds", "The upload's deadline after the business event "
                                                             "(the catalog's deadline_s)", ["infno"])
AT_RISK = Gauge("yibao_workinjury_uploads_at_risk",
                "Cases whose oldest waiting upload is past deadline_warning_ratio of its deadline", ["infno"])
DOWNLOAD_LAG = Gauge("yibao_workinjury_download_lag_seconds",
                     "Seconds since the stream's last complete poll (every record stored and confirmed with GYU008)",
                     ["infno"])
POLL_INTERVAL = Gauge("yibao_workinjury_download_interval_seconds", "How often the stream is polled (setting "
                                                                    "poll_interval_s)", ["infno"])
DOWNLOADED = Counter("yibao_workinjury_downloaded_records_total", "Records downloaded and stored", ["infno"])
CONFIRMED = Counter("yibao_workinjury_confirmed_records_total", "Downloaded records confirmed with GYU008",
                    ["infno"])
DOWNLOAD_REFUSALS = Counter("yibao_workinjury_download_refusals_total",
                            "Download calls the platform refused (e.g. confirmations missing)", ["infno"])
REDOWNLOADS = Counter("yibao_workinjury_redownloads_total",
                      "Deliveries asked again with GYR005 (lost here before they were stored)", ["infno"])
REALTIME = Counter("yibao_workinjury_realtime_checks_total",
                   "Realtime checks HIS asked over HTTP, by outcome: passed, failed (the platform's answer), refused, "
                   "invalid (the request), timeout (the budget), error", ["infno", "outcome"])
