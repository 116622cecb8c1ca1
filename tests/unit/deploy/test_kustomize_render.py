"""kustomize renders the base, every hospital overlay, the Strimzi resources, the monitoring objects and the tests'
overlays with every opt-in component; the result is what the other deploy tests assume, and every rendered object
is valid against its schema (test_kubernetes_schemas.py).

kustomize comes from `make deploy-tools` (built from the Go module proxy, cached) or kubectl's built-in one.
Missing both: skipped, except under YIBAO_REQUIRE_REAL=1 (CI), where it fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from unit.deploy.ops_support import (
    BASE,
    K8S,
    check_overlay_dirs,
    config_generator_data,
    of_kind,
    overlay_dirs,
    pod_templates,
    render,
)

WORKER_FOLDERS = [BASE, *overlay_dirs(), *[p for p in check_overlay_dirs() if "strimzi" not in p.name]]


@pytest.mark.parametrize("folder", WORKER_FOLDERS, ids=lambda p: p.name)
def test_kustomization_renders_with_the_settings_the_tests_checked(folder: Path) -> None:
    docs = render(folder)
    (config,) = of_kind(docs, "ConfigMap")
    assert config["data"] == config_generator_data(folder)
    generated = config["metadata"]["name"]
    for _, pod in pod_templates(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [generated]
    assert {doc["metadata"].get("namespace") for doc in docs if doc["kind"] != "Namespace"} == {"yibao-bridge"}


@pytest.mark.parametrize("folder", overlay_dirs(), ids=lambda p: p.name)
def test_overlay_points_every_pod_at_the_hospital_registry(folder: Path) -> None:
    docs = render(folder)
    for _, pod in pod_templates(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert "/" in container["image"] and ":" in container["image"], container["image"]


@pytest.mark.parametrize("folder", [K8S / "strimzi", *[p for p in check_overlay_dirs() if "strimzi" in p.name]],
                         ids=lambda p: p.name)
def test_strimzi_resources_render_into_the_kafka_namespace(folder: Path) -> None:
    docs: list[dict[str, Any]] = render(folder)
    assert docs
    assert {doc["metadata"].get("namespace") for doc in docs} == {"kafka"}
