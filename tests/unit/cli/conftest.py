"""Fixtures of the CLI unit tests: a clean environment, so output does not depend on the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No YIBAO_* variable, no KAFKA_BOOTSTRAP/DATABASE_URL, an empty secrets directory (returned)."""
    for name in list(os.environ):
        if name.upper().startswith("YIBAO_") or name.upper() in ("KAFKA_BOOTSTRAP", "DATABASE_URL"):
            monkeypatch.delenv(name)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(secrets))
    return secrets
