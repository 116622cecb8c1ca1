"""SM4 with PKCS7: round trips, and decryption that refuses instead of returning garbage."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.envelope.crypto import sm4_cbc_decrypt, sm4_cbc_encrypt, sm4_ecb_decrypt, sm4_ecb_encrypt
from yibao.envelope.errors import CryptoError

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))
IV = bytes(16)


@pytest.mark.parametrize("plaintext", [b"", b"a", b"x" * 15, b"x" * 16, "医保移动支付".encode(), bytes(range(256))])
def test_sm4_ecb_round_trips_any_length(plaintext: bytes) -> None:
    out = sm4_ecb_encrypt(KEY, plaintext)
    assert len(out) % 16 == 0 and len(out) > len(plaintext)
    assert sm4_ecb_decrypt(KEY, out) == plaintext


def test_sm4_ecb_matches_cryptography_with_pkcs7_computed_independently() -> None:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(b"hello world") + padder.finalize()
    enc = Cipher(algorithms.SM4(KEY), modes.ECB()).encryptor()
    assert sm4_ecb_encrypt(KEY, b"hello world") == enc.update(padded) + enc.finalize()


def test_sm4_cbc_round_trips_and_differs_from_ecb() -> None:
    text = b"0123456789abcdef" * 3
    out = sm4_cbc_encrypt(KEY, IV, text)
    assert out != sm4_ecb_encrypt(KEY, text)
    assert sm4_cbc_decrypt(KEY, IV, out) == text


def test_sm4_decrypt_with_a_wrong_key_raises_instead_of_returning_garbage() -> None:
    out = sm4_ecb_encrypt(KEY, b'{"payOrdId":"ORD0001"}')
    with pytest.raises(CryptoError, match="padding"):
        sm4_ecb_decrypt(OTHER_KEY, out)


def test_sm4_decrypt_of_a_tampered_last_block_raises() -> None:
    out = bytearray(sm4_ecb_encrypt(KEY, b"settlement"))
    out[-1] ^= 0x01
    with pytest.raises(CryptoError):
        sm4_ecb_decrypt(KEY, bytes(out))


@pytest.mark.parametrize("ciphertext", [b"", b"x" * 15, b"x" * 17])
def test_sm4_decrypt_refuses_a_length_that_is_not_whole_blocks(ciphertext: bytes) -> None:
    with pytest.raises(CryptoError, match="multiple of 16"):
        sm4_ecb_decrypt(KEY, ciphertext)


@pytest.mark.parametrize("key", [b"", b"k" * 15, b"k" * 32])
def test_sm4_key_must_be_16_bytes(key: bytes) -> None:
    with pytest.raises(CryptoError, match="16 bytes"):
        sm4_ecb_encrypt(key, b"data")


def test_sm4_cbc_iv_must_be_16_bytes() -> None:
    with pytest.raises(CryptoError, match="IV"):
        sm4_cbc_encrypt(KEY, b"short", b"data")
