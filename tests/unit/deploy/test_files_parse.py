"""Every file under deploy/ parses, and every kustomization names only files that exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from unit.deploy.ops_support import DEPLOY, load_yaml_documents

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
JSON_FILES = sorted(DEPLOY.rglob("*.json"))
KUSTOMIZATIONS = sorted(DEPLOY.rglob("kustomization.yaml"))


def _id(path: Path) -> str:
    return str(path.relative_to(DEPLOY))


def test_deploy_folder_has_manifests_dashboards_and_alerts() -> None:
    assert YAML_FILES and JSON_FILES and KUSTOMIZATIONS


@pytest.mark.parametrize("path", YAML_FILES, ids=_id)
def test_every_yaml_file_parses(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    assert docs, f"{_id(path)} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize("path", JSON_FILES, ids=_id)
def test_every_json_file_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_id)
def test_every_kustomization_names_only_existing_files(path: Path) -> None:
    spec = load_yaml_documents(path)[0]
    folder = path.parent
    named = list(spec.get("resources", [])) + list(spec.get("components", []))
    named += [patch["path"] for patch in spec.get("patches", []) if "path" in patch]
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        named += generator.get("envs", []) + [f.split("=", 1)[-1] for f in generator.get("files", [])]
    for name in named:
        target = folder / name
        assert target.is_dir() and (target / "kustomization.yaml").is_file() or target.is_file(), \
            f"{_id(path)} names {name}, which does not exist"


@pytest.mark.parametrize("path", [p for p in YAML_FILES if {"k8s", "prometheus"} & set(p.parts)], ids=_id)
def test_every_kubernetes_object_has_api_version_kind_and_name(path: Path) -> None:
    for doc in load_yaml_documents(path):
        if doc.get("kind") in ("Kustomization", "Component"):
            continue
        assert doc.get("apiVersion") and doc.get("kind"), f"{_id(path)}: apiVersion/kind missing"
        assert doc.get("metadata", {}).get("name"), f"{_id(path)}: {doc['kind']} without a name"
