"""Fixtures of the deploy tests; the helpers live in ops_support.py."""

from __future__ import annotations

from typing import Any

import pytest

from unit.deploy.ops_support import (
    BASE,
    SECRET_TEMPLATE,
    component_dirs,
    load_yaml_documents,
    of_kind,
    resource_documents,
)


@pytest.fixture(scope="session")
def base_docs() -> list[dict[str, Any]]:
    """The base and every opt-in component: the checks of a worker's manifests hold for all of them."""
    docs = resource_documents(BASE)
    for component in component_dirs():
        docs += resource_documents(component)
    return docs


@pytest.fixture(scope="session")
def deployments(base_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployment name → manifest (base and components)."""
    return {doc["metadata"]["name"]: doc for doc in of_kind(base_docs, "Deployment")}


@pytest.fixture(scope="session")
def secret_template() -> list[dict[str, Any]]:
    return load_yaml_documents(SECRET_TEMPLATE)
