"""The worker Deployments agree with the code: services, ports, probes, security, scaling bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from unit.deploy.ops_support import (
    BASE,
    COMPONENTS,
    SECRETS_DIR,
    SERVICES,
    WORKER_SERVICES,
    check_overlay_dirs,
    component_dirs,
    deployed_services,
    config_generator_data,
    env_prefix_of,
    kustomization,
    load_yaml_documents,
    of_kind,
    option_dirs,
    overlay_dirs,
    pod_templates,
    resource_documents,
    service_settings_class,
)
from yibao.core.topics import CATALOG



def _service_of(deployment: dict[str, Any]) -> str:
    command = _worker(deployment)["command"]
    assert command[:2] == ["yibao", "worker"] and len(command) == 3, f"{command} is not `yibao worker <service>`"
    return command[2]


def _worker(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: one container per worker pod"
    return containers[0]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"probe names port {port!r}, which the container does not declare"
    return named[port]


def _by_service(deployments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {_service_of(d): d for d in deployments.values()}


def _useful_replicas(service: str, settings: dict[str, str]) -> int:
    """The most replicas that get partitions: the largest partition count among the topics the service consumes.

    Ingest consumes the CDC topics, whose partition count is a setting (they belong to the Debezium connector).
    """
    if service == "ingest":
        field = service_settings_class("ingest").model_fields["cdc_partitions"]
        return int(settings.get(env_prefix_of("ingest") + "CDC_PARTITIONS", field.default))
    counts = [spec.partitions for spec in CATALOG if service in spec.consumers]
    return max(counts, default=1)


def test_every_service_has_exactly_one_deployment(deployments: dict[str, dict[str, Any]]) -> None:
    services = [_service_of(d) for d in deployments.values()]
    assert sorted(services) == sorted(SERVICES)


def test_every_deployment_runs_yibao_worker_for_a_known_service(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        service = _service_of(deployment)
        assert service in SERVICES, f"{name} runs unknown service {service}"
        assert name == f"yibao-{service}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_probes_use_the_port_of_the_service_settings_default(
        deployments: dict[str, dict[str, Any]], service: str) -> None:
    container = _worker(_by_service(deployments)[service])
    port = service_settings_class(service).default_web_port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _port_number(container, container[probe]["httpGet"]["port"]) == port, f"{service} {probe}"


def test_liveness_asks_healthz_and_readiness_asks_readyz(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        container = _worker(deployment)
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


def test_startup_probe_allows_time_for_the_migration_at_start(deployments: dict[str, dict[str, Any]]) -> None:
    # the web server starts only after `prepare()` (schema migration under a lock, topic check)
    for name, deployment in deployments.items():
        probe = _worker(deployment)["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 120, name


def test_prometheus_annotations_point_at_the_metrics_port(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        service = _service_of(deployment)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert int(annotations["prometheus.io/port"]) == service_settings_class(service).default_web_port, name


def test_pods_run_non_root_with_a_read_only_root_and_a_writable_tmp(base_docs: list[dict[str, Any]]) -> None:
    for name, pod in pod_templates(base_docs):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be an emptyDir"


def test_secrets_are_mounted_read_only_at_the_secrets_dir(base_docs: list[dict[str, Any]]) -> None:
    for name, pod in pod_templates(base_docs):
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod.get("initContainers", []) + pod["containers"]:
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == SECRETS_DIR)
            assert mount["readOnly"] is True, name
            sources = volumes[mount["name"]]["projected"]["sources"]
            assert {"yibao-database"} <= {s["secret"]["name"] for s in sources}, name


def test_every_container_has_requests_and_limits(base_docs: list[dict[str, Any]]) -> None:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}

    def memory(text: str) -> int:
        return int(text[:-2]) * units[text[-2:]]

    for name, pod in pod_templates(base_docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            assert memory(resources["requests"]["memory"]) <= memory(resources["limits"]["memory"]), name
            assert memory(resources["limits"]["memory"]) >= 256 * 2**20, f"{name}: a Python worker needs room"


def test_selectors_match_the_pod_labels(deployments: dict[str, dict[str, Any]]) -> None:
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        assert labels["app.kubernetes.io/component"] == _service_of(deployment), name


def test_every_worker_has_a_service_on_its_port(
        base_docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind(base_docs, "Service")}
    for name, deployment in deployments.items():
        service = services[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        (port,) = service["spec"]["ports"]
        container = _worker(deployment)
        assert port["port"] == _port_number(container, port["targetPort"]), name
        assert port["port"] == service_settings_class(_service_of(deployment)).default_web_port, name


def _replicas(folder: Path, deployments: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts = {name: d["spec"]["replicas"] for name, d in deployments.items()}
    for entry in kustomization(folder).get("replicas", []):
        counts[entry["name"]] = entry["count"]
    return counts


@pytest.mark.parametrize("folder", [BASE, *overlay_dirs(), *check_overlay_dirs()], ids=lambda p: p.name)
def test_replicas_do_not_exceed_the_partitions_they_can_use(
        folder: Path, deployments: dict[str, dict[str, Any]]) -> None:
    settings = config_generator_data(folder)
    for name, count in _replicas(folder, deployments).items():
        useful = _useful_replicas(_service_of(deployments[name]), settings)
        assert 1 <= count <= useful, f"{folder.name}: {name} has {count} replicas, only {useful} can get partitions"


def test_disruption_budgets_only_guard_replicated_workers(
        base_docs: list[dict[str, Any]], deployments: dict[str, dict[str, Any]]) -> None:
    budgets = of_kind(base_docs, "PodDisruptionBudget")
    assert budgets
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        (target,) = [d for d in deployments.values()
                     if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        replicas = target["spec"]["replicas"]
        assert replicas >= 2, f"{budget['metadata']['name']} would block drains of a single replica"
        allowed = budget["spec"].get("maxUnavailable", replicas - budget["spec"].get("minAvailable", replicas))
        assert 1 <= allowed < replicas


def test_overlays_patch_only_existing_workers(deployments: dict[str, dict[str, Any]]) -> None:
    for folder in overlay_dirs():
        for entry in kustomization(folder).get("replicas", []):
            assert entry["name"] in deployments
        for patch in kustomization(folder).get("patches", []):
            for doc in load_yaml_documents(folder / patch["path"]):
                if doc["kind"] == "Deployment":
                    assert doc["metadata"]["name"] in deployments


def test_the_base_runs_exactly_the_services_that_have_a_worker() -> None:
    # a Deployment without a worker restarts in a loop; a worker without a Deployment never runs
    assert deployed_services(BASE) == sorted(WORKER_SERVICES)


def test_every_service_without_a_worker_waits_as_an_opt_in_component() -> None:
    waiting = sorted(set(SERVICES) - set(WORKER_SERVICES))
    assert [p.name for p in component_dirs()] == waiting, \
        f"{COMPONENTS}: one component per service not shipped yet ({waiting}); a service that ships moves to base/"
    for folder in component_dirs():
        assert kustomization(folder)["kind"] == "Component", folder.name
        assert deployed_services(folder) == [folder.name]


def test_options_change_how_the_workers_run_and_deploy_no_service() -> None:
    # components/ holds services (one each, while not shipped); options/ ways of running all of them
    assert option_dirs()
    for folder in option_dirs():
        assert kustomization(folder)["kind"] == "Component", folder.name
        assert not deployed_services(folder), f"{folder.name}: a service belongs in base/ or components/"
        assert folder.name not in SERVICES


@pytest.mark.parametrize("folder", overlay_dirs(), ids=lambda p: p.name)
def test_hospital_overlays_enable_only_services_that_have_a_worker(folder: Path) -> None:
    missing = sorted(set(deployed_services(folder)) - set(WORKER_SERVICES))
    assert not missing, f"{folder.name} deploys {missing}, which have no worker in this version"
