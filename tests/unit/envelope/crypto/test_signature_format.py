"""Raw r||s vs DER: zero padding both ways, strict parsing, and the Base64 helpers."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from yibao.envelope.crypto import der_to_raw, get_backend, raw_to_der, sign_b64, signature_to_raw, verify_b64
from yibao.envelope.errors import CryptoError


def test_der_with_short_r_and_s_becomes_raw_zero_padded_to_32_plus_32() -> None:
    der = encode_dss_signature(0x1234, 0xAB)
    raw = der_to_raw(der)
    assert len(raw) == 64
    assert raw[:32] == bytes(30) + b"\x12\x34"
    assert raw[32:] == bytes(31) + b"\xab"


def test_raw_with_leading_zero_bytes_becomes_minimal_der() -> None:
    raw = bytes(31) + b"\x01" + b"\x80" + bytes(31)
    assert decode_dss_signature(raw_to_der(raw)) == (1, 0x80 << 248)
    assert der_to_raw(raw_to_der(raw)) == raw


def test_raw_signature_must_be_exactly_64_bytes() -> None:
    for bad in (b"", bytes(63), bytes(65)):
        with pytest.raises(CryptoError):
            raw_to_der(bad)


@pytest.mark.parametrize("bad", [b"", b"\x30\x00", b"garbage", encode_dss_signature(1, 2) + b"\x00"])
def test_malformed_der_is_refused(bad: bytes) -> None:
    with pytest.raises(CryptoError):
        der_to_raw(bad)


def test_der_integer_wider_than_32_bytes_is_refused() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        der_to_raw(encode_dss_signature(2**256, 1))


def test_signature_to_raw_reads_raw_as_is_and_der_converted() -> None:
    raw = bytes(range(1, 65))
    assert signature_to_raw(raw) == raw
    assert signature_to_raw(raw_to_der(raw)) == raw


def test_sign_b64_gives_base64_of_64_bytes_that_verify_b64_accepts(gbt_keypair) -> None:
    private, public = gbt_keypair
    text = sign_b64(private, "签名原文&key=secret")
    assert len(base64.b64decode(text)) == 64
    assert verify_b64(public, "签名原文&key=secret", text)
    assert verify_b64(public, "签名原文&key=secret".encode(), text)


def test_verify_b64_accepts_a_der_signature_from_a_lenient_counterpart(gbt_keypair) -> None:
    private, public = gbt_keypair
    raw = get_backend().sign(private, b"m")
    assert verify_b64(public, b"m", base64.b64encode(raw_to_der(raw)).decode())


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(bytes(64)).decode(), "QUJD"])
def test_verify_b64_answers_false_for_garbage(gbt_keypair, bad: str) -> None:
    _, public = gbt_keypair
    assert verify_b64(public, b"m", bad) is False
