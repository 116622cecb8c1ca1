"""Choosing an SM2 backend by name, as configuration does.

``"auto"`` picks gmssl-pyx (C, fast) when it imports — its wheels exist for x86_64 only — and falls back to
pure-Python gmssl elsewhere. Backends are stateless, so one instance per name is shared process-wide.
"""

from __future__ import annotations

import threading

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto.backend import SM2Backend

__all__ = ["BACKEND_NAMES", "get_backend", "available_backends", "resolve_backend"]

BACKEND_NAMES: tuple[str, ...] = ("gmssl-pyx", "gmssl")

_instances: dict[str, SM2Backend] = {}
_lock = threading.Lock()


def _create(name: str) -> SM2Backend:
    if name == "gmssl-pyx":
        from yibao.envelope.crypto.gmsslpyx_backend import GmsslPyxBackend

        return GmsslPyxBackend()
    from yibao.envelope.crypto.gmssl_backend import GmsslBackend

    return GmsslBackend()


def available_backends() -> list[str]:
    """The backend names that import on this machine, fastest first."""
    found = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
        except ConfigurationError:
            continue
        found.append(name)
    return found


def get_backend(name: str = "auto") -> SM2Backend:
    """The shared backend called ``name`` ("auto", "gmssl-pyx" or "gmssl"); ConfigurationError if unusable."""
    if name == "auto":
        try:
            return get_backend("gmssl-pyx")
        except ConfigurationError:
            return get_backend("gmssl")
    if name not in BACKEND_NAMES:
        raise ConfigurationError(f"unknown SM2 backend {name!r}; choose one of {('auto', *BACKEND_NAMES)}")
    with _lock:
        backend = _instances.get(name)
        if backend is None:
            try:
                backend = _create(name)
            except ImportError as exc:
                raise ConfigurationError(f"SM2 backend {name!r} is not installed ({exc.name})") from None
            _instances[name] = backend
        return backend


def resolve_backend(backend: SM2Backend | str | None) -> SM2Backend:
    """An instance from an instance, a name, or None (= "auto"); what the codecs accept."""
    if backend is None:
        return get_backend("auto")
    if isinstance(backend, str):
        return get_backend(backend)
    return backend
