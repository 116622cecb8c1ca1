"""With kubectl on the machine, the base and every overlay render, and the result is what the tests assume."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.deploy.ops_support import BASE, DEPLOY, config_generator_data, of_kind, overlay_dirs

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with its built-in kustomize) is not installed")


@functools.cache
def _render(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("folder", [BASE, *overlay_dirs()], ids=lambda p: p.name)
def test_kustomization_renders_with_the_settings_the_tests_checked(folder: Path) -> None:
    docs = _render(folder)
    (config,) = of_kind(docs, "ConfigMap")
    assert config["data"] == config_generator_data(folder)
    generated = config["metadata"]["name"]
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [generated]
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {"yibao-bridge"}


@pytest.mark.parametrize("folder", overlay_dirs(), ids=lambda p: p.name)
def test_overlay_points_every_pod_at_the_hospital_registry(folder: Path) -> None:
    docs = _render(folder)
    for doc in of_kind(docs, "Deployment") + of_kind(docs, "Job"):
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert "/" in container["image"] and ":" in container["image"], container["image"]


@pytest.mark.parametrize("folder", [DEPLOY / "grafana", DEPLOY / "prometheus"], ids=lambda p: p.name)
def test_monitoring_kustomizations_render(folder: Path) -> None:
    assert _render(folder)
