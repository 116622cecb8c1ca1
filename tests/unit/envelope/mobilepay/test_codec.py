"""The mobile-pay envelope in both directions: request, response and callback, and what is refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import get_backend
from yibao.envelope.errors import BusinessRejection, CryptoError, SignatureError
from yibao.envelope.mobilepay import MobilePayCodec

FEE_UPLOAD = {
    "payAuthNo": "AUTH0001",
    "orgCodg": "H44010600001",
    "medOrgOrd": "MO202401020001",
    "medfeeSumamt": Decimal("128.50"),
    "deptName": "内科",
    "feedetailList": [{"detItemFeeSumamt": Decimal("28.50"), "cnt": Decimal("1.0000"), "medListCodg": "X1"}],
}


def _sm4_ecb_decrypt_independently(key: bytes, enc_hex: str) -> bytes:
    dec = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    padded = dec.update(bytes.fromhex(enc_hex)) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def test_request_envelope_has_the_spec_fields(hospital) -> None:
    env = hospital.encode_request(FEE_UPLOAD, timestamp=dt.datetime(2024, 1, 2, 3, 4, 5))
    assert set(env) == {"appId", "encType", "signType", "version", "timestamp", "encData", "signData"}
    assert (env["encType"], env["signType"], env["version"]) == ("SM4", "SM2", "2.0.1")
    assert env["timestamp"] == "20240102030405"
    assert env["encData"] == env["encData"].upper()


def test_enc_data_is_sm4_ecb_of_the_compact_json_under_the_working_key(hospital) -> None:
    env = hospital.encode_request({"b": "乙", "a": Decimal("1.10")})
    plain = _sm4_ecb_decrypt_independently(hospital.working_key(), env["encData"])
    assert plain.decode("utf-8") == '{"a":1.10,"b":"乙"}'


def test_sign_data_is_base64_raw_r_s_over_the_sign_string_with_plain_data(hospital, keys) -> None:
    env = hospital.encode_request(FEE_UPLOAD)
    raw = base64.b64decode(env["signData"])
    assert len(raw) == 64
    plain = {k: v for k, v in env.items() if k not in ("encData", "signData")} | {"data": FEE_UPLOAD}
    message = hospital.sign_string(plain).encode("utf-8")
    assert message.endswith(b"&key=8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F")
    assert get_backend("gmssl").verify(keys["hospital"][1], message, raw)  # independent backend


def test_request_round_trips_from_hospital_to_platform_with_exact_decimals(hospital, platform) -> None:
    assert platform.decode_request(hospital.encode_request(FEE_UPLOAD)) == FEE_UPLOAD


def test_response_round_trips_from_platform_to_hospital(hospital, platform) -> None:
    answer = {"payOrdId": "ORD1", "payToken": "TK1", "ordStas": "3", "fundPay": Decimal("100.00")}
    env = platform.encode_response(answer)
    assert env["code"] == 0 and env["success"] is True and env["message"] == "success"
    assert hospital.decode_response(env) == answer


def test_tampered_signature_is_rejected(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    raw = bytearray(base64.b64decode(env["signData"]))
    raw[5] ^= 1
    env["signData"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SignatureError, match="does not verify"):
        hospital.decode_response(env)


def test_a_changed_signed_field_is_rejected(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    env["timestamp"] = "20000101000000"
    with pytest.raises(SignatureError):
        hospital.decode_response(env)


def test_enc_data_under_another_working_key_is_rejected(hospital, platform, keys) -> None:
    other = MobilePayCodec.for_platform("OTHERAPPID000000", "other", keys["platform"][0], keys["hospital"][1])
    env = other.encode_response({"payOrdId": "ORD1"})
    env["appId"] = hospital.app_id
    with pytest.raises((CryptoError, SignatureError)):
        hospital.decode_response(env)


def test_enc_data_that_is_not_hex_is_a_crypto_error(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    env["encData"] = "not hex"
    with pytest.raises(CryptoError, match="hexadecimal"):
        hospital.decode_response(env)


def test_signature_by_the_wrong_key_is_rejected(hospital, keys) -> None:
    impostor = MobilePayCodec.for_platform(hospital.app_id, "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F",
                                           keys["hospital"][0], keys["hospital"][1])
    with pytest.raises(SignatureError):
        hospital.decode_response(impostor.encode_response({"payOrdId": "ORD1"}))


def test_successful_response_without_a_signature_is_rejected(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    del env["signData"]
    with pytest.raises(SignatureError, match="missing"):
        hospital.decode_response(env)


def test_failure_response_is_a_business_rejection_with_code_and_message(hospital, platform) -> None:
    env = platform.encode_response(None, code=1001, message="订单不存在")
    assert env["success"] is False and "encData" not in env
    with pytest.raises(BusinessRejection) as info:
        hospital.decode_response(env, infno="6301")
    assert (info.value.infno, info.value.infcode, info.value.err_msg) == ("6301", "1001", "订单不存在")


def test_success_false_with_code_0_is_a_business_rejection(hospital, platform) -> None:
    with pytest.raises(BusinessRejection):
        hospital.decode_response(platform.encode_response({"x": "1"}, code=0, success=False))


def test_unsigned_failure_from_a_gateway_is_still_a_business_rejection(hospital) -> None:
    with pytest.raises(BusinessRejection):
        hospital.decode_response({"code": -1, "message": "签名错误", "success": False})


def test_response_for_another_app_id_is_rejected(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    env["appId"] = "SOMEONEELSE00000"
    with pytest.raises(SignatureError, match="appId"):
        hospital.decode_response(env)


def test_extra_response_fields_are_signed_and_verified(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"}, extra_fields={"type": "ok"})
    assert hospital.decode_response(env) == {"payOrdId": "ORD1"}
    env["type"] = "changed"
    with pytest.raises(SignatureError):
        hospital.decode_response(env)


def test_extra_field_is_not_signed_so_it_may_differ(hospital, platform) -> None:
    env = platform.encode_response({"payOrdId": "ORD1"})
    env["extra"] = {"anything": "goes"}
    assert hospital.decode_response(env) == {"payOrdId": "ORD1"}


CALLBACK = {
    "ordStas": "4", "callType": "SETL", "payOrdId": "ORD1", "medOrgOrd": "MO1", "traceTime": "20240102030405",
    "feeSumamt": Decimal("128.50"), "ownpayAmt": Decimal("28.50"), "psnAcctPay": Decimal("0.00"),
    "fundPay": Decimal("100.00"), "orgName": "某某医院", "setlType": "1", "extData": {"k": "v"},
}


def test_settlement_callback_from_the_platform_verifies_and_yields_its_data(hospital, platform) -> None:
    assert hospital.verify_callback(platform.encode_callback(CALLBACK)) == CALLBACK


def test_callback_with_changed_amount_is_rejected(hospital, platform) -> None:
    body = platform.encode_callback(CALLBACK)
    forged = platform.encode_callback({**CALLBACK, "fundPay": Decimal("999.00")})
    body["encData"] = forged["encData"]
    with pytest.raises(SignatureError):
        hospital.verify_callback(body)


def test_unsigned_callback_is_rejected(hospital, platform) -> None:
    body = platform.encode_callback(CALLBACK)
    body["signData"] = ""
    with pytest.raises(SignatureError):
        hospital.verify_callback(body)


def test_request_from_the_hospital_is_verified_by_the_platform_side(hospital, platform) -> None:
    env = hospital.encode_request(FEE_UPLOAD)
    env["version"] = "2.0.2"
    with pytest.raises(SignatureError):
        platform.decode_request(env)


def test_counterpart_that_stringifies_numbers_interoperates_when_configured(keys) -> None:
    args = ("1G6AB2KF30000101A8C0000017B8E5D9", "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F")
    hosp = MobilePayCodec(*args, keys["hospital"][0], keys["platform"][1], nested_numbers="string")
    plat = MobilePayCodec.for_platform(*args, keys["platform"][0], keys["hospital"][1], nested_numbers="string")
    plain_numbers = MobilePayCodec.for_platform(*args, keys["platform"][0], keys["hospital"][1])
    env = hosp.encode_request({"fee": Decimal("1.50")})
    assert json.loads(_sm4_ecb_decrypt_independently(hosp.working_key(), env["encData"])) == {"fee": 1.5}
    assert plat.decode_request(env) == {"fee": Decimal("1.50")}
    with pytest.raises(SignatureError):
        plain_numbers.decode_request(env)


def test_epoch_ms_timestamps_when_configured(keys) -> None:
    codec = MobilePayCodec("1G6AB2KF30000101A8C0000017B8E5D9", "x", keys["hospital"][0], keys["platform"][1],
                           timestamp_format="epoch_ms")
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=clock.SHANGHAI)
    assert codec.encode_request({}, timestamp=moment)["timestamp"] == str(int(moment.timestamp() * 1000))


def test_compact_timestamps_are_shanghai_time(hospital) -> None:
    utc = dt.datetime(2024, 1, 1, 20, 0, 0, tzinfo=dt.timezone.utc)
    assert hospital.timestamp(utc) == "20240102040000"


def test_unknown_timestamp_format_is_a_configuration_error(keys) -> None:
    with pytest.raises(ConfigurationError):
        MobilePayCodec("1G6AB2KF30000101A8C0000017B8E5D9", "x", keys["hospital"][0], keys["platform"][1],
                       timestamp_format="iso")  # type: ignore[arg-type]


def test_secrets_never_appear_in_the_codec_repr(hospital, keys) -> None:
    text = repr(hospital) + str(vars(hospital))
    assert "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F" not in text
    assert keys["hospital"][0] not in text


def test_both_backends_produce_envelopes_the_other_accepts(keys) -> None:
    pytest.importorskip("gmssl_pyx")
    args = ("1G6AB2KF30000101A8C0000017B8E5D9", "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F")
    fast = MobilePayCodec(*args, keys["hospital"][0], keys["platform"][1], backend="gmssl-pyx")
    pure = MobilePayCodec.for_platform(*args, keys["platform"][0], keys["hospital"][1], backend="gmssl")
    assert pure.decode_request(fast.encode_request(FEE_UPLOAD)) == FEE_UPLOAD
    assert fast.decode_response(pure.encode_response({"ok": "1"})) == {"ok": "1"}


def test_unusable_private_key_fails_at_construction_without_echoing_it(keys) -> None:
    with pytest.raises(CryptoError) as info:
        MobilePayCodec("1G6AB2KF30000101A8C0000017B8E5D9", "x", "00" * 32, keys["platform"][1])
    assert "00" * 32 not in str(info.value)
