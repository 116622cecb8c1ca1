"""Backend choice by configuration: auto prefers the C binding and falls back to pure gmssl."""

from __future__ import annotations

import sys

import pytest

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import SM2Backend, available_backends, get_backend, registry, resolve_backend


def test_auto_prefers_gmssl_pyx_when_it_imports() -> None:
    expected = "gmssl-pyx" if "gmssl-pyx" in available_backends() else "gmssl"
    assert get_backend().name == expected
    assert get_backend("auto").name == expected


def test_auto_falls_back_to_pure_gmssl_without_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_instances", {})
    monkeypatch.setitem(sys.modules, "gmssl_pyx", None)
    assert get_backend("auto").name == "gmssl"
    with pytest.raises(ConfigurationError, match="not installed"):
        get_backend("gmssl-pyx")


def test_unknown_backend_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown SM2 backend"):
        get_backend("openssl")


def test_backends_are_shared_instances_that_satisfy_the_protocol() -> None:
    for name in available_backends():
        assert get_backend(name) is get_backend(name)
        assert isinstance(get_backend(name), SM2Backend)


def test_resolve_backend_accepts_an_instance_a_name_or_none() -> None:
    pure = get_backend("gmssl")
    assert resolve_backend(pure) is pure
    assert resolve_backend("gmssl") is pure
    assert resolve_backend(None) is get_backend("auto")
