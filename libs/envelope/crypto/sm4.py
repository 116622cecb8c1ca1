"""SM4 (GB/T 32907) from ``cryptography``, with PKCS#7 padding checked on the way back.

Decryption never returns garbage: a wrong key or a tampered ciphertext almost always breaks the PKCS#7 padding,
and that raises :class:`CryptoError` (the pure-Python gmssl release does not check padding at all). Padding is
not a MAC, though: roughly one wrong key in 256 still yields a valid-looking pad — the envelopes therefore also
verify a signature over the data before trusting it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.envelope.errors import CryptoError

__all__ = [
    "SM4_KEY_SIZE",
    "SM4_BLOCK_SIZE",
    "sm4_ecb_encrypt",
    "sm4_ecb_decrypt",
    "sm4_cbc_encrypt",
    "sm4_cbc_decrypt",
]

SM4_KEY_SIZE = 16
SM4_BLOCK_SIZE = 16


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != SM4_KEY_SIZE:
        raise CryptoError("SM4 key must be 16 bytes")


def _check_iv(iv: bytes) -> None:
    if not isinstance(iv, (bytes, bytearray)) or len(iv) != SM4_BLOCK_SIZE:
        raise CryptoError("SM4 IV must be 16 bytes")


def _check_ciphertext(ciphertext: bytes) -> None:
    if not isinstance(ciphertext, (bytes, bytearray)) or not ciphertext or len(ciphertext) % SM4_BLOCK_SIZE:
        raise CryptoError("SM4 ciphertext length must be a positive multiple of 16 bytes")


def _pad(plaintext: bytes) -> bytes:
    padder = padding.PKCS7(SM4_BLOCK_SIZE * 8).padder()
    return padder.update(bytes(plaintext)) + padder.finalize()


def _unpad(padded: bytes) -> bytes:
    unpadder = padding.PKCS7(SM4_BLOCK_SIZE * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CryptoError("SM4 decrypt: invalid PKCS7 padding (wrong key or tampered ciphertext)") from None


def _run(cipher: Cipher, data: bytes, *, encrypt: bool) -> bytes:
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(bytes(data)) + ctx.finalize()


def sm4_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7 padding (what the national and mobile-pay platforms use)."""
    _check_key(key)
    return _run(Cipher(algorithms.SM4(bytes(key)), modes.ECB()), _pad(plaintext), encrypt=True)


def sm4_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`sm4_ecb_encrypt`; raises :class:`CryptoError` on a bad length or bad padding."""
    _check_key(key)
    _check_ciphertext(ciphertext)
    return _unpad(_run(Cipher(algorithms.SM4(bytes(key)), modes.ECB()), ciphertext, encrypt=False))


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding, for platforms that ask for CBC."""
    _check_key(key)
    _check_iv(iv)
    return _run(Cipher(algorithms.SM4(bytes(key)), modes.CBC(bytes(iv))), _pad(plaintext), encrypt=True)


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`sm4_cbc_encrypt`; raises :class:`CryptoError` on a bad length or bad padding."""
    _check_key(key)
    _check_iv(iv)
    _check_ciphertext(ciphertext)
    return _unpad(_run(Cipher(algorithms.SM4(bytes(key)), modes.CBC(bytes(iv))), ciphertext, encrypt=False))
