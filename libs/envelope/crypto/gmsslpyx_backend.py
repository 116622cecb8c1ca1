"""SM2 on gmssl-pyx, the Python binding of the GmSSL C library: the fast backend (thousands of signatures per
second where pure gmssl manages tens — measured in crypto.md and by bench/bench_crypto.py).

What the binding offers and how it is adapted (found by introspecting gmssl_pyx 2.1.0 and its .pyi stubs):

* ``sm2_sign_sm3_digest(d32, e32) -> DER`` / ``sm2_verify_sm3_digest(xy64, e32, DER) -> bool``: we compute
  e = SM3(Z(uid) || M) ourselves (any uid, Z cached) and convert DER <-> raw r||s;
* it has no public-key derivation, so the signer's x||y for Z comes from :func:`keys.public_key_from_private`
  (cached per key);
* ``sm2_encrypt(xy64, m) -> DER C1C3C2`` and ``sm2_decrypt(d32, DER)`` only take 1..255-byte plaintexts; we
  convert DER to/from the requested raw layout, and fall back to the pure-Python recipe (with a ``secrets``
  ephemeral key and the C3 check) for longer messages — rare, since envelopes only wrap 16-byte SM4 keys;
* its nonces and ephemeral keys come from GmSSL's own generator; no deterministic k can be injected, so the
  known-answer tests check this backend by verifying/decrypting the GB/T vector outputs;
* GmSSL prints a source-location trace to the process's stderr when a decrypt or verify fails; harmless,
  but visible in container logs when someone sends a bad signature.
"""

from __future__ import annotations

from yibao.envelope.crypto.ciphertext_format import (
    Mode,
    ciphertext_from_der,
    ciphertext_to_der,
    parse_ciphertext,
    serialize_ciphertext,
)
from yibao.envelope.crypto.keys import private_key_bytes, public_key_bytes, public_key_from_private
from yibao.envelope.crypto.signature_format import der_to_raw, is_valid_raw_range, raw_to_der, split_raw
from yibao.envelope.crypto.sm2_common import DEFAULT_UID, decrypt_with, encrypt_with, message_digest, random_scalar
from yibao.envelope.errors import CryptoError

__all__ = ["GmsslPyxBackend", "MAX_NATIVE_PLAINTEXT"]

#: the longest plaintext GmSSL's sm2_encrypt/sm2_decrypt accept (gmsslext.pyi)
MAX_NATIVE_PLAINTEXT = 255


class GmsslPyxBackend:
    """:class:`~yibao.envelope.crypto.backend.SM2Backend` on the GmSSL C library."""

    name = "gmssl-pyx"

    def __init__(self) -> None:
        import gmssl_pyx  # ImportError tells the registry this backend is unavailable

        self._lib = gmssl_pyx
        self._fallback = None

    def __repr__(self) -> str:
        return "GmsslPyxBackend()"

    def _pure(self):  # noqa: ANN202 - GmsslBackend, imported lazily (only for > 255-byte messages)
        if self._fallback is None:
            from yibao.envelope.crypto.gmssl_backend import GmsslBackend

            self._fallback = GmsslBackend()
        return self._fallback

    def sign(self, private_key: str, message: bytes, *, uid: bytes = DEFAULT_UID) -> bytes:
        d = private_key_bytes(private_key)
        public_xy = public_key_bytes(public_key_from_private(private_key))
        e = message_digest(public_xy, message, uid)
        try:
            der = self._lib.sm2_sign_sm3_digest(d, e)
        except self._lib.GmsslInnerError:
            raise CryptoError("SM2 sign failed in GmSSL") from None
        return der_to_raw(der)

    def verify(self, public_key: str, message: bytes, signature: bytes, *, uid: bytes = DEFAULT_UID) -> bool:
        try:
            public_xy = public_key_bytes(public_key)
            r, s = split_raw(signature)
            if not is_valid_raw_range(r, s):
                return False
            e = message_digest(public_xy, message, uid)
            return bool(self._lib.sm2_verify_sm3_digest(public_xy, e, raw_to_der(signature)))
        except Exception:  # noqa: BLE001 - a bad signature or key is an answer (False), never an exception
            return False

    def encrypt(self, public_key: str, plaintext: bytes, *, mode: Mode = "C1C3C2", prefix04: bool = True) -> bytes:
        public_xy = public_key_bytes(public_key)
        plaintext = bytes(plaintext)
        if not plaintext:
            raise CryptoError("SM2 plaintext must not be empty")
        if len(plaintext) <= MAX_NATIVE_PLAINTEXT:
            try:
                ct = ciphertext_from_der(self._lib.sm2_encrypt(public_xy, plaintext))
            except self._lib.GmsslInnerError:
                raise CryptoError("SM2 encrypt failed in GmSSL") from None
        else:
            pure = self._pure()
            ct = encrypt_with(pure.point_mult, public_xy, plaintext, random_scalar)
        return serialize_ciphertext(ct, mode=mode, prefix04=prefix04)

    def decrypt(self, private_key: str, ciphertext: bytes, *, mode: Mode = "C1C3C2",
                prefix04: bool | None = None) -> bytes:
        d = private_key_bytes(private_key)
        ct = parse_ciphertext(ciphertext, mode=mode, prefix04=prefix04)
        if len(ct.c2) > MAX_NATIVE_PLAINTEXT:
            return decrypt_with(self._pure().point_mult, int.from_bytes(d, "big"), ct)
        try:
            return self._lib.sm2_decrypt(d, ciphertext_to_der(ct))
        except self._lib.GmsslInnerError:  # GmSSL checks C3 and fails here
            raise CryptoError(
                "SM2 decrypt: C3 check failed (wrong key, wrong mode or tampered ciphertext)"
            ) from None
