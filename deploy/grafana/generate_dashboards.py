"""Generates the Grafana dashboards of yibao-bridge (dashboards/*.json) from one short description.

Why a generator rather than hand-edited JSON: a dashboard is ~30 panels of near-identical JSON whose ids and grid
positions must not collide, and whose queries must use the label sets the code really exports. Here each panel
is one line of intent; layout and boilerplate follow. tests/unit/deploy checks that the committed JSON is what
this script produces, and that every metric it queries exists in the code (or is one of the announced chain and
reconciliation metrics).

    python deploy/grafana/generate_dashboards.py           # rewrite dashboards/*.json
    python deploy/grafana/generate_dashboards.py --check   # exit 1 when a committed file is stale

Standard library only: it runs wherever Python 3.11 does, without the project installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Panel", "Row", "DASHBOARDS", "ROWS", "build_overview", "panel_queries", "render", "write_all", "main"]

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

#: selectors reused by the queries; the variables are defined in _templating()
SVC = 'namespace=~"$namespace", service=~"$service"'
NS = 'namespace=~"$namespace"'
PLATFORM = 'namespace=~"$namespace", platform=~"$platform"'

#: outcomes of a platform call that mean the platform (or the way to it) failed, not the business rules
#: (yibao.envelope.metrics.OUTCOMES: success, rejected, invalid, transport, unknown, gateway_auth, error)
PLATFORM_FAILURES = "transport|unknown|gateway_auth|error"


@dataclass(frozen=True)
class Panel:
    """One panel: a title, its queries (expr, legend) and how to show them."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"  #: timeseries, stat or bars (a timeseries drawn as bars)
    width: int = 12
    height: int = 8
    description: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ()  #: (from value, colour), first value None

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        targets = [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
             "range": True, "instant": False}
            for i, (expr, legend) in enumerate(self.queries)
        ]
        defaults: dict[str, Any] = {"unit": self.unit}
        if self.thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"value": value, "color": colour} for value, colour in self.thresholds],
            }
        panel: dict[str, Any] = {
            "id": panel_id,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": targets,
        }
        if self.kind == "stat":
            panel["type"] = "stat"
            defaults["color"] = {"mode": "thresholds"}
            panel["options"] = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background" if self.thresholds else "value",
                "graphMode": "none",
                "textMode": "value_and_name",
                "justifyMode": "auto",
                "orientation": "auto",
            }
        else:
            panel["type"] = "timeseries"
            defaults["custom"] = {
                "drawStyle": "bars" if self.kind == "bars" else "line",
                "fillOpacity": 60 if self.kind == "bars" else 10,
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"mode": "normal" if self.kind == "bars" else "none", "group": "A"},
            }
            if self.thresholds:
                defaults["custom"]["thresholdsStyle"] = {"mode": "line"}
            panel["options"] = {
                "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                           "calcs": ["lastNotNull", "max"]},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
        return panel


@dataclass(frozen=True)
class Row:
    """A row of panels. ``services``: the workers whose own metrics the row shows (each of them must export every
    metric its panels query); empty for rows of the metrics every worker has. A new service (mobilepay,
    workinjury-sync, upload-scheduler) gets a row naming it when it ships: tests/integration/deploy checks the
    row's queries against that worker's live /metrics, and asks for a row once a worker exports metrics of its
    own."""

    title: str
    panels: tuple[Panel, ...]
    collapsed: bool = False
    services: tuple[str, ...] = ()


def _quantiles(metric: str, by: str, selector: str) -> tuple[tuple[str, str], ...]:
    """p50 and p99 of a histogram, per ``by`` labels."""
    legend = " ".join("{{" + label.strip() + "}}" for label in by.split(","))
    return tuple(
        (f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[$__rate_interval])))",
         f"p{int(q * 100)} {legend}")
        for q in (0.5, 0.99)
    )


def _rows() -> tuple[Row, ...]:
    workers = Row("Workers", (
        Panel("Ready pods per service", (
            (f"sum by (service) (yibao_worker_ready{{{SVC}}})", "{{service}}"),
        ), kind="stat", width=12, height=5,
            description="Pods whose /readyz answered ready (consuming, database answering, parking possible). "
                        "A service at 0 does no work.",
            thresholds=((None, "red"), (1, "green"))),
        Panel("Pods not ready", (
            (f"count(yibao_worker_ready{{{SVC}}} == 0) or vector(0)", "not ready"),
        ), kind="stat", width=4, height=5, thresholds=((None, "green"), (1, "red"))),
        Panel("Retries by error", (
            (f"sum by (service, error) (rate(yibao_retries_total{{{SVC}}}[$__rate_interval]))",
             "{{service}} {{error}}"),
        ), unit="ops", width=8, height=5,
            description="Transient failures retried with backoff; work is parked when attempts run out."),
    ))
    events = Row("Events", (
        Panel("Events consumed per topic", (
            (f"sum by (service, topic) (rate(yibao_events_consumed_total{{{SVC}}}[$__rate_interval]))",
             "{{service}} ← {{topic}}"),
        ), unit="ops", width=8),
        Panel("Events handled by outcome", (
            (f"sum by (service, outcome) (rate(yibao_events_handled_total{{{SVC}}}[$__rate_interval]))",
             "{{service}} {{outcome}}"),
        ), unit="ops", width=8,
            description="processed; duplicate (absorbed by the inbox); skipped (tombstones); parked (dead-lettered)"),
        Panel("Processing latency p50 / p99", _quantiles("yibao_event_processing_seconds", "service", SVC),
              unit="s", width=8, description="Time to handle one message, retries included."),
    ))
    parked = Row("Dead letters and outbox", (
        Panel("Dead letters by reason", (
            (f"sum by (service, reason_code) (increase(yibao_dead_letters_total{{{SVC}}}[$__rate_interval]))",
             "{{service}} {{reason_code}}"),
        ), kind="bars", width=6,
            description="Messages parked on the dead-letter topic (or the parked_work table). Each needs a look; "
                        "replay once the cause is fixed."),
        Panel("Dead letters in the time range", (
            (f"sum by (reason_code) (increase(yibao_dead_letters_total{{{SVC}}}[$__range]))", "{{reason_code}}"),
        ), kind="stat", width=3, thresholds=((None, "green"), (1, "orange"))),
        Panel("Dead letters waiting for replay", (
            (f"max by (store) (yibao_dlq_depth{{{NS}}})", "{{store}}"),
        ), kind="stat", width=3, thresholds=((None, "green"), (1, "orange")),
            description="DLQ depth: letters `yibao replay dlq` has not gone through yet (topic), and letters the "
                        "topic could not take (table)."),
        Panel("Outbox pending", (
            (f"max by (service) (yibao_outbox_pending{{{SVC}}})", "{{service}}"),
        ), width=6, description="Results written but not yet published to Kafka. Growing: Kafka is unreachable "
                                "or the relay is stuck."),
        Panel("Outbox published", (
            (f"sum by (service) (rate(yibao_outbox_published_total{{{SVC}}}[$__rate_interval]))", "{{service}}"),
        ), unit="ops", width=6),
    ))
    platform = Row("Platform calls", (
        Panel("Calls by transaction and outcome", (
            (f"sum by (platform, infno, outcome) (rate(yibao_platform_calls_total{{{PLATFORM}}}[$__rate_interval]))",
             "{{platform}} {{infno}} {{outcome}}"),
        ), unit="ops", width=12,
            description="success; rejected (the platform said no: a business answer); invalid (refused before "
                        "sending); transport, unknown, gateway_auth, error (the platform or the way to it failed)"),
        Panel("Failure ratio by transaction", (
            (f'sum by (platform, infno) (rate(yibao_platform_calls_total{{{PLATFORM}, '
             f'outcome=~"{PLATFORM_FAILURES}"}}[$__rate_interval])) / sum by (platform, infno) '
             f"(rate(yibao_platform_calls_total{{{PLATFORM}}}[$__rate_interval]))",
             "{{platform}} {{infno}}"),
        ), unit="percentunit", width=12, thresholds=((None, "green"), (0.05, "red"))),
        Panel("Call latency p50 / p99 by transaction",
              _quantiles("yibao_platform_call_seconds", "platform, infno", PLATFORM), unit="s", width=24),
    ))
    chains = Row("Chains (registration, settlement)", (
        Panel("Chain outcomes", (
            (f"sum by (service, chain, outcome) (rate(yibao_chain_outcomes_total{{{SVC}}}[$__rate_interval]))",
             "{{service}} {{chain}} {{outcome}}"),
        ), unit="ops", width=12),
        Panel("Step latency p50 / p99 by transaction",
              _quantiles("yibao_chain_step_seconds", "service, infno", SVC), unit="s", width=12),
        Panel("Unknown outcomes by resolution", (
            (f"sum by (service, infno, resolution) (increase(yibao_unknown_outcomes_total{{{SVC}}}"
             f"[$__rate_interval]))", "{{service}} {{infno}} {{resolution}}"),
        ), kind="bars", width=12,
            description="Calls whose outcome was unknown (timeout, reset, unreadable reply) and how each was "
                        "resolved (query 5203/5204, 冲正 2601, by hand). Never resent blindly."),
        Panel("Chains parked, open", (
            (f"max by (service) (yibao_parked_open{{{SVC}}})", "{{service}}"),
        ), width=12, thresholds=((None, "green"), (1, "orange"))),
        Panel("Visits in flight per worker vs its limit", (
            (f"sum by (service, instance) (yibao_chain_in_flight{{{SVC}}})", "{{service}} {{instance}}"),
            (f"max by (service) (yibao_chain_in_flight_limit{{{SVC}}})", "{{service}} limit"),
        ), width=12,
            description="Visits each worker drives at once (a platform call in flight or about to be). A worker "
                        "that stays at its limit while the platform is slow is bounded by it: raise "
                        "YIBAO_<SERVICE>_CHAIN_CONCURRENCY (CPU allowing) or add replicas — replicas share the "
                        "due visits, each up to its own limit."),
    ), services=("registration", "settlement"))
    recon = Row("Reconciliation", (
        Panel("Runs by result (per day)", (
            (f"sum by (result) (increase(yibao_recon_runs_total{{{NS}}}[1d]))", "{{result}}"),
        ), width=6),
        Panel("Differences by class (per day)", (
            (f"sum by (class) (increase(yibao_recon_differences_total{{{NS}}}[1d]))", "{{class}}"),
        ), width=6,
            description="platform-only (the classic 单边账), HIS-only, amount mismatch, status mismatch"),
        Panel("Single-sided entries open (单边账)", (
            (f"max(yibao_single_sided_open{{{NS}}})", "open"),
        ), kind="stat", width=6, thresholds=((None, "green"), (1, "orange"))),
        Panel("Oldest open single-sided entry", (
            (f"max(yibao_single_sided_oldest_age_seconds{{{NS}}})", "age"),
        ), kind="stat", unit="s", width=6, thresholds=((None, "green"), (43200, "orange"), (86400, "red"))),
        Panel("Mobile single-sided orders open (单边账)", (
            (f"max(yibao_mobile_single_sided_open{{{NS}}})", "open"),
        ), kind="stat", width=6, thresholds=((None, "green"), (1, "orange")),
            description="Found by the daily mobile-pay reconciliation (paid on the platform not in HIS, or the "
                        "reverse) and not yet repaired: finance approves the repair in the console."),
    ), services=("reconciliation",))
    cdc = Row("CDC in (ingest)", (
        Panel("CDC topics missing", (
            (f"max(yibao_ingest_cdc_topics_missing{{{NS}}})", "missing"),
        ), kind="stat", width=6, height=5, thresholds=((None, "green"), (1, "red")),
            description="CDC topics ingest subscribes to that the broker does not have (yet), or that turned up "
                        "under another spelling: the HIS's changes on them are not read. Check the connector and "
                        "the mapping's topic names; restart ingest for a new spelling."),
    ), services=("ingest",))
    his_writer = Row("Results into HIS (his-writer)", (
        Panel("Results taken to the HIS database", (
            (f"sum by (outcome) (rate(yibao_his_results_written_total{{{NS}}}[$__rate_interval]))", "{{outcome}}"),
        ), unit="ops", width=12, height=5,
            description="written: a new row of the results table; duplicate: that answer was there already "
                        "(a redelivery, harmless)."),
    ), services=("his-writer",))
    mobile = Row("Mobile pay (医保移动支付)", (
        Panel("Orders by phase", (
            (f"sum by (phase) (max by (namespace, phase) (yibao_mobilepay_orders_by_phase{{{NS}}}))", "{{phase}}"),
        ), width=8,
            description="Every mobile-pay order by where it stands: uploaded (waiting for the patient), paid "
                        "(waiting for the platform's callback), confirming (asking 6301), settled, revoked, failed …"),
        Panel("Orders ended by outcome", (
            (f"sum by (version, outcome) (rate(yibao_mobilepay_orders_total{{{NS}}}[$__rate_interval]))",
             "{{version}} {{outcome}}"),
        ), unit="ops", width=8, description="1.0 and 2.0 orders apart: settled, revoked, failed, refused"),
        Panel("Order duration p50 / p99", _quantiles("yibao_mobilepay_order_seconds", "version, outcome", NS),
              unit="s", width=8),
        Panel("Callbacks by outcome", (
            (f"sum by (outcome) (rate(yibao_mobilepay_callbacks_total{{{NS}}}[$__rate_interval]))", "{{outcome}}"),
        ), unit="ops", width=8,
            description="accepted; duplicate (the same event again, acknowledged); refused: bad_signature, "
                        "undecryptable, replayed, stale, malformed, unknown_order"),
        Panel("Callback verification failures (in the time range)", (
            (f'sum(increase(yibao_mobilepay_callbacks_total{{{NS}, '
             f'outcome=~"bad_signature|undecryptable|replayed|stale"}}[$__range]))', "refused"),
        ), kind="stat", width=4, thresholds=((None, "green"), (1, "red")),
            description="Callbacks not believed: forged, tampered, replayed or stale. Any is worth a look."),
        Panel("Refunds by type and outcome", (
            (f"sum by (version, refd_type, outcome) (rate(yibao_mobilepay_refunds_total{{{NS}}}"
             f"[$__rate_interval]))", "{{version}} {{refd_type}} {{outcome}}"),
        ), unit="ops", width=6),
    ), services=("mobilepay",))
    workinjury = Row("Work injury (工伤跨省异地就医): deadlines", (
        Panel("Oldest upload waiting vs its deadline", (
            (f"max by (infno) (yibao_workinjury_upload_oldest_age_seconds{{{NS}}})", "{{infno}} waiting"),
            (f"max(yibao_workinjury_upload_deadline_seconds{{{NS}}})", "deadline"),
        ), unit="s", width=12, thresholds=((None, "green"), (1200, "orange"), (1800, "red")),
            description="The oldest HIS event still waiting for its upload, by transaction, against its deadline (30 "
                        "minutes after the business event). YibaoWorkInjuryUploadDeadlineAtRisk fires at two thirds, "
                        "before the limit."),
        Panel("Uploads at risk", (
            (f"max by (infno) (yibao_workinjury_uploads_at_risk{{{NS}}})", "{{infno}}"),
        ), kind="stat", width=6, thresholds=((None, "green"), (1, "red")),
            description="Cases whose oldest waiting upload is past deadline_warning_ratio of its deadline."),
        Panel("Late uploads (time range)", (
            (f"sum by (infno) (increase(yibao_workinjury_uploads_late_total{{{NS}}}[$__range]))", "{{infno}}"),
        ), kind="stat", width=6, thresholds=((None, "green"), (1, "red"))),
        Panel("Upload age p50 / p99 by transaction", _quantiles("yibao_workinjury_upload_age_seconds", "infno", NS),
              unit="s", width=12, description="From the HIS business event to the platform accepting the upload."),
        Panel("Download lag vs poll interval", (
            (f"max by (infno) (yibao_workinjury_download_lag_seconds{{{NS}}})", "{{infno}} lag"),
            (f"max(yibao_workinjury_download_interval_seconds{{{NS}}})", "interval"),
        ), unit="s", width=12,
            description="Since each stream's last complete poll (every record stored and confirmed with GYU008). "
                        "YibaoWorkInjuryDownloadLagging fires past one and a half intervals."),
        Panel("Records by outcome", (
            (f"sum by (infno, outcome) (rate(yibao_workinjury_records_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} {{outcome}}"),
        ), unit="ops", width=8,
            description="uploaded; refused (the platform); invalid (our checks: parked for HIS to fix, the field "
                        "named); revoked"),
        Panel("Downloaded and confirmed", (
            (f"sum by (infno) (rate(yibao_workinjury_downloaded_records_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} downloaded"),
            (f"sum by (infno) (rate(yibao_workinjury_confirmed_records_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} confirmed"),
            (f"sum by (infno) (rate(yibao_workinjury_redownloads_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} asked again (GYR005)"),
        ), unit="ops", width=8),
        Panel("Realtime checks by outcome", (
            (f"sum by (infno, outcome) (rate(yibao_workinjury_realtime_checks_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} {{outcome}}"),
        ), unit="ops", width=8, description="GYD051, GYD052, GYD055, GYU010, GYD104 asked by HIS over HTTP"),
    ), services=("workinjury-sync",))
    uploads = Row("Uploads and catalogs", (
        Panel("Upload backlog by target and transaction", (
            (f"sum by (target, kind, status) (yibao_upload_backlog{{{NS}}})", "{{target}} {{kind}} {{status}}"),
        ), width=12,
            description="Records the platforms do not hold yet: pending (waiting for their schedule, their content "
                        "or the record they need), sent, rejected (the platform's reason: HIS fixes them), parked "
                        "(ours: a field that breaks a rule)."),
        Panel("Rejections per transaction and target", (
            (f'sum by (target, kind, outcome) (increase(yibao_upload_records_total{{{NS}, '
             f'outcome=~"rejected|parked"}}[$__rate_interval]))', "{{target}} {{kind}} {{outcome}}"),
        ), kind="bars", width=12,
            description="Each rejected record waits for a fix from HIS (a new revision) or `yibao replay uploads`; "
                        "the rest of its batch went on."),
        Panel("Time to the nearest deadline", (
            (f"min by (target, kind) (yibao_upload_deadline_margin_seconds{{{NS}}})", "{{target}} {{kind}}"),
        ), unit="s", width=12, thresholds=((None, "red"), (0, "orange"), (7200, "green")),
            description="Per kind, the time left until the earliest deadline among records not accepted yet; below "
                        "zero a deadline was missed by that long. No line: everything accepted."),
        Panel("Records past their deadline", (
            (f"sum by (target, kind) (yibao_upload_overdue{{{NS}}})", "{{target}} {{kind}}"),
        ), kind="stat", width=6, thresholds=((None, "green"), (1, "red"))),
        Panel("Accepted per transaction", (
            (f'sum by (target, kind) (increase(yibao_upload_records_total{{{NS}, outcome="accepted"}}'
             f"[$__rate_interval]))", "{{target}} {{kind}}"),
        ), kind="bars", width=6),
        Panel("Catalog rows in force", (
            (f"max by (infno) (yibao_catalog_rows{{{NS}}})", "{{infno}}"),
        ), width=8, description="Rows of each platform catalog (1301-1319, 1901, 1201) in the version in force."),
        Panel("Catalog syncs by outcome", (
            (f"sum by (infno, outcome) (increase(yibao_catalog_syncs_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} {{outcome}}"),
        ), kind="bars", width=8,
            description="updated, current, refused (a corrupt file: its name and line are in /catalog/<infno>/"
                        "versions; the catalog in force stays), failed (the platform did not answer)"),
        Panel("Hours since each catalog was last current", (
            (f"(time() - max by (infno) (yibao_catalog_last_success_timestamp_seconds{{{NS}}})) / 3600",
             "{{infno}}"),
        ), width=8, thresholds=((None, "green"), (36, "orange"), (72, "red"))),
        Panel("Platform feedback received (7102 审核, 7103 购药) by outcome", (
            (f"sum by (infno, outcome) (increase(yibao_upload_inbound_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} {{outcome}}"),
        ), kind="bars", width=24,
            description="What the prescription centre posted on /national/inbound: recorded (kept with the 7101 "
                        "record, told to HIS), duplicate (a msgid heard before), unknown_rx (a hi_rxno of no "
                        "prescription of ours), not_yet (its 7101 answer still being recorded), invalid (a field "
                        "named), unauthenticated / forbidden (refused before it was read), unavailable (the "
                        "database: the platform sends again)."),
    ), services=("upload-scheduler",))
    counter = Row("Counter (queries, 备案, 核酸 batch, slips)", (
        Panel("Queries by transaction and status", (
            (f"sum by (infno, status) (rate(yibao_counter_queries_total{{{NS}}}[$__rate_interval]))",
             "{{infno}} {{status}}"),
        ), unit="ops", width=8,
            description="Queries HIS, kiosks and WeChat asked through the counter (topic and HTTP): ok, refused by "
                        "the platform, bad request (the field named), timeout (the asker's budget ran out)."),
        Panel("Query time p50 / p99", _quantiles("yibao_counter_query_seconds", "infno, source", NS),
              unit="s", width=8, description="source: the platform, or the cache (1901 dictionaries, 1201)."),
        Panel("核酸 batch rows by outcome", (
            (f"sum by (outcome) (rate(yibao_counter_batch_rows_total{{{NS}}}[$__rate_interval]))", "{{outcome}}"),
        ), unit="ops", width=4,
            description="imported, duplicate (settled once per person × date × item), bad (refused with its row "
                        "number), settled, rejected, parked."),
        Panel("Settlement slips served", (
            (f"sum by (format) (rate(yibao_counter_slips_total{{{NS}}}[$__rate_interval]))", "{{format}}"),
        ), unit="ops", width=4),
    ), services=("counter",))
    return (workers, events, parked, platform, chains, recon, mobile, cdc, his_writer, workinjury, uploads,
            counter)


def _templating() -> dict[str, Any]:
    def query_var(name: str, label: str, query: str) -> dict[str, Any]:
        return {
            "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": f"{name}-variable"}, "definition": query,
            "refresh": 2, "includeAll": True, "allValue": ".*", "multi": True, "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        }

    return {"list": [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        query_var("namespace", "Namespace", "label_values(yibao_worker_ready, namespace)"),
        query_var("service", "Service", 'label_values(yibao_worker_ready{namespace=~"$namespace"}, service)'),
        query_var("platform", "Platform", 'label_values(yibao_platform_calls_total{namespace=~"$namespace"}, '
                                         'platform)'),
    ]}


def panel_queries(rows: tuple[Row, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(row/panel title, PromQL, services of the row) of every panel query."""
    return [(f"{row.title} / {panel.title}", expr, row.services)
            for row in rows for panel in row.panels for expr, _ in panel.queries]


def _layout(rows: tuple[Row, ...]) -> list[dict[str, Any]]:
    """Rows stacked top to bottom; panels fill each row left to right, wrapping at 24 columns."""
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        panels.append({"type": "row", "id": next_id, "title": row.title, "collapsed": row.collapsed,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(panel.to_json(next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return panels


def build_overview() -> dict[str, Any]:
    """The "yibao-bridge overview" dashboard."""
    return {
        "uid": "yibao-bridge-overview",
        "title": "yibao-bridge overview",
        "description": "Workers, events, dead letters, outbox, platform calls, chains, reconciliation and work-injury "
                       "deadlines of yibao-bridge. Labels carry services, topics, transactions and outcomes — never patient "
                       "data.",
        "tags": ["yibao-bridge", "医保"],
        "timezone": "Asia/Shanghai",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": _templating(),
        "panels": _layout(ROWS["yibao-bridge-overview.json"]()),
    }


#: file name → builder
DASHBOARDS = {"yibao-bridge-overview.json": build_overview}
#: file name → its rows (what the tests check the queries of)
ROWS = {"yibao-bridge-overview.json": _rows}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, ensure_ascii=False, indent=2) + "\n"


def write_all(out_dir: Path = OUT_DIR, *, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) every dashboard; returns the names that differed."""
    stale = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        path = out_dir / name
        text = render(build())
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale dashboards (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = write_all(check=args.check)
    for name in stale:
        print(f"{'stale' if args.check else 'written'}: {name}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
