"""A real Prometheus (Debian's binary) scrapes the running workers the way the cluster's does, and their series
arrive: `up` is 1 for every worker, each worker's own `yibao_worker_ready` is there, and the project's alert rules
load and evaluate against them without errors.

Skipped when the prometheus binary is missing (`apt-get install prometheus`), except under YIBAO_REQUIRE_REAL=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration.deploy.live import Prometheus, poll
from unit.deploy.ops_support import alert_rules, alert_rules_file, require_tool
from yibao.stack.bridge import LocalBridge

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def prometheus(running_bridge: LocalBridge, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = require_tool("prometheus", "Debian: apt-get install prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = workdir / "yibao-bridge.rules.yml"
    rules.write_text(alert_rules_file(), encoding="utf-8")
    targets = {name: worker.port for name, worker in running_bridge.workers.items()}
    server = Prometheus(binary, workdir, targets, rule_files=[rules]).start()
    try:
        yield server
    finally:
        server.stop()


def _by_pod(result: list[dict]) -> dict[str, float]:
    return {series["metric"]["pod"]: float(series["value"][1]) for series in result}


def test_every_worker_is_scraped_and_up(prometheus: Prometheus, running_bridge: LocalBridge) -> None:
    expected = {f"yibao-{name}-0": 1.0 for name in running_bridge.workers}
    up = poll("every worker up", lambda: (_by_pod(prometheus.query('up{job="yibao-bridge"}')) == expected
                                          and expected), timeout=60)
    assert up == expected
    targets = prometheus.api("targets")["activeTargets"]
    assert {t["labels"]["pod"]: t["health"] for t in targets} == {pod: "up" for pod in expected}


def test_each_worker_reports_itself_ready_through_prometheus(
        prometheus: Prometheus, running_bridge: LocalBridge) -> None:
    def ready() -> dict[str, str]:
        result = prometheus.query('yibao_worker_ready{job="yibao-bridge"} == 1')
        return {series["metric"]["pod"]: series["metric"]["service"] for series in result}

    expected = {f"yibao-{name}-0": name for name in running_bridge.workers}
    seen: dict[str, str] = {}

    def all_ready() -> bool:
        seen.clear()
        seen.update(ready())
        return seen == expected

    try:
        poll("yibao_worker_ready from every worker", all_ready, timeout=60)
    except AssertionError:
        not_ready = sorted(set(expected) - set(seen))
        readyz = {pod: httpx.get(running_bridge.workers[expected[pod]].url + "/readyz", timeout=10).text
                  for pod in not_ready}
        raise AssertionError(f"not ready through Prometheus: {not_ready}; their /readyz now: {readyz}") from None


def test_yibao_series_carry_the_target_labels_the_rules_and_dashboards_group_by(prometheus: Prometheus) -> None:
    result = poll("yibao_ series", lambda: prometheus.query('{__name__=~"yibao_.+", job="yibao-bridge"}'),
                  timeout=60)
    for series in result:
        assert {"namespace", "pod", "job", "instance"} <= series["metric"].keys(), series["metric"]


def test_the_alert_rules_load_and_evaluate_on_the_scraped_series(prometheus: Prometheus) -> None:
    def evaluated() -> list[dict]:
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("2") and
                                      not rule["lastEvaluation"].startswith("0001") for rule in rules) else []

    rules = poll("every rule evaluated once", evaluated, timeout=60)
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken, broken
    # nothing is wrong with a bridge that has just started idle: no alert of ours fires
    firing = [rule["name"] for rule in rules for alert in rule.get("alerts", []) if alert["state"] == "firing"]
    assert not firing, firing
