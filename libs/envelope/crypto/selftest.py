"""The GB/T known-answer vectors (../shared/spec/crypto.md) and a start-up self-test built on them.

A service can call :func:`self_test` once at start-up: if a wheel, a platform build of GmSSL or a library
upgrade broke SM2/SM3/SM4, it fails loudly before the first real message instead of producing signatures the
platform rejects. It only verifies and decrypts (no fixed nonce is needed), so it runs on every backend.
"""

from __future__ import annotations

from yibao.envelope.crypto.backend import SM2Backend
from yibao.envelope.crypto.hashing import sm3_hex
from yibao.envelope.crypto.registry import resolve_backend
from yibao.envelope.crypto.sm4 import sm4_ecb_encrypt
from yibao.envelope.errors import CryptoError

__all__ = [
    "SM3_ABC",
    "SM3_ABCD16",
    "SM4_KEY_AND_PLAINTEXT",
    "SM4_BLOCK_CIPHERTEXT",
    "SM2_PRIVATE",
    "SM2_PUBLIC",
    "SM2_K",
    "SM2_SIGNED_MESSAGE",
    "SM2_SIGNATURE",
    "SM2_PLAINTEXT",
    "SM2_CIPHERTEXT_C1C3C2_04",
    "self_test",
]

# GB/T 32905-2016 Annex A
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
# GB/T 32907-2016 Annex A.1 (one block, no padding)
SM4_KEY_AND_PLAINTEXT = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_BLOCK_CIPHERTEXT = bytes.fromhex("681edf34d206965e86b3e94f536e4246")
# GB/T 32918.5-2017 Annex A, recommended curve, user id 1234567812345678
SM2_PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
SM2_PUBLIC = (
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
SM2_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
SM2_SIGNED_MESSAGE = b"message digest"
SM2_SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
SM2_PLAINTEXT = b"encryption standard"
SM2_CIPHERTEXT_C1C3C2_04 = bytes.fromhex(
    "04"
    "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
    "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0"
    "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
    "21886CA989CA9C7D58087307CA93092D651EFA"
)


def self_test(backend: SM2Backend | str | None = None) -> None:
    """Raise :class:`CryptoError` naming the first vector that fails; return None when all pass."""
    if sm3_hex(b"abc") != SM3_ABC or sm3_hex(b"abcd" * 16) != SM3_ABCD16:
        raise CryptoError("self-test: SM3 vector failed")
    if sm4_ecb_encrypt(SM4_KEY_AND_PLAINTEXT, SM4_KEY_AND_PLAINTEXT)[:16] != SM4_BLOCK_CIPHERTEXT:
        raise CryptoError("self-test: SM4 vector failed")
    sm2 = resolve_backend(backend)
    if not sm2.verify(SM2_PUBLIC, SM2_SIGNED_MESSAGE, SM2_SIGNATURE):
        raise CryptoError(f"self-test: SM2 signature vector failed on {sm2.name}")
    if sm2.verify(SM2_PUBLIC, SM2_SIGNED_MESSAGE + b"!", SM2_SIGNATURE):
        raise CryptoError(f"self-test: SM2 accepted a wrong message on {sm2.name}")
    if sm2.decrypt(SM2_PRIVATE, SM2_CIPHERTEXT_C1C3C2_04, mode="C1C3C2", prefix04=True) != SM2_PLAINTEXT:
        raise CryptoError(f"self-test: SM2 decryption vector failed on {sm2.name}")
    probe = sm2.sign(SM2_PRIVATE, b"self-test")
    if not sm2.verify(SM2_PUBLIC, b"self-test", probe):
        raise CryptoError(f"self-test: SM2 sign/verify round trip failed on {sm2.name}")
