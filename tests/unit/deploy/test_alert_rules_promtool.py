"""The alerting rules, evaluated by Prometheus's own promtool (Debian's `prometheus` package).

* `promtool check rules` accepts the rules file (syntax, PromQL, the annotation templates);
* `promtool test rules` runs tests/unit/deploy/promtool/alerts_test.yaml: input series under which every alert
  fires on its condition and stays quiet otherwise;
* every alert of alerts.yaml has both kinds of case there, so a new alert cannot ship untested.

Skipped when promtool is not installed (`apt-get install prometheus`), except under YIBAO_REQUIRE_REAL=1 (CI).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.deploy.ops_support import alert_rules, alert_rules_file, require_tool

RULE_TESTS = Path(__file__).resolve().parent / "promtool" / "alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "Debian: apt-get install prometheus")


def _rule_tests() -> list[dict[str, Any]]:
    return yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_rules_file(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "yibao-bridge.rules.yml").write_text(alert_rules_file(), encoding="utf-8")
    result = _run([promtool, "check", "rules", "yibao-bridge.rules.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout + result.stderr


def test_every_alert_fires_on_its_condition_and_stays_quiet_otherwise(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(alert_rules_file(summaries_only=True), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = _run([promtool, "test", "rules", RULE_TESTS.name], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_quiet() -> None:
    firing: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for case in _rule_tests():
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet)[check["alertname"]] += 1
    for rule in alert_rules():
        assert firing[rule["alert"]], f"{rule['alert']}: no promtool case where it fires ({RULE_TESTS.name})"
        assert quiet[rule["alert"]], f"{rule['alert']}: no promtool case where it stays quiet ({RULE_TESTS.name})"


def test_rule_tests_name_only_alerts_that_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    for case in _rule_tests():
        for check in case.get("alert_rule_test", []):
            assert check["alertname"] in names, f"{case['name']}: no alert {check['alertname']}"


def test_rule_tests_expect_the_labels_each_alert_sets() -> None:
    labels = {rule["alert"]: rule["labels"] for rule in alert_rules()}
    for case in _rule_tests():
        for check in case.get("alert_rule_test", []):
            for expected in check.get("exp_alerts") or []:
                assert labels[check["alertname"]].items() <= expected["exp_labels"].items(), case["name"]
