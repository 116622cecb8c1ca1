"""Fixtures of the yibao.core unit tests: a clean environment, and logging captured from the real handler."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from yibao.core.logs import configure_logging

#: environment variables that would change what a settings class reads
_CONNECTION_NAMES = ("KAFKA_BOOTSTRAP", "DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No YIBAO_* variable, no connection override, and an empty secrets directory of the test's own.

    Returns the secrets directory, so a test can put a secret file in it.
    """
    for name in list(os.environ):
        if name.upper().startswith("YIBAO_") or name.upper() in _CONNECTION_NAMES:
            monkeypatch.delenv(name)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("YIBAO_SECRETS_DIR", str(secrets))
    return secrets


@pytest.fixture
def captured_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """``configure_logging("test-service")`` writing to a captured stream; yields a reader of what was written.

    The root logger's handlers and levels are restored afterwards, so pytest's own capture keeps working.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in ("aiokafka", "faust", "mode", "kafka")}
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("test-service", level="DEBUG")
    try:
        yield stream.getvalue
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)

