"""Every Grafana panel queries a metric the running workers really export — checked against their live /metrics,
not a list: a renamed or removed metric turns the panel blank in production and this test red.

The rows of deploy/grafana/generate_dashboards.py say whose metrics they show: a row naming services needs each of
those workers to export what it queries; a row of common metrics needs some worker to. A service that ships with
metrics of its own (mobilepay, workinjury-sync, upload-scheduler …) needs a row naming it; its worker is started
here as soon as it exists (live.services_with_a_worker).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType

import httpx
import pytest

from integration.deploy.live import exported_series, services_with_a_worker
from unit.deploy.ops_support import DEPLOY, METRIC_NAME, dashboard_queries
from yibao.stack.bridge import LocalBridge

pytestmark = [pytest.mark.integration]


@functools.cache
def _generator() -> ModuleType:
    path = DEPLOY / "grafana" / "generate_dashboards.py"
    spec = importlib.util.spec_from_file_location("yibao_deploy_generate_dashboards_live", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _panels() -> list[tuple[str, str, tuple[str, ...]]]:
    generator = _generator()
    return [entry for rows in generator.ROWS.values() for entry in generator.panel_queries(rows())]


@pytest.fixture(scope="module")
def live_series(running_bridge: LocalBridge) -> dict[str, set[str]]:
    """service → the yibao_ series names its worker's /metrics carries."""
    return {name: exported_series(httpx.get(f"{worker.url}/metrics", timeout=5).text)
            for name, worker in running_bridge.workers.items()}


def test_the_generator_describes_every_query_of_the_committed_dashboards() -> None:
    # what is checked below (the generator's rows) is what ops import (the JSON files)
    assert sorted(expr for _, expr, _ in _panels()) == sorted(
        expr for where, expr in dashboard_queries() if ": variable " not in where)


def test_every_service_the_dashboards_name_has_a_worker() -> None:
    named = {service for _, _, services in _panels() for service in services}
    missing = sorted(named - set(services_with_a_worker()))
    assert not missing, f"panels for {missing}, which have no worker in this version: add the row when it ships"


@pytest.mark.parametrize("where, expr, services", _panels(), ids=[p[0] for p in _panels()])
def test_every_panel_queries_metrics_its_workers_export(
        live_series: dict[str, set[str]], where: str, expr: str, services: tuple[str, ...]) -> None:
    for metric in set(METRIC_NAME.findall(expr)):
        if services:
            lacking = [s for s in services if metric not in live_series[s]]
            assert not lacking, f"{where}: {metric} is not in the /metrics of {lacking}"
        else:
            assert any(metric in names for names in live_series.values()), \
                f"{where}: no running worker exports {metric}"


def test_every_template_variable_queries_an_exported_metric(live_series: dict[str, set[str]]) -> None:
    everything = set().union(*live_series.values())
    for where, expr in dashboard_queries():
        if ": variable " in where:
            assert set(METRIC_NAME.findall(expr)) <= everything, where


def test_a_worker_with_metrics_of_its_own_has_a_dashboard_row(live_series: dict[str, set[str]]) -> None:
    common = set.intersection(*live_series.values())
    named = {service for _, _, services in _panels() for service in services}
    for service, names in live_series.items():
        own = names - common
        assert not own or service in named, \
            f"{service} exports {sorted(own)} but no dashboard row shows its metrics (Row(..., services=...))"
