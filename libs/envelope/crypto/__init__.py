"""SM2 / SM3 / SM4 for every envelope: one API, a fast C backend and a portable pure-Python one.

* SM3 and SM4 come from ``cryptography`` (:mod:`.hashing`, :mod:`.sm4`);
* SM2 goes through an :class:`SM2Backend` chosen by :func:`get_backend`: gmssl-pyx (GmSSL C binding) when
  installed, else pure-Python gmssl with its defects worked around (:mod:`.gmssl_backend`);
* keys are hex strings, signatures raw r||s (Base64 on the wire: :func:`sign_b64`), ciphertext layouts
  (C1C3C2/C1C2C3, 04 prefix) are parameters — platforms differ on each (../shared/spec/crypto.md).

Nothing here logs, and no error message carries key material or plaintext.
"""

from __future__ import annotations

from yibao.envelope.crypto.backend import SM2Backend
from yibao.envelope.crypto.ciphertext_format import MODES, Mode
from yibao.envelope.crypto.hashing import sm3, sm3_hex
from yibao.envelope.crypto.keys import generate_keypair, normalize_public_key, public_key_from_private
from yibao.envelope.crypto.registry import BACKEND_NAMES, available_backends, get_backend, resolve_backend
from yibao.envelope.crypto.signature_format import der_to_raw, raw_to_der, signature_to_raw
from yibao.envelope.crypto.selftest import self_test
from yibao.envelope.crypto.signing import sign_b64, verify_b64
from yibao.envelope.crypto.sm2_common import DEFAULT_UID
from yibao.envelope.crypto.sm4 import sm4_cbc_decrypt, sm4_cbc_encrypt, sm4_ecb_decrypt, sm4_ecb_encrypt

__all__ = [
    "sm3",
    "sm3_hex",
    "sm4_ecb_encrypt",
    "sm4_ecb_decrypt",
    "sm4_cbc_encrypt",
    "sm4_cbc_decrypt",
    "DEFAULT_UID",
    "Mode",
    "MODES",
    "SM2Backend",
    "BACKEND_NAMES",
    "get_backend",
    "available_backends",
    "resolve_backend",
    "generate_keypair",
    "public_key_from_private",
    "normalize_public_key",
    "sign_b64",
    "verify_b64",
    "raw_to_der",
    "der_to_raw",
    "signature_to_raw",
    "self_test",
]
