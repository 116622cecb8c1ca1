"""SM2 on every backend and across backends: both ciphertext modes, with and without 04, tampering refused."""

from __future__ import annotations

import random

import pytest

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import curve, generate_keypair
from yibao.envelope.crypto.gmssl_backend import GmsslBackend
from yibao.envelope.crypto.gmsslpyx_backend import MAX_NATIVE_PLAINTEXT
from yibao.envelope.errors import CryptoError

LAYOUTS = [(m, p) for m in ("C1C3C2", "C1C2C3") for p in (True, False)]
LAYOUT_IDS = [f"{m}-{'04' if p else 'no04'}" for m, p in LAYOUTS]
SM4_KEY = bytes(range(16))


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_keypair()


def test_signature_is_64_raw_bytes_that_verify(backend, keypair) -> None:
    private, public = keypair
    sig = backend.sign(private, b"appId=X&key=S")
    assert len(sig) == 64
    assert backend.verify(public, b"appId=X&key=S", sig)


def test_two_signatures_of_one_message_differ_because_nonces_are_fresh(backend, keypair) -> None:
    private, _ = keypair
    assert backend.sign(private, b"same") != backend.sign(private, b"same")


def test_signature_made_on_one_backend_verifies_on_the_other(backend_pair, keypair) -> None:
    producer, consumer = backend_pair
    private, public = keypair
    sig = producer.sign(private, "结算结果通知".encode())
    assert consumer.verify(public, "结算结果通知".encode(), sig)
    assert not consumer.verify(public, "结算结果通知!".encode(), sig)


def test_signature_with_another_user_id_does_not_verify_with_the_default(backend, keypair) -> None:
    private, public = keypair
    sig = backend.sign(private, b"m", uid=b"ALICE123@YAHOO.COM")
    assert backend.verify(public, b"m", sig, uid=b"ALICE123@YAHOO.COM")
    assert not backend.verify(public, b"m", sig)


def test_tampered_signature_is_false_never_an_exception(backend, keypair) -> None:
    private, public = keypair
    sig = bytearray(backend.sign(private, b"m"))
    sig[10] ^= 0x01
    assert backend.verify(public, b"m", bytes(sig)) is False


@pytest.mark.parametrize(
    "sig",
    [b"", bytes(63), bytes(64), bytes(65), curve.N.to_bytes(32, "big") + (1).to_bytes(32, "big"),
     (1).to_bytes(32, "big") + curve.N.to_bytes(32, "big"), b"\xff" * 64, "not bytes"],
    ids=["empty", "63", "zeros", "65", "r=n", "s=n", "all-ff", "str"],
)
def test_malformed_or_out_of_range_signature_is_false(backend, keypair, sig) -> None:
    _, public = keypair
    assert backend.verify(public, b"m", sig) is False


@pytest.mark.parametrize("bad_key", ["", "xyz", "00" * 64, "AB" * 64])
def test_verify_with_a_bad_public_key_is_false(backend, keypair, bad_key: str) -> None:
    private, _ = keypair
    assert backend.verify(bad_key, b"m", backend.sign(private, b"m")) is False


def test_signature_from_another_key_is_false(backend, keypair) -> None:
    _, public = keypair
    other_private, _ = generate_keypair()
    assert backend.verify(public, b"m", backend.sign(other_private, b"m")) is False


def test_keys_whose_x_starts_with_04_sign_verify_and_decrypt_on_every_backend(backend, trap_keypair) -> None:
    private, public = trap_keypair
    for key_form in (public, "04" + public, public.lower()):
        assert backend.verify(key_form, b"m", backend.sign(private, b"m"))
        assert backend.decrypt(private, backend.encrypt(key_form, SM4_KEY)) == SM4_KEY


def test_keys_whose_x_starts_with_04_cross_backends(backend_pair, trap_keypair) -> None:
    producer, consumer = backend_pair
    private, public = trap_keypair
    assert consumer.verify(public, b"m", producer.sign(private, b"m"))
    assert consumer.decrypt(private, producer.encrypt(public, SM4_KEY)) == SM4_KEY


@pytest.mark.parametrize(("mode", "prefix"), LAYOUTS, ids=LAYOUT_IDS)
def test_ciphertext_layout_is_c1_then_c3_c2_in_mode_order(backend, keypair, mode: str, prefix: bool) -> None:
    private, public = keypair
    out = backend.encrypt(public, SM4_KEY, mode=mode, prefix04=prefix)
    assert len(out) == (1 if prefix else 0) + 64 + 32 + len(SM4_KEY)
    assert (out[0] == 4) if prefix else True
    assert backend.decrypt(private, out, mode=mode, prefix04=prefix) == SM4_KEY


@pytest.mark.parametrize(("mode", "prefix"), LAYOUTS, ids=LAYOUT_IDS)
def test_ciphertext_made_on_one_backend_decrypts_on_the_other(backend_pair, keypair, mode: str, prefix: bool) -> None:
    producer, consumer = backend_pair
    private, public = keypair
    out = producer.encrypt(public, b"wrapped sm4 key!", mode=mode, prefix04=prefix)
    assert consumer.decrypt(private, out, mode=mode, prefix04=prefix) == b"wrapped sm4 key!"
    assert consumer.decrypt(private, out, mode=mode) == b"wrapped sm4 key!"


@pytest.mark.parametrize("where", ["c1", "c3", "c2-first", "c2-last"])
def test_tampered_ciphertext_raises_crypto_error(backend, keypair, where: str) -> None:
    private, public = keypair
    out = bytearray(backend.encrypt(public, SM4_KEY, mode="C1C3C2", prefix04=True))
    index = {"c1": 40, "c3": 1 + 64 + 5, "c2-first": 1 + 64 + 32, "c2-last": len(out) - 1}[where]
    out[index] ^= 0x01
    with pytest.raises(CryptoError):
        backend.decrypt(private, bytes(out), mode="C1C3C2", prefix04=True)


def test_decrypt_with_the_wrong_private_key_raises(backend, keypair) -> None:
    _, public = keypair
    other_private, _ = generate_keypair()
    with pytest.raises(CryptoError, match="C3"):
        backend.decrypt(other_private, backend.encrypt(public, SM4_KEY))


def test_decrypt_in_the_wrong_mode_raises(backend, keypair) -> None:
    private, public = keypair
    out = backend.encrypt(public, SM4_KEY, mode="C1C2C3")
    with pytest.raises(CryptoError):
        backend.decrypt(private, out, mode="C1C3C2")


def test_decrypt_with_a_prefix_expected_but_absent_raises(backend, keypair) -> None:
    private, public = keypair
    out = backend.encrypt(public, SM4_KEY, prefix04=False)
    # no 04 byte (or, 1 time in 256, x1 starting with 04 and then no curve point one byte later)
    with pytest.raises(CryptoError):
        backend.decrypt(private, out, prefix04=True)


@pytest.mark.parametrize("size", [1, MAX_NATIVE_PLAINTEXT, MAX_NATIVE_PLAINTEXT + 1, 1000])
def test_plaintext_of_any_length_round_trips_across_backends(backend_pair, keypair, size: int) -> None:
    producer, consumer = backend_pair
    private, public = keypair
    text = bytes(i % 251 for i in range(size))
    assert consumer.decrypt(private, producer.encrypt(public, text)) == text


def test_empty_plaintext_is_refused(backend, keypair) -> None:
    _, public = keypair
    with pytest.raises(CryptoError, match="empty"):
        backend.encrypt(public, b"")


def test_unknown_ciphertext_mode_is_a_configuration_error(backend, keypair) -> None:
    _, public = keypair
    with pytest.raises(ConfigurationError):
        backend.encrypt(public, SM4_KEY, mode="C2C1C3")


def test_pure_gmssl_never_draws_from_random(monkeypatch: pytest.MonkeyPatch, keypair) -> None:
    """gmssl 3.2.2 takes k from `random`; ours must come from `secrets`, so `random` may be broken here."""
    import gmssl.func

    def refuse(*_a, **_k):
        raise AssertionError("random used for an SM2 nonce")

    for name in ("choice", "randint", "random", "getrandbits", "randrange", "sample"):
        monkeypatch.setattr(random, name, refuse)
    monkeypatch.setattr(gmssl.func, "random_hex", refuse)
    private, public = keypair
    backend = GmsslBackend()
    assert backend.verify(public, b"m", backend.sign(private, b"m"))
    assert backend.decrypt(private, backend.encrypt(public, SM4_KEY)) == SM4_KEY


def test_fixed_nonce_must_lie_in_1_to_n_minus_1() -> None:
    with pytest.raises(CryptoError):
        GmsslBackend(_fixed_k=0)
    with pytest.raises(CryptoError):
        GmsslBackend(_fixed_k=curve.N)
