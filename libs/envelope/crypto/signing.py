"""Signatures as they travel: Base64 of raw r||s (the platforms' form)."""

from __future__ import annotations

import base64
import binascii

from yibao.envelope.crypto.backend import SM2Backend
from yibao.envelope.crypto.registry import resolve_backend
from yibao.envelope.crypto.signature_format import signature_to_raw
from yibao.envelope.crypto.sm2_common import DEFAULT_UID
from yibao.envelope.errors import CryptoError

__all__ = ["sign_b64", "verify_b64"]


def _as_bytes(message: bytes | str) -> bytes:
    return message.encode("utf-8") if isinstance(message, str) else bytes(message)


def sign_b64(private_key: str, message: bytes | str, *, uid: bytes = DEFAULT_UID,
             backend: SM2Backend | str | None = None) -> str:
    """Base64 of the raw 64-byte r||s SM3withSM2 signature of ``message`` (a str is signed as UTF-8)."""
    raw = resolve_backend(backend).sign(private_key, _as_bytes(message), uid=uid)
    return base64.b64encode(raw).decode("ascii")


def verify_b64(public_key: str, message: bytes | str, signature_b64: str, *, uid: bytes = DEFAULT_UID,
               backend: SM2Backend | str | None = None) -> bool:
    """True when ``signature_b64`` (Base64 of raw r||s, or of DER from a lenient counterpart) verifies.

    False for anything else, including text that is not Base64; never raises for a bad signature.
    """
    try:
        text = signature_b64.strip() if isinstance(signature_b64, str) else signature_b64
        raw = signature_to_raw(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, TypeError, CryptoError):
        return False
    return resolve_backend(backend).verify(public_key, _as_bytes(message), raw, uid=uid)
