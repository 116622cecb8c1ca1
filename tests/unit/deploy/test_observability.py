"""Dashboards and alerts query metrics the code exports (or that are announced), with labels those metrics have."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from unit.deploy.ops_support import (
    COMING_METRICS,
    DASHBOARDS,
    DEPLOY,
    GROUPING,
    METRIC_NAME,
    SELECTOR,
    SELECTOR_LABEL,
    TARGET_LABELS,
    alert_rules,
    code_metrics,
    dashboard_files,
    dashboard_queries,
    known_metrics,
)

#: label names that would carry a person, a visit or a message: never a metric label
PERSONAL_LABELS = frozenset({
    "certno", "psn_no", "psn_name", "name", "patient", "patient_id", "his_patient_id", "his_visit_id", "visit_id",
    "mdtrt_id", "setl_id", "msgid", "phone", "tel", "mobile", "id_no", "card_no", "mdtrt_cert_no", "ipt_otp_no",
})
OTHER_METRIC = re.compile(r"\b(?!yibao_)([a-z_:][a-z0-9_:]*)\{")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _all_queries() -> list[tuple[str, str]]:
    return dashboard_queries() + [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def _metric_labels(expr: str) -> set[str]:
    known = known_metrics()
    labels = set(TARGET_LABELS)
    for name in METRIC_NAME.findall(expr):
        labels |= set(known[name].labels) | ({"le"} if name.endswith("_bucket") else set())
    return labels


def _grouping(expr: str) -> list[set[str]]:
    return [{label.strip() for label in group.split(",") if label.strip()} for group in GROUPING.findall(expr)]


def _only_yibao_metrics(expr: str) -> bool:
    return not any(name not in ("by", "without") for name in OTHER_METRIC.findall(expr))


def _load_generator() -> ModuleType:
    path = DEPLOY / "grafana" / "generate_dashboards.py"
    spec = importlib.util.spec_from_file_location("yibao_deploy_generate_dashboards", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


# --- metric names and labels ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where, expr", _all_queries())
def test_every_metric_queried_exists_in_the_code_or_is_announced(where: str, expr: str) -> None:
    known = known_metrics()
    names = METRIC_NAME.findall(expr)
    unknown = sorted(set(names) - set(known))
    assert not unknown, f"{where}: {unknown} neither exported by the code nor in COMING_METRICS"


@pytest.mark.parametrize("where, expr", _all_queries())
def test_selectors_use_labels_the_metric_has(where: str, expr: str) -> None:
    known = known_metrics()
    for name, body in SELECTOR.findall(expr):
        allowed = set(known[name].labels) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
        used = set(SELECTOR_LABEL.findall(body))
        assert used <= allowed, f"{where}: {name} has no label {sorted(used - allowed)}"


@pytest.mark.parametrize("where, expr", [q for q in _all_queries() if _only_yibao_metrics(q[1])])
def test_aggregations_group_by_labels_the_metrics_have(where: str, expr: str) -> None:
    allowed = _metric_labels(expr)
    for group in _grouping(expr):
        assert group <= allowed, f"{where}: grouping by {sorted(group - allowed)}, which no queried metric has"


def test_no_metric_label_can_hold_patient_data() -> None:
    for metric in list(code_metrics()) + list(COMING_METRICS):
        personal = set(metric.labels) & PERSONAL_LABELS
        assert not personal, f"{metric.name} has personal-data labels {sorted(personal)}"


def test_announced_metrics_match_the_code_once_it_exports_them() -> None:
    exported = {metric.name: metric for metric in code_metrics()}
    for coming in COMING_METRICS:
        if coming.name in exported:
            actual = exported[coming.name]
            assert (actual.kind, set(actual.labels)) == (coming.kind, set(coming.labels)), \
                f"{coming.name}: the code exports {actual.kind}{actual.labels}; dashboards and alerts expect " \
                f"{coming.kind}{coming.labels} — update COMING_METRICS and the queries together"


# --- dashboards -------------------------------------------------------------------------------------------------


def test_dashboards_are_what_the_generator_produces() -> None:
    generator = _load_generator()
    assert sorted(generator.DASHBOARDS) == [p.name for p in dashboard_files()]
    for name, build in generator.DASHBOARDS.items():
        committed = (DASHBOARDS / name).read_text(encoding="utf-8")
        assert committed == generator.render(build()), \
            f"{name} is stale: run python deploy/grafana/generate_dashboards.py"


def _boards() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, json.loads(path.read_text(encoding="utf-8"))) for path in dashboard_files()]


def test_dashboard_has_the_overview_title_and_a_stable_uid() -> None:
    titles = {board["title"]: board["uid"] for _, board in _boards()}
    assert titles.get("yibao-bridge overview") == "yibao-bridge-overview"


def test_dashboard_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    for path, board in _boards():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{path.name}: {panel['title']} is wider than the dashboard"
            mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                    for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not mine & cells, f"{path.name}: {panel['title']} overlaps another panel"
            cells |= mine


def test_dashboard_panels_ask_for_prometheus_through_the_datasource_variable() -> None:
    for path, board in _boards():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], f"{path.name}: {panel['title']} queries nothing"


def test_dashboard_shows_what_the_brief_asks_for() -> None:
    queried = " ".join(expr for _, expr in dashboard_queries())
    for metric in ("yibao_events_consumed_total", "yibao_events_handled_total", "yibao_dead_letters_total",
                   "yibao_event_processing_seconds_bucket", "yibao_outbox_pending", "yibao_worker_ready",
                   "yibao_platform_calls_total", "yibao_platform_call_seconds_bucket",
                   *(m.name + ("_bucket" if m.kind == "histogram" else "") for m in COMING_METRICS)):
        assert metric in queried, f"no panel shows {metric}"
    assert "histogram_quantile(0.5," in queried and "histogram_quantile(0.99," in queried


def test_legends_name_only_labels_the_query_keeps() -> None:
    for path, board in _boards():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                groups = _grouping(target["expr"])
                if not groups:
                    continue
                kept = set.union(*groups)
                legend = set(LEGEND_LABEL.findall(target["legendFormat"]))
                assert legend <= kept, f"{path.name}: {panel['title']} legend names {sorted(legend - kept)}"


# --- alerts -----------------------------------------------------------------------------------------------------


def test_alert_names_are_unique_and_severities_known() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["labels"]["team"] in ("ops", "finance"), rule["alert"]


def test_every_alert_has_a_summary_and_description_in_english_and_chinese() -> None:
    for rule in alert_rules():
        notes = rule["annotations"]
        for key in ("summary", "description"):
            assert notes.get(key) and not CJK.search(notes[key].replace("单边账", "").replace("医保", "")
                                                     .replace("前置机", "").replace("冲正", "")), \
                f"{rule['alert']}: {key} in English"
            assert notes.get(f"{key}_zh") and CJK.search(notes[f"{key}_zh"]), f"{rule['alert']}: {key}_zh in Chinese"


def test_alert_annotations_name_only_labels_the_expression_keeps() -> None:
    for rule in alert_rules():
        groups = _grouping(rule["expr"])
        if not groups or not _only_yibao_metrics(rule["expr"]):
            continue
        kept = groups[0]
        text = " ".join(str(value) for value in rule["annotations"].values())
        named = set(TEMPLATE_LABEL.findall(text))
        assert named <= kept, f"{rule['alert']} names {sorted(named - kept)}, dropped by its aggregation"


def test_alerts_cover_what_the_brief_asks_for() -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    wanted = {
        "worker not ready": "yibao_worker_ready",
        "dead letters rising": "yibao_dead_letters_total",
        "outbox backlog growing": "yibao_outbox_pending",
        "unknown outcomes unresolved": "yibao_unknown_outcomes_total",
        "platform error rate": "yibao_platform_calls_total",
        "reconciliation not balanced": "yibao_recon_runs_total",
        "oldest single-sided ledger older than a day": "yibao_single_sided_oldest_age_seconds",
    }
    for what, metric in wanted.items():
        assert any(metric in expr for expr in expressions.values()), f"no alert for {what}"
    oldest = next(expr for expr in expressions.values() if "yibao_single_sided_oldest_age_seconds" in expr)
    assert "86400" in oldest
