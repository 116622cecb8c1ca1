"""Workers that authenticate to Kafka (deploy/k8s/options/authenticated-workers): rendered with the base and with a
hospital overlay, every worker Deployment connects as its own KafkaUser of the Strimzi files and reads its own
password file, no other; the prepare Job and the ops commands connect as yibao-ops; every one of those users has its
password key in the secret template; without the option nothing changes.

The settings are built by the code's own settings classes from what the pod sees: the rendered ConfigMap, the
container's env, and the files its projected Secret volume holds when the hospital has filled yibao-kafka."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from unit.deploy.ops_support import (
    BASE,
    K8S,
    OPTIONS,
    SERVICES,
    check_overlay_dirs,
    config_generator_data,
    env_prefix_of,
    of_kind,
    overlay_dirs,
    pod_templates,
    projected_secret_files,
    render,
    resource_documents,
    service_settings_class,
)
from yibao.core.settings import CommonSettings

STRIMZI = K8S / "strimzi"
OPTION = OPTIONS / "authenticated-workers"
#: the tests' overlays with the option: the base with every service component, and the example hospital
AUTHENTICATED = [p for p in check_overlay_dirs() if p.name.endswith("authenticated-workers")
                 or p.name.endswith("-authenticated")]
#: the user of the ops commands (`yibao topics create`, `yibao replay dlq`) and the file of its password
OPS_USER, OPS_KEY = "yibao-ops", "yibao_kafka_sasl_password"
#: Kafka Connect's user: its password stays in the namespace "kafka", where Connect reads it
CONNECT_USER = "yibao-his-connect"


def _password_key(service: str) -> str:
    return (env_prefix_of(service) + "KAFKA_SASL_PASSWORD").lower()


def _users() -> dict[str, dict[str, Any]]:
    """Every KafkaUser of the Strimzi files: the generated kafka-users.yaml and the components of the services not
    shipped yet."""
    docs = resource_documents(STRIMZI)
    for component in sorted((STRIMZI / "components").iterdir()):
        docs += resource_documents(component)
    return {u["metadata"]["name"]: u for u in of_kind(docs, "KafkaUser")}


def _kafka_secret(secret_template: list[dict[str, Any]]) -> dict[str, str]:
    """yibao-kafka as a hospital fills it: every key of the template, each with a password of its own."""
    (secret,) = [s for s in secret_template if s["metadata"]["name"] == "yibao-kafka"]
    return {key: f"password-of-{key}" for key in secret["stringData"]}


def _settings(cls: type[CommonSettings], env: dict[str, str], files: dict[str, str],
              monkeypatch: pytest.MonkeyPatch, folder: Path) -> CommonSettings:
    """``cls()`` in a process with exactly ``env`` and the secrets dir holding ``files``."""
    for key in list(os.environ):
        if key.upper().startswith(("YIBAO_", "KAFKA_BOOTSTRAP", "DATABASE_URL")):
            monkeypatch.delenv(key)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(folder))
    return cls()


def _env(config: dict[str, str], container: dict[str, Any]) -> dict[str, str]:
    """The environment of a container: the ConfigMap (envFrom), then its own env entries."""
    return {**config, **{e["name"]: e["value"] for e in container.get("env", [])}}


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"]


def _present_secrets(secret_template: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The hospital's Secrets: yibao-kafka filled; the others exist (their keys do not matter here)."""
    secrets: dict[str, dict[str, str]] = {s["metadata"]["name"]: {} for s in secret_template}
    secrets["yibao-kafka"] = _kafka_secret(secret_template)
    return secrets


def test_the_option_points_the_workers_at_the_scram_listener_of_the_strimzi_cluster() -> None:
    settings = config_generator_data(next(p for p in AUTHENTICATED if p.name == "authenticated-workers"))
    # the Strimzi cluster as it runs with its own authenticated-workers component: the plain listener is gone
    (strimzi,) = [p for p in check_overlay_dirs() if "strimzi" in p.name]
    (kafka,) = of_kind(render(strimzi), "Kafka")
    listeners = {f"{kafka['metadata']['name']}-kafka-bootstrap.kafka.svc:{lst['port']}": lst
                 for lst in kafka["spec"]["kafka"]["listeners"]}
    listener = listeners.get(settings["KAFKA_BOOTSTRAP"])
    assert listener is not None, f"KAFKA_BOOTSTRAP {settings['KAFKA_BOOTSTRAP']} is none of {sorted(listeners)}"
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert settings["YIBAO_KAFKA_SECURITY_PROTOCOL"] == ("SASL_SSL" if listener["tls"] else "SASL_PLAINTEXT")
    assert settings["YIBAO_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


@pytest.mark.parametrize("folder", AUTHENTICATED, ids=lambda p: p.name)
def test_every_worker_connects_as_its_own_kafka_user_with_its_own_password(
        folder: Path, secret_template: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    docs = render(folder)
    (config,) = of_kind(docs, "ConfigMap")
    users = _users()
    secrets = _present_secrets(secret_template)
    seen = []
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (worker,) = pod["containers"]
        service = worker["command"][2]
        files = projected_secret_files(pod, worker, secrets)
        settings = _settings(service_settings_class(service), _env(config["data"], worker), files, monkeypatch,
                             tmp_path / service)
        security = settings.kafka_access.security
        assert security.username == f"yibao-{service}", deployment["metadata"]["name"]
        assert security.username in users, f"{service}: no KafkaUser {security.username} in {STRIMZI}"
        assert (security.protocol, security.mechanism) == ("SASL_PLAINTEXT", "SCRAM-SHA-512"), service
        assert security.password == f"password-of-{_password_key(service)}", f"{service} reads another's password"
        assert sorted(name for name in files if "kafka" in name) == [_password_key(service)], \
            f"{service}'s pod holds other users' passwords: {sorted(files)}"
        assert settings.kafka_access.bootstrap == config["data"]["KAFKA_BOOTSTRAP"]
        seen.append(service)
    if folder.name == "authenticated-workers":  # the base with every service component
        assert sorted(seen) == sorted(SERVICES)


@pytest.mark.parametrize("folder", AUTHENTICATED, ids=lambda p: p.name)
def test_the_prepare_job_and_the_ops_commands_connect_as_yibao_ops(
        folder: Path, secret_template: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    docs = render(folder)
    (config,) = of_kind(docs, "ConfigMap")
    secrets = _present_secrets(secret_template)
    pods = [(name, pod) for name, pod in pod_templates(docs) if not name.startswith("Deployment/")]
    assert {name for name, _ in pods} >= {"Job/yibao-prepare", "CronJob/yibao-replay-dlq"}
    for name, pod in pods:
        for container in _containers(pod):
            # every yibao command reads CommonSettings; `yibao db upgrade` too, so it needs the user as well
            settings = _settings(CommonSettings, _env(config["data"], container),
                                 projected_secret_files(pod, container, secrets), monkeypatch,
                                 tmp_path / f"{name}-{container['name']}".replace("/", "-"))
            security = settings.kafka_access.security
            assert security.username == OPS_USER and OPS_USER in _users(), f"{name} {container['name']}"
            assert security.password == f"password-of-{OPS_KEY}", f"{name} {container['name']}"


def test_a_pod_mounts_the_kafka_password_of_its_own_user_only(base_docs: list[dict[str, Any]]) -> None:
    # in the base already, optional: the plain pods start without yibao-kafka, and the option needs no patch of
    # the projected volume (a strategic merge would replace its list of sources)
    for name, pod in pod_templates(base_docs):
        own = _password_key(_containers(pod)[0]["command"][2]) if name.startswith("Deployment/") else OPS_KEY
        sources = [s["secret"] for v in pod["volumes"] for s in v.get("projected", {}).get("sources", [])
                   if s.get("secret", {}).get("name") == "yibao-kafka"]
        assert sources == [{"name": "yibao-kafka", "optional": True, "items": [{"key": own, "path": own}]}], name


def test_every_kafka_user_of_the_bridge_has_its_password_key_in_the_secret_template(
        secret_template: list[dict[str, Any]]) -> None:
    users = set(_users()) - {CONNECT_USER}
    expected = {OPS_USER: OPS_KEY, **{f"yibao-{s}": _password_key(s) for s in SERVICES}}
    assert users == set(expected), "a KafkaUser the bridge's processes do not use, or a service without one"
    assert set(_kafka_secret(secret_template)) == set(expected.values())


@pytest.mark.parametrize("folder", [BASE, *overlay_dirs()], ids=lambda p: p.name)
def test_without_the_option_the_workers_connect_plainly_even_with_yibao_kafka_filled(
        folder: Path, base_docs: list[dict[str, Any]], secret_template: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = config_generator_data(folder)
    for name, pod in pod_templates(base_docs):
        for container in _containers(pod):
            command = container["command"]
            cls = service_settings_class(command[2]) if command[1] == "worker" else CommonSettings
            files = projected_secret_files(pod, container, _present_secrets(secret_template))
            settings = _settings(cls, _env(config, container), files, monkeypatch, tmp_path / name.replace("/", "-"))
            assert settings.kafka_access.security.protocol == "PLAINTEXT", name
            assert not settings.kafka_access.security.sasl, name


def test_a_worker_without_its_password_is_refused_before_it_starts(
        secret_template: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # yibao-kafka not created (the optional source mounts nothing): the settings say what is missing
    folder = next(p for p in AUTHENTICATED if p.name == "authenticated-workers")
    deployment = next(d for d in of_kind(resource_documents(BASE), "Deployment")
                      if d["metadata"]["name"] == "yibao-settlement")
    pod = deployment["spec"]["template"]["spec"]
    secrets = {name: data for name, data in _present_secrets(secret_template).items() if name != "yibao-kafka"}
    files = projected_secret_files(pod, pod["containers"][0], secrets)
    with pytest.raises(ValueError, match="needs kafka_sasl_username and kafka_sasl_password"):
        _settings(service_settings_class("settlement"), config_generator_data(folder), files, monkeypatch,
                  tmp_path).kafka_access


# --- the README's pipeline that fills yibao-kafka -------------------------------------------------------------------

README = K8S / "README.md"

#: a kubectl that answers the pipeline's calls from a state file: the KafkaUsers in "kafka", the Secret Strimzi
#: writes for each, `create secret generic --from-file=DIR --dry-run=client -o yaml`, and `apply -f -`
_KUBECTL = r'''
import base64, json, os, sys
from pathlib import Path
state = json.loads(Path(os.environ["FAKE_KUBECTL_STATE"]).read_text())
args = sys.argv[1:]
namespace = args[args.index("-n") + 1] if "-n" in args else None
if args[2:4] == ["get", "kafkausers"]:
    assert namespace == "kafka" and "-l" in args and "strimzi.io/cluster=yibao" in args, args
    print(" ".join(state["users"]))
elif args[2:4] == ["get", "secret"]:
    assert namespace == "kafka" and "jsonpath={.data.password}" in args, args
    print(base64.b64encode(state["users"][args[4]].encode()).decode(), end="")
elif args[2:5] == ["create", "secret", "generic"]:
    assert namespace == "yibao-bridge" and "--dry-run=client" in args and "yaml" in args, args
    (source,) = [a.split("=", 1)[1] for a in args if a.startswith("--from-file=")]
    data = {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(Path(source).iterdir())}
    print(json.dumps({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": args[5], "namespace": namespace}, "data": data}))
elif args[:2] == ["apply", "-f"] and args[2] == "-":
    Path(os.environ["FAKE_KUBECTL_APPLIED"]).write_text(sys.stdin.read())
else:
    sys.exit(f"unexpected kubectl {args}")
'''


def _readme_pipeline() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    (block,) = [b for b in blocks if "create secret generic yibao-kafka" in b]
    return block


def test_the_readme_pipeline_copies_each_users_password_into_its_key(
        secret_template: list[dict[str, Any]], tmp_path: Path) -> None:
    users = {name: f"strimzi-generated-password-of-{name}" for name in sorted(_users())}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{_KUBECTL}", encoding="utf-8")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    state, applied = tmp_path / "state.json", tmp_path / "applied.json"
    state.write_text(json.dumps({"users": users}), encoding="utf-8")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _readme_pipeline()], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_KUBECTL_STATE": str(state),
             "FAKE_KUBECTL_APPLIED": str(applied)})
    assert result.returncode == 0, result.stderr
    secret = yaml.safe_load(applied.read_text(encoding="utf-8"))
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("yibao-kafka", "yibao-bridge")
    copied = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    expected = {OPS_KEY: users[OPS_USER], **{_password_key(s): users[f"yibao-{s}"] for s in SERVICES}}
    assert copied == expected
    assert set(copied) == set(_kafka_secret(secret_template))
