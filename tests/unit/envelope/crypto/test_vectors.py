"""Every standard vector of ../shared/spec/crypto.md, on every backend."""

from __future__ import annotations

from yibao.envelope.crypto import sm3_hex, sm4_ecb_decrypt, sm4_ecb_encrypt
from yibao.envelope.crypto.ciphertext_format import parse_ciphertext, serialize_ciphertext
from yibao.envelope.crypto.gmssl_backend import GmsslBackend
from yibao.envelope.crypto.keys import public_key_from_private
from yibao.envelope.crypto.selftest import self_test

GBT_PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
GBT_PUBLIC = (
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
SIGNATURE = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
CIPHERTEXT_C1C3C2_04 = bytes.fromhex(
    "0404EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A6309"
    "4D99283AFF767E124DF059983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD876621886CA989CA9C7D58087307CA"
    "93092D651EFA"
)


def test_sm3_of_abc_is_the_gbt_32905_a1_digest() -> None:
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_sm3_of_abcd_times_16_is_the_gbt_32905_a2_digest() -> None:
    assert sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_block_is_the_gbt_32907_a1_ciphertext() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    out = sm4_ecb_encrypt(key, key)
    # the first block is the bare cipher of the vector; the second is the PKCS7 padding block
    assert out[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    assert sm4_ecb_decrypt(key, out) == key


def test_gbt_public_key_is_derived_from_its_private_key() -> None:
    assert public_key_from_private(GBT_PRIVATE) == GBT_PUBLIC


def test_sm2_sign_with_the_vector_k_gives_the_gbt_signature() -> None:
    assert GmsslBackend(_fixed_k=K).sign(GBT_PRIVATE, b"message digest") == SIGNATURE


def test_sm2_gbt_signature_verifies_on_every_backend(backend) -> None:
    assert backend.verify(GBT_PUBLIC, b"message digest", SIGNATURE)


def test_sm2_gbt_signature_does_not_verify_another_message(backend) -> None:
    assert not backend.verify(GBT_PUBLIC, b"message digesT", SIGNATURE)


def test_sm2_encrypt_with_the_vector_k_gives_the_gbt_ciphertext() -> None:
    out = GmsslBackend(_fixed_k=K).encrypt(GBT_PUBLIC, b"encryption standard", mode="C1C3C2", prefix04=True)
    assert out == CIPHERTEXT_C1C3C2_04


def test_sm2_encrypt_with_the_vector_k_in_the_other_layouts_rearranges_the_same_parts() -> None:
    parts = parse_ciphertext(CIPHERTEXT_C1C3C2_04, mode="C1C3C2", prefix04=True)
    backend = GmsslBackend(_fixed_k=K)
    for mode in ("C1C3C2", "C1C2C3"):
        for prefix in (True, False):
            expected = serialize_ciphertext(parts, mode=mode, prefix04=prefix)
            assert backend.encrypt(GBT_PUBLIC, b"encryption standard", mode=mode, prefix04=prefix) == expected


def test_sm2_gbt_ciphertext_decrypts_on_every_backend_in_every_layout(backend) -> None:
    parts = parse_ciphertext(CIPHERTEXT_C1C3C2_04, mode="C1C3C2", prefix04=True)
    for mode in ("C1C3C2", "C1C2C3"):
        for prefix in (True, False):
            data = serialize_ciphertext(parts, mode=mode, prefix04=prefix)
            assert backend.decrypt(GBT_PRIVATE, data, mode=mode, prefix04=prefix) == b"encryption standard"
            assert backend.decrypt(GBT_PRIVATE, data, mode=mode) == b"encryption standard"  # prefix detected


def test_sm2_gbt_ciphertext_x1_starting_with_04_is_not_mistaken_for_a_prefix() -> None:
    without_prefix = CIPHERTEXT_C1C3C2_04[1:]
    assert without_prefix[:1] == b"\x04"  # x1 itself starts with 04
    parts = parse_ciphertext(without_prefix, mode="C1C3C2", prefix04=None)
    assert parts.c1 == CIPHERTEXT_C1C3C2_04[1:65]


def test_start_up_self_test_passes_on_every_backend(backend) -> None:
    self_test(backend)
