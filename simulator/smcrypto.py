"""SM2/SM3/SM4 as the simulator needs them, independent of the bridge's own envelope code.

The simulator is the other side of every conversation, so it deliberately does not reuse the bridge's crypto
wrapper: a shared bug would then pass both ends. SM3 and SM4 come from ``cryptography``; SM2 (SM3 digest,
user id 1234567812345678) from the GmSSL binding ``gmssl_pyx``, whose DER signatures are converted to the raw
r||s form (each half zero-padded to 32 bytes) the platforms use (../shared/spec/crypto.md).
"""

from __future__ import annotations

import base64

import gmssl_pyx
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "USER_ID",
    "sm3",
    "sm4_ecb_encrypt",
    "sm4_ecb_decrypt",
    "sm2_keypair",
    "sm2_sign_raw",
    "sm2_verify_raw",
    "b64e",
    "b64d",
    "public_from_hex",
]

USER_ID = b"1234567812345678"


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm4_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(padded) + enc.finalize()


def sm4_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Decrypt and strip PKCS7; a wrong key or tampered text raises ValueError (padding checked)."""
    if not data or len(data) % 16:
        raise ValueError("SM4 ciphertext length is not a multiple of 16")
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def sm2_keypair() -> tuple[bytes, bytes]:
    """(private 32 bytes, public 64 bytes x||y)."""
    public, private = gmssl_pyx.sm2_key_generate()
    return private, public


def public_from_hex(text: str) -> bytes:
    """A public key given as hex, with or without the 04 prefix, as 64 bytes x||y."""
    raw = bytes.fromhex(text.strip())
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    if len(raw) != 64:
        raise ValueError("an SM2 public key is 64 bytes (x||y), optionally prefixed by 04")
    return raw


def sm2_sign_raw(private: bytes, public: bytes, data: bytes) -> bytes:
    der = gmssl_pyx.sm2_sign(private, public, data, signer_id=USER_ID)
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_verify_raw(public: bytes, data: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        return bool(gmssl_pyx.sm2_verify(public, data, der, signer_id=USER_ID))
    except Exception:  # noqa: BLE001 - a malformed signature is a failed verification, not a crash
        return False


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
