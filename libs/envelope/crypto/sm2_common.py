"""The parts of SM2 that do not depend on who does the point arithmetic: Z, the signed digest e, the KDF and
the encryption/decryption recipe (GB/T 32918.2 §6, GB/T 32918.4 §6-7).

The digest is computed here with ``cryptography``'s SM3 for every backend, so the user id is a real parameter
(pure gmssl hard-codes 1234567812345678) and Z — which only depends on the public key and the user id — is
cached instead of re-hashed on every signature.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import lru_cache

from yibao.envelope.crypto import curve
from yibao.envelope.crypto.ciphertext_format import Sm2Ciphertext
from yibao.envelope.crypto.hashing import sm3
from yibao.envelope.errors import CryptoError

__all__ = [
    "DEFAULT_UID",
    "za",
    "message_digest",
    "kdf",
    "random_scalar",
    "PointMult",
    "encrypt_with",
    "decrypt_with",
]

#: the user id (signer id) every platform we know uses; GB/T 35276 recommends it as the default
DEFAULT_UID = b"1234567812345678"

_CURVE_BYTES = b"".join(v.to_bytes(32, "big") for v in (curve.A, curve.B, curve.GX, curve.GY))

#: k·point, both as 64-byte x||y; None for the point at infinity. Supplied by a backend.
PointMult = Callable[[int, bytes], "bytes | None"]


@lru_cache(maxsize=512)
def za(public_xy: bytes, uid: bytes = DEFAULT_UID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A)."""
    bits = len(uid) * 8
    if bits > 0xFFFF:
        raise CryptoError("SM2 user id too long (at most 8191 bytes)")
    return sm3(bits.to_bytes(2, "big") + uid + _CURVE_BYTES + public_xy)


def message_digest(public_xy: bytes, message: bytes, uid: bytes = DEFAULT_UID) -> bytes:
    """e = SM3(Z_A || M): what SM3withSM2 actually signs."""
    return sm3(za(bytes(public_xy), bytes(uid)) + bytes(message))


def kdf(z: bytes, length: int) -> bytes:
    """The SM3 key derivation function of GB/T 32918.4 §5.4.3."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def random_scalar() -> int:
    """A nonce or ephemeral key in [1, n-1], from :mod:`secrets` (never ``random``)."""
    return secrets.randbelow(curve.N - 1) + 1


_G = curve.GX.to_bytes(32, "big") + curve.GY.to_bytes(32, "big")


def encrypt_with(mult: PointMult, public_xy: bytes, plaintext: bytes, nonce: Callable[[], int]) -> Sm2Ciphertext:
    """GB/T 32918.4 §6.1 with the backend's point multiplication and our own ephemeral key k."""
    if not plaintext:
        raise CryptoError("SM2 plaintext must not be empty")
    for _ in range(16):
        k = nonce()
        c1 = mult(k, _G)
        shared = mult(k, public_xy)
        if c1 is None or shared is None:
            continue
        t = kdf(shared, len(plaintext))
        if not any(t):  # all-zero key stream: choose another k (§6.1 A5)
            continue
        c2 = bytes(a ^ b for a, b in zip(plaintext, t))
        c3 = sm3(shared[:32] + plaintext + shared[32:])
        return Sm2Ciphertext(int.from_bytes(c1[:32], "big"), int.from_bytes(c1[32:], "big"), c3, c2)
    raise CryptoError("SM2 encrypt: no usable ephemeral key (nonce source broken?)")


def decrypt_with(mult: PointMult, d: int, ct: Sm2Ciphertext) -> bytes:
    """GB/T 32918.4 §7.1, C3 checked in constant time. C1 was checked to be on the curve when parsed."""
    shared = mult(d, ct.c1)
    if shared is None:
        raise CryptoError("SM2 decrypt: C1 gives the point at infinity")
    t = kdf(shared, len(ct.c2))
    if not any(t):
        raise CryptoError("SM2 decrypt: all-zero key stream (tampered ciphertext)")
    plaintext = bytes(a ^ b for a, b in zip(ct.c2, t))
    expected = sm3(shared[:32] + plaintext + shared[32:])
    if not hmac.compare_digest(expected, ct.c3):
        raise CryptoError("SM2 decrypt: C3 check failed (wrong key, wrong mode or tampered ciphertext)")
    return plaintext
