"""SM2 ciphertext layouts and GmSSL's DER form: strict parsing, C1 always a curve point."""

from __future__ import annotations

import pytest

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import curve
from yibao.envelope.crypto.ciphertext_format import (
    Sm2Ciphertext,
    ciphertext_from_der,
    ciphertext_to_der,
    parse_ciphertext,
    serialize_ciphertext,
)
from yibao.envelope.errors import CryptoError

POINT = curve.base_mult(7)
CT = Sm2Ciphertext(POINT[0], POINT[1], bytes(range(32)), b"payload")


def test_der_round_trip_keeps_every_part() -> None:
    assert ciphertext_from_der(ciphertext_to_der(CT)) == CT


def test_der_integers_with_the_high_bit_set_get_a_leading_zero_byte() -> None:
    high = next(p for p in (curve.base_mult(k) for k in range(2, 50)) if p[0] >> 255)
    ct = Sm2Ciphertext(high[0], high[1], bytes(32), b"x")
    der = ciphertext_to_der(ct)
    assert der[2:5] == b"\x02\x21\x00"
    assert ciphertext_from_der(der) == ct


def test_der_with_a_long_c2_uses_long_form_lengths() -> None:
    ct = Sm2Ciphertext(POINT[0], POINT[1], bytes(32), bytes(300))
    assert ciphertext_from_der(ciphertext_to_der(ct)) == ct


@pytest.mark.parametrize("damage", ["trailing", "truncated", "tag", "c3-length"])
def test_malformed_der_is_refused(damage: str) -> None:
    der = ciphertext_to_der(CT)
    bad = {
        "trailing": der + b"\x00",
        "truncated": der[:-1],
        "tag": b"\x31" + der[1:],
        "c3-length": ciphertext_to_der(Sm2Ciphertext(CT.x1, CT.y1, bytes(31), CT.c2)),
    }[damage]
    with pytest.raises(CryptoError):
        ciphertext_from_der(bad)


def test_der_with_c1_off_the_curve_is_refused() -> None:
    with pytest.raises(CryptoError, match="curve"):
        ciphertext_from_der(ciphertext_to_der(Sm2Ciphertext(CT.x1, CT.y1 + 1, CT.c3, CT.c2)))


@pytest.mark.parametrize("mode", ["C1C3C2", "C1C2C3"])
@pytest.mark.parametrize("prefix", [True, False])
def test_raw_layout_round_trips_and_the_prefix_is_detected(mode: str, prefix: bool) -> None:
    data = serialize_ciphertext(CT, mode=mode, prefix04=prefix)
    assert parse_ciphertext(data, mode=mode, prefix04=prefix) == CT
    assert parse_ciphertext(data, mode=mode) == CT


def test_c1c3c2_puts_the_check_value_before_the_message_and_c1c2c3_after() -> None:
    assert serialize_ciphertext(CT, mode="C1C3C2", prefix04=False)[64:96] == CT.c3
    assert serialize_ciphertext(CT, mode="C1C2C3", prefix04=False)[-32:] == CT.c3


def test_ciphertext_without_room_for_c3_and_a_message_is_refused() -> None:
    with pytest.raises(CryptoError, match="too short"):
        parse_ciphertext(b"\x04" + CT.c1 + bytes(32), prefix04=True)


def test_ciphertext_whose_c1_is_not_a_point_is_refused() -> None:
    with pytest.raises(CryptoError, match="not a point"):
        parse_ciphertext(bytes(200))


def test_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        serialize_ciphertext(CT, mode="C3C1C2")
