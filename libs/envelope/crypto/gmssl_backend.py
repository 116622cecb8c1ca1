"""SM2 on the pure-Python ``gmssl`` 3.2.2 release: the portable fallback and the independent cross-check.

gmssl 3.2.2 has defects, each worked around here rather than patched:

* its signing nonce and encryption ephemeral key come from ``random`` (predictable → the private key leaks).
  We always pass k ourselves, from :mod:`secrets`; for encryption we only borrow its point multiplication
  and run the GB/T 32918.4 recipe (:mod:`~yibao.envelope.crypto.sm2_common`) with our own k;
* ``CryptSM2(public_key=...)`` runs ``lstrip("04")`` on the key, which also eats a leading '0'/'4' of x.
  We never hand it a key through the constructor: the validated x||y is set on the instance afterwards;
* its decrypt never checks C3 (garbage on a wrong key) — we decrypt with our recipe, which checks C3;
* the user id is hard-coded — we compute the digest e ourselves (any uid) and call its raw ``sign``/``verify``;
* its ``verify`` does not check that r and s lie in [1, n-1] — we check first.

It is slow (tens of signatures per second); :mod:`gmsslpyx_backend` is preferred when importable.
"""

from __future__ import annotations

from gmssl.sm2 import CryptSM2

from yibao.envelope.crypto import curve
from yibao.envelope.crypto.ciphertext_format import Mode, parse_ciphertext, serialize_ciphertext
from yibao.envelope.crypto.keys import private_key_int, public_key_bytes, public_key_from_private
from yibao.envelope.crypto.signature_format import is_valid_raw_range, split_raw
from yibao.envelope.crypto.sm2_common import (
    DEFAULT_UID,
    decrypt_with,
    encrypt_with,
    message_digest,
    random_scalar,
)
from yibao.envelope.errors import CryptoError

__all__ = ["GmsslBackend"]


def _engine(private_hex: str = "", public_xy_hex: str = "") -> CryptSM2:
    engine = CryptSM2(private_key=private_hex, public_key="")
    engine.public_key = public_xy_hex  # set after construction: the constructor's lstrip("04") would corrupt it
    return engine


class GmsslBackend:
    """:class:`~yibao.envelope.crypto.backend.SM2Backend` on pure-Python gmssl, with secure nonces.

    ``_fixed_k`` is for known-answer tests only (the GB/T 32918 vectors fix k); a fixed k in production
    would reveal the private key from two signatures.
    """

    name = "gmssl"

    def __init__(self, *, _fixed_k: int | None = None) -> None:
        if _fixed_k is not None and not 1 <= _fixed_k < curve.N:
            raise CryptoError("fixed k out of range [1, n-1]")
        self._fixed_k = _fixed_k
        self._mult_engine = _engine()

    def __repr__(self) -> str:
        return f"GmsslBackend(fixed_k={'yes' if self._fixed_k else 'no'})"

    def _nonce(self) -> int:
        return self._fixed_k if self._fixed_k is not None else random_scalar()

    def point_mult(self, k: int, point_xy: bytes) -> bytes | None:
        """k·point with gmssl's Jacobian arithmetic (x||y in, x||y out, None at infinity)."""
        out = self._mult_engine._kg(k, point_xy.hex())
        return bytes.fromhex(out) if out else None

    def sign(self, private_key: str, message: bytes, *, uid: bytes = DEFAULT_UID) -> bytes:
        d = private_key_int(private_key)
        public_xy = public_key_bytes(public_key_from_private(private_key))
        e = message_digest(public_xy, message, uid)
        engine = _engine(private_hex=f"{d:064x}")
        for _ in range(16):
            out = engine.sign(e, f"{self._nonce():064x}")  # None when r = 0, r + k = n or s = 0
            if out:
                return bytes.fromhex(out)
            if self._fixed_k is not None:
                break
        raise CryptoError("SM2 sign: no usable nonce")

    def verify(self, public_key: str, message: bytes, signature: bytes, *, uid: bytes = DEFAULT_UID) -> bool:
        try:
            public_xy = public_key_bytes(public_key)
            r, s = split_raw(signature)
            if not is_valid_raw_range(r, s):
                return False
            e = message_digest(public_xy, message, uid)
            return bool(_engine(public_xy_hex=public_xy.hex()).verify(bytes(signature).hex(), e))
        except Exception:  # noqa: BLE001 - a bad signature or key is an answer (False), never an exception
            return False

    def encrypt(self, public_key: str, plaintext: bytes, *, mode: Mode = "C1C3C2", prefix04: bool = True) -> bytes:
        public_xy = public_key_bytes(public_key)
        ct = encrypt_with(self.point_mult, public_xy, bytes(plaintext), self._nonce)
        return serialize_ciphertext(ct, mode=mode, prefix04=prefix04)

    def decrypt(self, private_key: str, ciphertext: bytes, *, mode: Mode = "C1C3C2",
                prefix04: bool | None = None) -> bytes:
        d = private_key_int(private_key)
        ct = parse_ciphertext(ciphertext, mode=mode, prefix04=prefix04)
        return decrypt_with(self.point_mult, d, ct)

