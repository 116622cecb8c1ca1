"""What the deploy tests share: the deploy/ files parsed, the code's settings and metrics, the announced ones.

Imported as ``unit.deploy.ops_support`` (``tests`` is on the path; pytest's importlib mode has no conftest
imports).

The tests check the ops material against the code rather than against itself: service names come from
``yibao.cli.worker.SERVICES``, env names from the pydantic-settings classes, metric names from the prometheus
collectors of ``yibao.core.metrics`` and ``yibao.envelope.metrics``. Overlays are resolved here with the one
kustomize feature they use for settings (a merged env file), so no kubectl is needed; the rendering test uses
kubectl when the machine has it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from prometheus_client.metrics import MetricWrapperBase
import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings, SettingsConfigDict

from yibao.cli.worker import SERVICES
from yibao.core.settings import CommonSettings

__all__ = [
    "REPO", "DEPLOY", "K8S", "BASE", "OVERLAYS", "SECRET_TEMPLATE", "DASHBOARDS", "ALERTS", "DOCKERFILE",
    "SECRETS_DIR", "DESIGN_PORTS", "ComingMetric", "COMING_METRICS", "TARGET_LABELS", "KnownMetric", "SERVICES",
    "load_yaml_documents", "read_env_file", "kustomization", "config_generator_data", "resource_documents",
    "of_kind", "overlay_dirs", "env_prefix_of", "service_settings_class", "other_settings_classes",
    "all_settings_classes", "env_names", "known_env_names", "metric_modules", "code_metrics", "known_metrics",
    "METRIC_NAME", "SELECTOR", "SELECTOR_LABEL", "GROUPING", "dashboard_files", "dashboard_queries",
    "alert_rules", "alert_rules_file", "require_tool", "REQUIRE_REAL", "COMPONENTS", "TEST_OVERLAYS",
    "WORKER_SERVICES", "component_dirs", "check_overlay_dirs", "deployed_services", "TOOLS_BIN", "kustomize",
    "render", "rendered_folders", "OPTIONS", "option_dirs", "pod_templates", "projected_secret_files",
]

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
#: opt-in kustomize components: the services that have no worker yet
COMPONENTS = K8S / "components"
#: opt-in kustomize components that change how every worker runs (not a service): authenticated-workers
OPTIONS = K8S / "options"
#: overlays the tests use to render and check the components together with the base
TEST_OVERLAYS = Path(__file__).resolve().parent / "overlays"
SECRET_TEMPLATE = K8S / "secret-template.yaml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
#: where the pods mount their Secrets: yibao.core.settings.secrets_dir()'s default
SECRETS_DIR = "/run/secrets/yibao"

#: the web port of each worker as the design fixes it; a service's settings class, once it exists, must agree
DESIGN_PORTS = {
    "ingest": 6060, "registration": 6061, "settlement": 6062, "upload-scheduler": 6063,
    "workinjury-sync": 6064, "mobilepay": 6065, "reconciliation": 6066, "his-writer": 6067,
    "counter": 6068,
}


@dataclass(frozen=True)
class ComingMetric:
    """A metric announced by a service still being written (chains: issue 5, reconciliation: issue 6)."""

    name: str
    kind: str  #: counter, gauge, histogram
    labels: tuple[str, ...]


#: metrics the dashboards and alerts may use before the code exports them (a service still being written); the
#: chain (issue 5) and reconciliation (issue 6) metrics are exported now and checked against the code itself
COMING_METRICS: tuple[ComingMetric, ...] = ()

#: labels Prometheus adds when it scrapes (target labels), usable in any query
TARGET_LABELS = frozenset({"namespace", "pod", "job", "instance", "container", "endpoint"})

#: modules whose prometheus collectors are the code's metrics; services' own ``metrics`` modules are added when
#: they exist
METRIC_MODULES = ("yibao.core.metrics", "yibao.envelope.metrics", "yibao.chains.metrics",
                  # ingest's one metric of its own lives beside the subscription it measures
                  "yibao.ingest.subscription")

#: exposed series names per metric kind
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "info": ("_info",),
}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize env file: KEY=value lines, # comments, blank lines."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=value"
        assert key not in pairs, f"{path.name}:{number}: {key} set twice"
        pairs[key] = value
    return pairs


def kustomization(folder: Path) -> dict[str, Any]:
    return load_yaml_documents(folder / "kustomization.yaml")[0]


def _generator_data(folder: Path, name: str, data: dict[str, str]) -> dict[str, str]:
    """``data`` with the folder's own generators of ConfigMap ``name`` applied (create, merge or replace)."""
    for generator in kustomization(folder).get("configMapGenerator", []):
        if generator["name"] != name:
            continue
        own: dict[str, str] = {}
        for env in generator.get("envs", []):
            own.update(read_env_file(folder / env))
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            own[key] = value
        if generator.get("behavior", "create") in ("merge", "create"):
            data = {**data, **own}
        else:  # replace
            data = own
    return data


def _patched_data(folder: Path, name: str, data: dict[str, str]) -> dict[str, str]:
    """``data`` with the folder's JSON 6902 patches of ConfigMap ``name`` applied (add, replace, remove of
    ``/data/<KEY>``); a patch of it in any other form fails, so the tests never check settings kustomize would
    not render."""
    data = dict(data)
    for entry in kustomization(folder).get("patches", []):
        if "path" in entry:
            for doc in load_yaml_documents(folder / entry["path"]):
                assert not (doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == name), \
                    f"{folder.name}/{entry['path']}: patch {name} inline as JSON 6902 operations on /data/<KEY>"
            continue
        target = entry.get("target", {})
        if target.get("kind") != "ConfigMap" or target.get("name") != name:
            continue
        operations = yaml.safe_load(entry["patch"])
        assert isinstance(operations, list), f"{folder.name}: patch {name} as JSON 6902 operations on /data/<KEY>"
        for operation in operations:
            path = operation["path"]
            assert path.startswith("/data/"), f"{folder.name}: {name} patched outside /data: {path}"
            key = path.removeprefix("/data/").replace("~1", "/").replace("~0", "~")
            if operation["op"] in ("add", "replace"):
                assert operation["op"] == "add" or key in data, f"{folder.name}: replaces {key}, which is not set"
                data[key] = str(operation["value"])
            elif operation["op"] == "remove":
                del data[key]
            else:
                raise AssertionError(f"{folder.name}: {operation['op']} of {name} is not understood here")
    return data


def config_generator_data(folder: Path, name: str = "yibao-config") -> dict[str, str]:
    """The data of a generated ConfigMap as kustomize renders it: the bases' data, the folder's own generators
    (``behavior: merge``), its components' generators and patches in order, then its own patches (kustomize runs
    a kustomization's components after its generators and before its patches)."""
    spec = kustomization(folder)
    data: dict[str, str] = {}
    for resource in spec.get("resources", []):
        child = (folder / resource).resolve()
        if child.is_dir():
            data.update(config_generator_data(child, name))
    data = _generator_data(folder, name, data)
    for component in spec.get("components", []):
        component_folder = (folder / component).resolve()
        data = _patched_data(component_folder, name, _generator_data(component_folder, name, data))
    return _patched_data(folder, name, data)


def resource_documents(folder: Path) -> list[dict[str, Any]]:
    """Every document a kustomization lists (files and, recursively, bases), patches not applied."""
    docs: list[dict[str, Any]] = []
    spec = kustomization(folder)
    for resource in spec.get("resources", []) + spec.get("components", []):
        path = (folder / resource).resolve()
        docs.extend(resource_documents(path) if path.is_dir() else load_yaml_documents(path))
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def overlay_dirs() -> list[Path]:
    return sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())


def component_dirs() -> list[Path]:
    """The components of services not shipped yet (none when every service ships: the folder is then absent)."""
    if not COMPONENTS.is_dir():
        return []
    return sorted(p for p in COMPONENTS.iterdir() if (p / "kustomization.yaml").is_file())


def option_dirs() -> list[Path]:
    return sorted(p for p in OPTIONS.iterdir() if (p / "kustomization.yaml").is_file())


def pod_templates(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every pod the documents make: Deployments, Jobs and the Jobs of CronJobs."""
    pods = []
    for doc in docs:
        if doc.get("kind") in ("Deployment", "Job"):
            pods.append((f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]))
        elif doc.get("kind") == "CronJob":
            pods.append((f"CronJob/{doc['metadata']['name']}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return pods


def projected_secret_files(pod: dict[str, Any], container: dict[str, Any],
                           secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The files the kubelet puts under the secrets dir of ``container`` (file name → content), from ``secrets``
    (Secret name → its data; a name missing there is a Secret the cluster does not have): a projected source with
    ``items`` gives those keys only, one without gives every key; an ``optional`` source may lack its Secret or
    keys, any other fails the test (the pod would not start)."""
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == SECRETS_DIR]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    files: dict[str, str] = {}
    for source in volume["projected"]["sources"]:
        secret = source["secret"]
        data = secrets.get(secret["name"])
        if data is None:
            assert secret.get("optional"), f"the pod would not start without the Secret {secret['name']}"
            continue
        items = secret.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            if item["key"] in data:
                files[item["path"]] = data[item["key"]]
            else:
                assert secret.get("optional"), f"the pod would not start without {secret['name']} {item['key']}"
    return files


def check_overlay_dirs() -> list[Path]:
    return sorted(p for p in TEST_OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())


def deployed_services(folder: Path) -> list[str]:
    """The services a kustomization runs: the third word of each Deployment's `yibao worker <service>`."""
    return sorted(d["spec"]["template"]["spec"]["containers"][0]["command"][2]
                  for d in of_kind(resource_documents(folder), "Deployment"))


#: the services this version has a worker for (`yibao worker <service>` finds its ``app`` module): the base runs
#: exactly these; the others wait as components
WORKER_SERVICES: tuple[str, ...] = tuple(
    s for s, package in SERVICES.items() if importlib.util.find_spec(f"{package}.app") is not None)


# --- settings ---------------------------------------------------------------------------------------------------


def env_prefix_of(service: str) -> str:
    return "YIBAO_" + service.upper().replace("-", "_") + "_"


def _conventional_settings(service: str) -> type[CommonSettings]:
    """The settings a service will have by the project's convention, while its own class is not written yet."""
    return type(
        f"Conventional{service.title().replace('-', '')}Settings",
        (CommonSettings,),
        {
            "__module__": __name__,
            "__annotations__": {"service_name": ClassVar[str], "default_web_port": ClassVar[int]},
            "model_config": SettingsConfigDict(env_prefix=env_prefix_of(service), extra="ignore",
                                               case_sensitive=False),
            "service_name": service,
            "default_web_port": DESIGN_PORTS[service],
        },
    )


@functools.cache
def service_settings_class(service: str) -> type[CommonSettings]:
    """The service's own settings class (``yibao.<service>.settings``), else the conventional stand-in."""
    package = SERVICES[service]
    try:
        module = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError as exc:
        if exc.name in (package, f"{package}.settings"):
            return _conventional_settings(service)
        raise
    candidates = [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, CommonSettings) and obj is not CommonSettings
        and obj.__module__ == module.__name__
    ]
    named = [cls for cls in candidates if cls.service_name == service]
    chosen = named or candidates
    assert len(chosen) == 1, f"{module.__name__}: cannot tell which settings class is the worker's: {chosen}"
    return chosen[0]


def other_settings_classes() -> list[type[BaseSettings]]:
    """Settings read by every process besides the worker's own: the CLI's common ones, the platform clients'."""
    from yibao.envelope.mobilepay.settings import MobilePaySettings
    from yibao.envelope.mobilepay.wechat import WeChatSettings
    from yibao.envelope.settings import PlatformSettings
    from yibao.envelope.workinjury.settings import WorkInjuryPlatformSettings

    return [CommonSettings, PlatformSettings, MobilePaySettings, WeChatSettings, WorkInjuryPlatformSettings]


def all_settings_classes() -> list[type[BaseSettings]]:
    return other_settings_classes() + [service_settings_class(s) for s in SERVICES]


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable (upper case) → field name, as pydantic-settings reads them."""
    prefix = cls.model_config.get("env_prefix", "")
    names: dict[str, str] = {}
    for field_name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            choices = [alias]
        elif info.alias:
            choices = [info.alias]
        else:
            choices = [prefix + field_name]
        for choice in choices:
            names[choice.upper()] = field_name
    return names


@functools.cache
def known_env_names() -> dict[str, tuple[type[BaseSettings], str]]:
    known: dict[str, tuple[type[BaseSettings], str]] = {}
    for cls in all_settings_classes():
        for env, field_name in env_names(cls).items():
            known.setdefault(env, (cls, field_name))
    return known


# --- metrics ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownMetric:
    name: str
    kind: str
    labels: tuple[str, ...]
    coming: bool

    def series_names(self) -> set[str]:
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        return {base + suffix for suffix in _SUFFIXES[self.kind]}


def metric_modules() -> list[Any]:
    modules = [importlib.import_module(name) for name in METRIC_MODULES]
    for package in SERVICES.values():
        try:
            modules.append(importlib.import_module(f"{package}.metrics"))
        except ModuleNotFoundError as exc:
            if exc.name not in (package, f"{package}.metrics"):
                raise
    return modules


@functools.cache
def code_metrics() -> tuple[KnownMetric, ...]:
    found = []
    for module in metric_modules():
        for obj in vars(module).values():
            if isinstance(obj, MetricWrapperBase):
                name = obj._name + ("_total" if obj._type == "counter" else "")
                found.append(KnownMetric(name, obj._type, tuple(obj._labelnames), coming=False))
    return tuple(found)


def known_metrics() -> dict[str, KnownMetric]:
    """Exposed series name → metric, for the code's metrics and the announced ones."""
    announced = [KnownMetric(m.name, m.kind, m.labels, coming=True) for m in COMING_METRICS]
    metrics = announced + list(code_metrics())  # once the code exports an announced metric, the code wins
    by_series: dict[str, KnownMetric] = {}
    for metric in metrics:
        for series in metric.series_names():
            by_series[series] = metric
    return by_series


METRIC_NAME = re.compile(r"\byibao_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(yibao_[a-z0-9_]+)\{([^}]*)\}")
SELECTOR_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable of every dashboard."""
    queries: list[tuple[str, str]] = []
    for path in dashboard_files():
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                queries.append((f"{path.name}: variable {variable['name']}", query))
    return queries


def alert_rules() -> list[dict[str, Any]]:
    doc = load_yaml_documents(ALERTS)[0]
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def alert_rules_file(*, summaries_only: bool = False) -> str:
    """alerts.yaml as a plain Prometheus rules file (its ``spec``); with ``summaries_only`` each alert keeps only
    its English summary among the annotations (what the promtool unit tests compare)."""
    spec = load_yaml_documents(ALERTS)[0]["spec"]
    if summaries_only:
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule["annotations"] = {"summary": rule["annotations"]["summary"]}
    return yaml.safe_dump(spec, allow_unicode=True, sort_keys=False)


# --- tools from outside Python ------------------------------------------------------------------------------------

#: set by .ci/run: a tool a test needs must be there, never skipped
REQUIRE_REAL = os.environ.get("YIBAO_REQUIRE_REAL") == "1"

#: where `make deploy-tools` installs the tools that Debian does not package (kustomize, kubeconform)
TOOLS_BIN = Path(os.environ.get("YIBAO_TOOLS_DIR", Path.home() / ".cache" / "yibao-bridge" / "tools")) / "bin"


def require_tool(name: str, how: str) -> str:
    """The path of a command-line tool a test needs: on PATH or in TOOLS_BIN. Missing: the test is skipped with
    ``how`` to get it — or fails when YIBAO_REQUIRE_REAL=1 (CI installs every tool first)."""
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS_BIN))
    if found:
        return found
    message = f"{name} is not installed ({how})"
    if REQUIRE_REAL:
        pytest.fail(f"{message}; YIBAO_REQUIRE_REAL=1 needs it", pytrace=False)
    pytest.skip(message)


def kustomize() -> list[str]:
    """The kustomize command: `make deploy-tools`'s binary, one on PATH, or kubectl's built-in one."""
    found = shutil.which("kustomize", path=str(TOOLS_BIN)) or shutil.which("kustomize")
    if found:
        return [found, "build", "--load-restrictor", "LoadRestrictionsNone"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone"]
    return [require_tool("kustomize", "make deploy-tools")]  # skips, or fails under YIBAO_REQUIRE_REAL


@functools.cache
def _render(folder: Path) -> tuple[str, str, int]:
    command = kustomize()
    result = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=120, check=False)
    return result.stdout, result.stderr, result.returncode


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build <folder>` renders (cached per session)."""
    stdout, stderr, code = _render(folder)
    assert code == 0, f"kustomize build {folder}: {stderr}"
    return [doc for doc in yaml.safe_load_all(stdout) if doc]


def rendered_folders() -> list[Path]:
    """Every kustomization a person applies, and the tests' overlays with every opt-in component."""
    return [BASE, *overlay_dirs(), K8S / "strimzi", DEPLOY / "grafana", DEPLOY / "prometheus",
            *check_overlay_dirs()]
