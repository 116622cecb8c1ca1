"""Personal data sealed at rest (yibao.core.atrest): SM4-GCM under rotatable keys, or an explicit plain mode."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from yibao.core.atrest import PLAIN, DataCipher, SealedDataError
from yibao.core.errors import ConfigurationError
from yibao.core.settings import CommonSettings

K1 = "k1:00112233445566778899aabbccddeeff"
K2 = "k2:ffeeddccbbaa99887766554433221100"
TEXT = '{"psn_name": "张三", "certno": "110105194912310021"}'


def test_a_sealed_value_names_its_key_and_hides_the_text() -> None:
    sealed = DataCipher.from_secret(K1).seal(TEXT)
    assert sealed.startswith("yb1.k1.")
    assert "张三" not in sealed and "110105" not in sealed


def test_a_sealed_value_opens_to_the_text() -> None:
    cipher = DataCipher.from_secret(K1)
    assert cipher.open(cipher.seal(TEXT)) == TEXT


def test_the_same_text_seals_differently_each_time() -> None:
    cipher = DataCipher.from_secret(K1)
    assert cipher.seal(TEXT) != cipher.seal(TEXT)


def test_it_is_sm4_gcm_with_the_key_id_authenticated() -> None:
    """Decrypting by hand with SM4-GCM, the nonce first and the tag last, the AAD 'yb1.<key id>'."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    sealed = DataCipher.from_secret(K1).seal(TEXT)
    token = sealed.split(".", 2)[2]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    decryptor = Cipher(algorithms.SM4(bytes.fromhex(K1.split(":")[1])),
                       modes.GCM(raw[:12], raw[-16:])).decryptor()
    decryptor.authenticate_additional_data(b"yb1.k1")
    assert (decryptor.update(raw[12:-16]) + decryptor.finalize()).decode() == TEXT


def test_an_altered_value_is_refused_never_garbage() -> None:
    cipher = DataCipher.from_secret(K1)
    sealed = cipher.seal(TEXT)
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(SealedDataError, match="altered"):
        cipher.open(flipped)


def test_a_value_moved_under_another_key_id_is_refused() -> None:
    both = DataCipher.from_secret(f"{K1},k9:00112233445566778899aabbccddeeff")  # same key bytes, other id
    sealed = both.seal(TEXT)
    with pytest.raises(SealedDataError):
        both.open(sealed.replace("yb1.k1.", "yb1.k9.", 1))


def test_a_value_sealed_with_a_key_not_configured_is_refused_naming_the_key_id() -> None:
    sealed = DataCipher.from_secret(K2).seal(TEXT)
    with pytest.raises(SealedDataError, match="'k2'"):
        DataCipher.from_secret(K1).open(sealed)


def test_rotation_the_first_key_seals_and_the_old_ones_still_open() -> None:
    old = DataCipher.from_secret(K1).seal(TEXT)
    rotated = DataCipher.from_secret(f"{K2},{K1}")
    assert rotated.current_key_id == "k2"
    assert rotated.open(old) == TEXT
    assert rotated.needs_reseal(old)
    fresh = rotated.reseal(old)
    assert fresh.startswith("yb1.k2.") and not rotated.needs_reseal(fresh)
    assert DataCipher.from_secret(K2).open(fresh) == TEXT  # the old key can go


def test_plain_mode_stores_text_as_it_is_and_says_so() -> None:
    assert PLAIN.seal(TEXT) == TEXT and PLAIN.open(TEXT) == TEXT
    assert not PLAIN.enabled
    assert PLAIN.describe().startswith("plain: no data key configured")
    assert DataCipher.from_secret(None) is PLAIN and DataCipher.from_secret("  ") is PLAIN


def test_plain_rows_from_before_encryption_open_and_are_resealed() -> None:
    cipher = DataCipher.from_secret(K1)
    assert cipher.open(TEXT) == TEXT
    assert cipher.needs_reseal(TEXT) and cipher.reseal(TEXT).startswith("yb1.k1.")


@pytest.mark.parametrize("secret, problem", [
    ("k1", "entry 1"), ("k1:zz112233445566778899aabbccddeeff", "not hexadecimal"), ("k1:0011", "16 bytes"),
    (f"{K1},{K1}", "twice"), ("bad id!:00112233445566778899aabbccddeeff", "key id"),
])
def test_a_malformed_key_secret_is_a_configuration_error_naming_the_problem(secret: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        DataCipher.from_secret(secret)


def test_describe_and_repr_name_key_ids_never_keys() -> None:
    cipher = DataCipher.from_secret(f"{K2},{K1}")
    for text in (cipher.describe(), repr(cipher)):
        assert "k2" in text and "k1" in text and "ffeedd" not in text and "001122" not in text


def test_the_keys_come_from_a_secret_file_like_every_secret(clean_env: Path) -> None:
    (clean_env / "yibao_data_keys").write_text(K1 + "\n")
    cipher = DataCipher.from_settings(CommonSettings())
    assert cipher.current_key_id == "k1"
    assert "001122" not in repr(CommonSettings())


def test_every_service_reads_the_one_data_keys_setting(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from yibao.ingest.settings import IngestSettings

    monkeypatch.setenv("YIBAO_DATA_KEYS", K2)
    assert DataCipher.from_settings(IngestSettings()).current_key_id == "k2"
