"""SM3 (GB/T 32905) from ``cryptography``: the digest under every signature and the KDF of SM2 encryption."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

__all__ = ["sm3", "sm3_hex"]


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    """The SM3 digest as 64 lower-case hex characters (the form the GB/T vectors are printed in)."""
    return sm3(data).hex()
