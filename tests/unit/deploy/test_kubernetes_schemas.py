"""Every object kustomize renders is valid against a schema that can be had offline:

* Kubernetes' own kinds against the JSON schemas of Kubernetes' OpenAPI that the `kubernetes-validate` package
  ships, strict (no unknown field), for the oldest Kubernetes the README supports and the newest the package knows;
* the custom resources (Strimzi, prometheus-operator) against our structural schemas in schemas/ — no offline
  source of those projects' CRDs exists here (schemas/README.md).

An object of a kind neither knows fails: a new kind needs its schema first.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from unit.deploy.ops_support import DEPLOY, render, rendered_folders

SCHEMAS = Path(__file__).resolve().parent / "schemas"
#: the Kubernetes versions the objects must be valid for: the README's minimum and the newest schemas at hand
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())


@functools.cache
def _custom_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → JSON schema, from schemas/*.yaml."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for kind, schema in doc["kinds"].items():
            api_version = schema["properties"]["apiVersion"]["const"]
            full = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": doc["$defs"], **schema}
            jsonschema.Draft202012Validator.check_schema(full)
            schemas[(api_version, kind)] = full
    return schemas


def _id(path: Path) -> str:
    return str(path.relative_to(DEPLOY.parent))


def _errors(doc: dict[str, Any]) -> list[str]:
    custom = _custom_schemas().get((doc["apiVersion"], doc["kind"]))
    if custom is not None:
        validator = jsonschema.Draft202012Validator(custom)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return [f"no schema for {doc['apiVersion']} {doc['kind']} (Kubernetes {version}, schemas/)"]
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"Kubernetes {version}: {'/'.join(map(str, exc.path))}: {exc.message}")
    return problems


@pytest.mark.parametrize("folder", rendered_folders(), ids=_id)
def test_every_rendered_object_is_valid_against_its_schema(folder: Path) -> None:
    docs = render(folder)
    assert docs
    problems = {f"{doc['kind']}/{doc['metadata']['name']}": errors for doc in docs if (errors := _errors(doc))}
    assert not problems, problems


def test_the_custom_schemas_refuse_a_misspelt_field() -> None:
    # the schemas are only worth something if unknown fields fail
    user = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": "x", "labels": {"strimzi.io/cluster": "yibao"}},
            "spec": {"authorization": {"type": "simple", "acls": [
                {"resource": {"type": "topic", "name": "t"}, "operation": "Read"}]}}}
    assert _errors(user)
    user["spec"]["authorization"]["acls"][0] = {"resource": {"type": "topic", "name": "t"}, "operations": ["Read"]}
    assert not _errors(user)
