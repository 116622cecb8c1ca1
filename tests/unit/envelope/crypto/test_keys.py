"""Key formats: 04 prefix by length (never lstrip), any case, on-curve checks, ranges, generation."""

from __future__ import annotations

import pytest

from yibao.envelope.crypto import curve, generate_keypair, normalize_public_key, public_key_from_private
from yibao.envelope.crypto.keys import private_key_int
from yibao.envelope.crypto.hashing import sm3_hex
from yibao.envelope.errors import CryptoError


def test_public_key_with_or_without_04_prefix_in_any_case_normalizes_to_upper_x_y(gbt_keypair) -> None:
    _, public = gbt_keypair
    for form in (public, "04" + public, public.lower(), "04" + public.lower(), f"  {public}\n"):
        assert normalize_public_key(form) == public.upper()


def test_public_key_whose_x_starts_with_04_keeps_its_leading_digits(trap_keypair) -> None:
    _, public = trap_keypair
    assert normalize_public_key(public) == public
    assert normalize_public_key("04" + public) == public


def test_trap_keys_are_derived_from_their_private_keys(trap_keys) -> None:
    seeds = {"x starts with 04": 120, "x starts with 4": 22, "x starts with 00": 162}
    for label, (private, public) in trap_keys.items():
        i = seeds[label]
        assert public_key_from_private(private) == public, label
        assert int(sm3_hex(f"trap-{i}".encode()), 16) % (curve.N - 2) + 1 == private_key_int(private), label


@pytest.mark.parametrize(
    "bad",
    ["", "zz" * 64, "00" * 64, "05" + "00" * 64, "ab" * 63, "ab" * 65, 12345],
    ids=["empty", "not-hex", "zero-point", "bad-prefix", "short", "long", "not-a-string"],
)
def test_public_key_that_is_not_a_curve_point_in_a_known_form_is_refused(bad) -> None:
    with pytest.raises(CryptoError):
        normalize_public_key(bad)


def test_public_key_off_the_curve_is_refused(gbt_keypair) -> None:
    _, public = gbt_keypair
    tampered = public[:-1] + ("0" if public[-1] != "0" else "1")
    with pytest.raises(CryptoError, match="not a point"):
        normalize_public_key(tampered)


def test_error_messages_never_contain_the_key(gbt_keypair) -> None:
    private, public = gbt_keypair
    with pytest.raises(CryptoError) as info:
        normalize_public_key(public[:-2])
    assert public[:20] not in str(info.value)
    with pytest.raises(CryptoError) as info:
        private_key_int(private[:-2])
    assert private[:20] not in str(info.value)


@pytest.mark.parametrize("bad", ["00" * 32, f"{curve.N - 1:064X}", f"{curve.N:064X}", "11" * 31, "gg" * 32])
def test_private_key_outside_1_to_n_minus_2_or_malformed_is_refused(bad: str) -> None:
    with pytest.raises(CryptoError):
        private_key_int(bad)


def test_private_key_with_a_leading_00_byte_is_accepted(gbt_keypair) -> None:
    private, _ = gbt_keypair
    assert private_key_int("00" + private) == private_key_int(private)


def test_generated_keypair_is_hex_of_the_right_lengths_and_consistent() -> None:
    private, public = generate_keypair()
    assert len(private) == 64 and len(public) == 128
    assert public_key_from_private(private) == public
    assert generate_keypair()[0] != private


def test_generated_keypair_without_the_c_library_uses_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gmssl_pyx", None)  # import now fails
    private, public = generate_keypair()
    assert public_key_from_private(private) == public


@pytest.mark.parametrize("bad", [None, ["04"], b"\x04" * 65])
def test_key_that_is_not_a_string_is_a_crypto_error_not_a_type_error(bad) -> None:
    with pytest.raises(CryptoError):
        normalize_public_key(bad)
    with pytest.raises(CryptoError):
        public_key_from_private(bad)
