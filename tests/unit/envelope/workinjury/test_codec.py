"""Work-injury envelope: wrap/unwrap in every layout, and every kind of tampering refused."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

import pytest

from yibao.core import clock
from yibao.envelope.crypto import get_backend, sm4_ecb_decrypt
from yibao.envelope.crypto.canonical import loads_exact
from yibao.envelope.errors import CryptoError, SignatureError
from yibao.envelope.workinjury import WorkInjuryCodec, WorkInjuryFieldNames, WorkInjurySettings

ADMISSION = {
    "psnNo": "P0001", "iptNo": "ZY2024001", "admTime": "2024-01-02 03:04:05", "deptName": "骨科",
    "feedetail": [{"itemCode": "X1", "price": Decimal("12.5000"), "cnt": Decimal("2"), "amt": Decimal("25.00")}],
}
LAYOUTS = [(m, p) for m in ("C1C3C2", "C1C2C3") for p in (True, False)]
LAYOUT_IDS = [f"{m}-{'04' if p else 'no04'}" for m, p in LAYOUTS]


def _pair(keys, **settings):
    s = WorkInjurySettings(**settings)
    sender = WorkInjuryCodec(keys["hospital"][0], keys["platform"][1], s)
    receiver = WorkInjuryCodec(keys["platform"][0], keys["hospital"][1], s)
    return sender, receiver


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(("mode", "prefix"), LAYOUTS, ids=LAYOUT_IDS)
def test_envelope_round_trips_in_every_sm2_layout(keys, mode: str, prefix: bool) -> None:
    sender, receiver = _pair(keys, mode=mode, prefix04=prefix)
    env = sender.seal("GYU101", "H440106000012024010203040500001", ADMISSION)
    message = receiver.open(env)
    assert message.data == ADMISSION
    assert (message.infno, message.trans_no) == ("GYU101", "H440106000012024010203040500001")


@pytest.mark.parametrize(("mode", "prefix"), LAYOUTS, ids=LAYOUT_IDS)
def test_wrapped_key_has_the_configured_layout_and_unwraps_independently(keys, mode: str, prefix: bool) -> None:
    sender, _ = _pair(keys, mode=mode, prefix04=prefix)
    env = sender.seal("GYU101", "T1", ADMISSION)
    wrapped = base64.b64decode(env["encryptKey"])
    assert len(wrapped) == (1 if prefix else 0) + 64 + 32 + 16
    # the pure-Python backend (independent of the default C one) recovers the key and the data
    key = get_backend("gmssl").decrypt(keys["platform"][0], wrapped, mode=mode, prefix04=prefix)
    assert loads_exact(sm4_ecb_decrypt(key, base64.b64decode(env["encryptData"]))) == ADMISSION


def test_envelope_has_the_default_field_names(keys) -> None:
    sender, _ = _pair(keys)
    env = sender.seal("GYU101", "T1", ADMISSION, send_time=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=clock.SHANGHAI))
    assert set(env) == {"encryptKey", "encryptData", "sign", "signType", "transNo", "sendTime", "transCode"}
    assert env["signType"] == "SM2" and env["sendTime"] == "20240102030405"
    assert len(base64.b64decode(env["sign"])) == 64


def test_field_names_and_encodings_follow_the_settings(keys) -> None:
    names = WorkInjuryFieldNames(encrypt_key="secretKey", encrypt_data="bizData", sign="signature",
                                 sign_type="signMethod", trans_no="serialNo", send_time="reqTime",
                                 trans_code="infno")
    sender, receiver = _pair(keys, fields=names, binary_encoding="hex", send_time_format="datetime")
    env = sender.seal("GYD001", "T1", {"since": "2024-01-01"}, extra_fields={"orgCode": "H44010600001"})
    assert set(env) == {"secretKey", "bizData", "signature", "signMethod", "serialNo", "reqTime", "infno", "orgCode"}
    assert bytes.fromhex(env["signature"]) and len(env["reqTime"]) == 19
    message = receiver.open(env)
    assert message.data == {"since": "2024-01-01"} and message.other_fields == {"orgCode": "H44010600001"}


def test_field_names_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        WorkInjuryFieldNames(sign="transNo")


def test_each_message_gets_a_fresh_data_key(keys) -> None:
    sender, _ = _pair(keys)
    a = sender.seal("GYU101", "T1", ADMISSION)
    b = sender.seal("GYU101", "T1", ADMISSION)
    assert a["encryptData"] != b["encryptData"] and a["encryptKey"] != b["encryptKey"]


def test_prefix_is_detected_when_reading_a_counterpart_that_writes_the_other_way(keys) -> None:
    sender, _ = _pair(keys, prefix04=False)
    _, receiver = _pair(keys, prefix04=True)
    assert receiver.open(sender.seal("GYU101", "T1", ADMISSION)).data == ADMISSION


def test_envelope_for_another_receiver_cannot_be_opened_with_our_key(keys) -> None:
    sender = WorkInjuryCodec(keys["hospital"][0], keys["stranger"][1])  # wrapped for someone else
    receiver = WorkInjuryCodec(keys["platform"][0], keys["hospital"][1])
    with pytest.raises(CryptoError):
        receiver.open(sender.seal("GYU101", "T1", ADMISSION))


@pytest.mark.parametrize("field", ["encryptData", "encryptKey", "transNo", "sendTime", "transCode"])
def test_tampered_field_is_rejected_by_the_signature(keys, field: str) -> None:
    sender, receiver = _pair(keys)
    env = sender.seal("GYU101", "T1", ADMISSION)
    env[field] = _flip(env[field]) if field.startswith("encrypt") else env[field] + "0"
    with pytest.raises(SignatureError):
        receiver.open(env)


def test_tampered_signature_is_rejected(keys) -> None:
    sender, receiver = _pair(keys)
    env = sender.seal("GYU101", "T1", ADMISSION)
    env["sign"] = _flip(env["sign"])
    with pytest.raises(SignatureError, match="does not verify"):
        receiver.open(env)


def test_missing_or_garbled_signature_is_rejected(keys) -> None:
    sender, receiver = _pair(keys)
    env = sender.seal("GYU101", "T1", ADMISSION)
    for bad in ("", "@@not base64@@", None):
        with pytest.raises(SignatureError):
            receiver.open({**env, "sign": bad})


def test_signature_by_someone_else_is_rejected(keys) -> None:
    impostor = WorkInjuryCodec(keys["stranger"][0], keys["platform"][1])
    _, receiver = _pair(keys)
    with pytest.raises(SignatureError):
        receiver.open(impostor.seal("GYU101", "T1", ADMISSION))


@pytest.mark.parametrize(("mode", "prefix"), LAYOUTS, ids=LAYOUT_IDS)
def test_signing_the_plaintext_round_trips_and_rejects_tampering(keys, mode: str, prefix: bool) -> None:
    sender, receiver = _pair(keys, sign_over="plaintext", mode=mode, prefix04=prefix)
    env = sender.seal("GYU102", "T2", ADMISSION)
    assert receiver.open(env).data == ADMISSION
    with pytest.raises(SignatureError):
        receiver.open({**env, "sign": _flip(env["sign"])})
    other = sender.seal("GYU102", "T2", {**ADMISSION, "psnNo": "P0002"})
    with pytest.raises(SignatureError):
        receiver.open({**env, "encryptKey": other["encryptKey"], "encryptData": other["encryptData"]})


def test_wrong_mode_setting_on_the_receiver_fails_loudly(keys) -> None:
    sender, _ = _pair(keys, mode="C1C2C3")
    _, receiver = _pair(keys, mode="C1C3C2")
    with pytest.raises(CryptoError):
        receiver.open(sender.seal("GYU101", "T1", ADMISSION))


def test_codec_repr_holds_no_key(keys) -> None:
    codec = WorkInjuryCodec(keys["hospital"][0], keys["platform"][1])
    assert keys["hospital"][0] not in repr(codec) + str(vars(codec))


def test_unusable_keys_fail_at_construction(keys) -> None:
    with pytest.raises(CryptoError):
        WorkInjuryCodec("not a key", keys["platform"][1])
    with pytest.raises(CryptoError):
        WorkInjuryCodec(keys["hospital"][0], "04" + "00" * 64)
