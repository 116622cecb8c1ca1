"""The ConfigMap holds real, valid, non-secret settings; the Secret template holds real secret names and no values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from unit.deploy.ops_support import (
    BASE,
    SECRETS_DIR,
    SERVICES,
    all_settings_classes,
    check_overlay_dirs,
    config_generator_data,
    deployed_services,
    env_names,
    env_prefix_of,
    known_env_names,
    of_kind,
    overlay_dirs,
    pod_templates,
    resource_documents,
    service_settings_class,
)

#: the base, the hospital overlays, and the tests' overlay with every opt-in component
FOLDERS = [BASE, *overlay_dirs(), *check_overlay_dirs()]
#: settings that hold credentials although typed str: they belong in a Secret, never in the ConfigMap
SECRET_ENV_NAMES = frozenset({"DATABASE_URL"})


def _folder_id(folder: Path) -> str:
    return folder.name


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _secret_env_names() -> set[str]:
    names = set(SECRET_ENV_NAMES)
    for cls in all_settings_classes():
        for env, field_name in env_names(cls).items():
            if _is_secret(cls.model_fields[field_name].annotation):
                names.add(env)
    return names


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
              secret_template: list[dict[str, Any]]) -> pytest.MonkeyPatch:
    """No yibao setting from the machine running the tests, and a secrets directory holding the Kafka passwords a
    hospital puts into yibao-kafka (a folder whose workers authenticate needs them to be valid settings)."""
    import os

    for key in list(os.environ):
        if key.upper().startswith(("YIBAO_", "KAFKA_BOOTSTRAP", "DATABASE_URL")):
            monkeypatch.delenv(key)
    (kafka,) = [s for s in secret_template if s["metadata"]["name"] == "yibao-kafka"]
    for key in kafka["stringData"]:
        (tmp_path / key).write_text(f"password-of-{key}", encoding="utf-8")
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_every_configmap_key_is_a_real_setting(folder: Path) -> None:
    known = known_env_names()
    unknown = sorted(key for key in config_generator_data(folder) if key.upper() not in known)
    assert not unknown, f"{folder.name}: not a setting of any yibao process: {unknown}"


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_configmap_holds_no_secret(folder: Path) -> None:
    leaked = sorted(set(config_generator_data(folder)) & _secret_env_names())
    assert not leaked, f"{folder.name}: secrets belong in a Secret (file under {SECRETS_DIR}): {leaked}"


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_configmap_values_are_accepted_by_the_settings(folder: Path, clean_env: pytest.MonkeyPatch) -> None:
    for key, value in config_generator_data(folder).items():
        clean_env.setenv(key, value)
    for cls in all_settings_classes():
        cls()  # raises a ValidationError naming the field when a value is wrong


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_every_worker_listens_beyond_loopback_on_its_default_port(
        folder: Path, clean_env: pytest.MonkeyPatch) -> None:
    # the default web_host, 127.0.0.1, cannot be reached by the kubelet's probes nor by Prometheus
    for key, value in config_generator_data(folder).items():
        clean_env.setenv(key, value)
    for service in deployed_services(folder):
        cls = service_settings_class(service)
        settings = cls()
        assert settings.web_host == "0.0.0.0", f"{folder.name}: {env_prefix_of(service)}WEB_HOST"
        assert settings.port == cls.default_web_port, f"{folder.name}: {service} must keep its default port"


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_topic_prefix_is_the_same_for_every_process(folder: Path) -> None:
    data = config_generator_data(folder)
    keys = ["YIBAO_TOPIC_PREFIX"] + [env_prefix_of(s) + "TOPIC_PREFIX" for s in SERVICES]
    values = {key: data.get(key) for key in keys}
    assert len(set(values.values())) == 1, f"{folder.name}: set the prefix for every process or none: {values}"


@pytest.mark.parametrize("folder", FOLDERS, ids=_folder_id)
def test_the_ingest_mapping_named_in_the_configmap_loads(folder: Path, clean_env: pytest.MonkeyPatch) -> None:
    for key, value in config_generator_data(folder).items():
        clean_env.setenv(key, value)
    assert service_settings_class("ingest")().load_mapping()


def test_secret_template_holds_no_values(secret_template: list[dict[str, Any]]) -> None:
    assert secret_template
    for secret in secret_template:
        assert secret["kind"] == "Secret"
        assert not secret.get("data"), f"{secret['metadata']['name']}: use stringData with empty values"
        filled = {key for key, value in secret.get("stringData", {}).items() if value not in ("", None)}
        assert not filled, f"{secret['metadata']['name']} holds values for {sorted(filled)}"


def test_every_secret_key_is_a_setting_in_lower_case(secret_template: list[dict[str, Any]]) -> None:
    known = known_env_names()
    for secret in secret_template:
        for key in secret["stringData"]:
            assert key == key.lower(), f"{key}: secret file names are the env variable in lower case"
            assert key.upper() in known, f"{key} is not a setting of any yibao process"


def test_every_secret_setting_has_a_key_in_the_template(secret_template: list[dict[str, Any]]) -> None:
    keys = {key.upper() for secret in secret_template for key in secret["stringData"]}
    # the CommonSettings names of the workers are aliases (DATABASE_URL), so one key serves every process
    missing = sorted(_secret_env_names() - keys)
    assert not missing, f"secret settings without a key in secret-template.yaml: {missing}"


def test_secrets_are_not_part_of_any_kustomization() -> None:
    for folder in FOLDERS:
        assert not of_kind(resource_documents(folder), "Secret"), \
            f"{folder.name}: an applied Secret would overwrite the hospital's real credentials"


def test_every_secret_a_pod_mounts_is_in_the_template(
        base_docs: list[dict[str, Any]], secret_template: list[dict[str, Any]]) -> None:
    templated = {secret["metadata"]["name"]: secret["stringData"] for secret in secret_template}
    for name, pod in pod_templates(base_docs):
        for volume in pod["volumes"]:
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    secret = source["secret"]
                    assert secret["name"] in templated, name
                    # a key the template lacks is missing in the hospital's Secret too: an optional source then
                    # mounts nothing, and the setting silently keeps its default
                    for item in secret.get("items", []):
                        assert item["key"] in templated[secret["name"]], f"{name}: {secret['name']} {item['key']}"
                        assert item["path"] == item["key"], f"{name}: the file name is the key (the setting)"
