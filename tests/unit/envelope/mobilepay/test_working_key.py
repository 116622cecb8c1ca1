"""Working-key derivation (mobilepay.md, Encryption 1), checked against `cryptography` used directly."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.core.errors import ConfigurationError
from yibao.envelope.mobilepay import MobilePayCodec, derive_working_key


def _expected(app_id: str, app_secret: str) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(app_secret.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.SM4(app_id[:16].encode("ascii")), modes.ECB()).encryptor()
    cipher_hex = (enc.update(padded) + enc.finalize()).hex().upper()
    return cipher_hex[:16].encode("ascii")


@pytest.mark.parametrize(
    ("app_id", "app_secret"),
    [
        ("1G6AB2KF30000101A8C0000017B8E5D9", "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F"),
        ("ABCDEFGHIJKLMNOP", "s"),
        ("0123456789abcdefXYZ", "密钥含中文也按UTF-8加密"),
    ],
)
def test_working_key_is_first_16_upper_hex_chars_of_sm4_ecb_of_app_secret_under_app_id(app_id, app_secret) -> None:
    key = derive_working_key(app_id, app_secret)
    assert key == _expected(app_id, app_secret)
    assert len(key) == 16 and key.decode("ascii").upper() == key.decode("ascii")


def test_working_key_of_known_credentials_is_this_pinned_value() -> None:
    # SM4-ECB/PKCS7("s", key "ABCDEFGHIJKLMNOP") = 1DA094E87B031AD46CF1C16A3003AAA0, computed once with
    # `cryptography` directly; the key is its first 16 hex characters
    assert derive_working_key("ABCDEFGHIJKLMNOP", "s") == b"1DA094E87B031AD4"


def test_codec_exposes_the_derived_working_key(hospital) -> None:
    assert hospital.working_key() == _expected(hospital.app_id, "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F")


@pytest.mark.parametrize("app_id", ["SHORT", "中文中文中文中文中文中文中文中文"])
def test_app_id_needs_16_ascii_characters(app_id: str) -> None:
    with pytest.raises(ConfigurationError, match="16 ASCII"):
        derive_working_key(app_id, "secret")


def test_empty_app_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="appSecret"):
        derive_working_key("ABCDEFGHIJKLMNOP", "")


def test_codec_rejects_an_unusable_app_id_at_construction(keys) -> None:
    with pytest.raises(ConfigurationError):
        MobilePayCodec("SHORT", "secret", keys["hospital"][0], keys["platform"][1])
