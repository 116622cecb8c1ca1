"""SM2 keys as the platforms hand them out: hex strings.

* private key: 64 hex digits (a Java ``BigInteger`` dump with a leading ``00`` byte is accepted too);
* public key: x||y, 128 hex digits, or 04||x||y (130) — accepted either way, any case. We always hand out
  x||y in upper case (:func:`normalize_public_key`).

The 04 prefix is removed by length, never by string stripping: pure gmssl's ``public_key.lstrip("04")``
eats every leading '0' and '4' character and so corrupts about one key in eight (any x that itself starts with
0 or 4). Every public key is checked to lie on the curve before use.

Error messages say what is wrong with a key, never the key.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from yibao.envelope.crypto import curve
from yibao.envelope.errors import CryptoError

__all__ = [
    "normalize_public_key",
    "public_key_bytes",
    "public_key_point",
    "private_key_int",
    "private_key_bytes",
    "public_key_from_private",
    "generate_keypair",
]

_HEX = frozenset("0123456789abcdefABCDEF")


def _clean_hex(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise CryptoError(f"{what} must be a hex string")
    text = value.strip()
    if not text or any(c not in _HEX for c in text):
        raise CryptoError(f"{what} is not hexadecimal")
    return text


@lru_cache(maxsize=1024)
def _normalized(key: str) -> str:
    text = _clean_hex(key, "SM2 public key")
    if len(text) == 130:
        if text[:2] != "04":
            raise CryptoError("SM2 public key of 65 bytes must start with 04 (uncompressed point)")
        text = text[2:]
    elif len(text) != 128:
        raise CryptoError("SM2 public key must be 128 hex digits (x||y) or 130 (04||x||y)")
    x, y = int(text[:64], 16), int(text[64:], 16)
    if not curve.is_on_curve(x, y):
        raise CryptoError("SM2 public key is not a point of the SM2 curve")
    return text.upper()


def normalize_public_key(key: str) -> str:
    """x||y in upper-case hex (128 digits), from x||y or 04||x||y in any case; raises CryptoError."""
    if not isinstance(key, str):
        raise CryptoError("SM2 public key must be a hex string")
    return _normalized(key)


def public_key_bytes(key: str) -> bytes:
    """The 64 raw bytes x||y of a validated public key."""
    return bytes.fromhex(_normalized(key))


def public_key_point(key: str) -> tuple[int, int]:
    raw = public_key_bytes(key)
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def private_key_int(key: str) -> int:
    """The scalar d of a private key, checked to lie in [1, n-2] as GB/T 32918 requires."""
    text = _clean_hex(key, "SM2 private key")
    if len(text) == 66 and text[:2] == "00":
        text = text[2:]
    if len(text) != 64:
        raise CryptoError("SM2 private key must be 64 hex digits")
    d = int(text, 16)
    if not 1 <= d <= curve.N - 2:
        raise CryptoError("SM2 private key is out of range [1, n-2]")
    return d


def private_key_bytes(key: str) -> bytes:
    return private_key_int(key).to_bytes(32, "big")


@lru_cache(maxsize=256)
def _public_from_private(key: str) -> str:
    point = curve.base_mult(private_key_int(key))
    if point is None:  # impossible for d in [1, n-2]; kept as a guard
        raise CryptoError("SM2 private key gives the point at infinity")
    return f"{point[0]:064X}{point[1]:064X}"


def public_key_from_private(private_key: str) -> str:
    """x||y (upper-case hex) of d·G. Cached: SM3withSM2 needs the signer's public key for Z on every sign.

    The cache is keyed by the private key text and lives as long as the process — which holds the key in
    its settings anyway.
    """
    if not isinstance(private_key, str):
        raise CryptoError("SM2 private key must be a hex string")
    return _public_from_private(private_key)


def generate_keypair() -> tuple[str, str]:
    """A fresh key pair ``(private hex 64, public hex 128 = x||y)``, both upper case.

    From GmSSL's generator when the C binding is installed, else d from :mod:`secrets` (never ``random``).
    """
    try:
        import gmssl_pyx
    except ImportError:
        gmssl_pyx = None  # type: ignore[assignment]
    if gmssl_pyx is not None:
        public, private = gmssl_pyx.sm2_key_generate()
        return private.hex().upper(), public.hex().upper()
    d = secrets.randbelow(curve.N - 2) + 1
    private = f"{d:064X}"
    return private, public_key_from_private(private)
