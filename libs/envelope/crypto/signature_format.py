"""SM2 signatures in the two encodings in use: raw r||s (what the platforms want, 64 bytes, each half
zero-padded to 32) and ASN.1 DER ``SEQUENCE {INTEGER r, INTEGER s}`` (what GmSSL and Java produce).

An r or s below 2^248 is one byte short when written without padding; a platform rejects such a signature,
so :func:`der_to_raw` always pads and :func:`raw_to_der` only accepts exactly 64 bytes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from yibao.envelope.crypto import curve
from yibao.envelope.errors import CryptoError

__all__ = ["raw_to_der", "der_to_raw", "signature_to_raw", "split_raw", "is_valid_raw_range"]


def split_raw(sig: bytes) -> tuple[int, int]:
    """(r, s) of a 64-byte raw signature."""
    if not isinstance(sig, (bytes, bytearray)) or len(sig) != 64:
        raise CryptoError("raw SM2 signature must be 64 bytes (r||s)")
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")


def is_valid_raw_range(r: int, s: int) -> bool:
    """GB/T 32918.2 §7.1 B1/B2: r and s must lie in [1, n-1]."""
    return 1 <= r < curve.N and 1 <= s < curve.N


def raw_to_der(sig: bytes) -> bytes:
    """DER encoding of a 64-byte raw r||s signature."""
    r, s = split_raw(sig)
    return encode_dss_signature(r, s)


def der_to_raw(der: bytes) -> bytes:
    """Raw r||s, each half zero-padded to 32 bytes, of a DER signature (strict DER; trailing bytes refused)."""
    try:
        r, s = decode_dss_signature(bytes(der))
    except (ValueError, TypeError):
        raise CryptoError("SM2 signature is not valid DER") from None
    if not (0 <= r < 2**256 and 0 <= s < 2**256):
        raise CryptoError("SM2 signature integers do not fit in 32 bytes")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_to_raw(sig: bytes) -> bytes:
    """Raw r||s from either encoding, for reading a counterpart's signature leniently.

    Exactly 64 bytes is read as raw: a DER signature is 64 bytes long only when r and s together are six
    bytes short of 2·32, which random signatures practically never are; anything else must be DER.
    """
    if isinstance(sig, (bytes, bytearray)) and len(sig) == 64:
        return bytes(sig)
    return der_to_raw(sig)
