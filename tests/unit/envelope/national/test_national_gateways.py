"""Gateway signers: known answers computed here independently (hashlib/hmac), and the encrypted round trip."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from pydantic import SecretStr

from yibao.core.errors import ConfigurationError
from yibao.envelope import crypto
from yibao.envelope.errors import UnknownOutcome
from yibao.envelope.national.envelope import Sender, build_header
from yibao.envelope.national.gateways import (
    ApiSigner,
    EncryptedSigner,
    PlainGateway,
    TifSigner,
    make_signer,
    parse_sm4_key,
)
from yibao.envelope.national.jsontext import dumps, loads
from yibao.envelope.settings import PlatformSettings

SENDER = Sender.from_settings(PlatformSettings())
MSGID = "H44010600001202401010800000001"
HEADER = build_header(SENDER, "1101", MSGID)
INPUT = '{"data":{"mdtrt_cert_type":"02","psn_name":"张三","amt":12.30}}'

# GB/T 32918.5 Annex A key pair (../shared/spec/crypto.md)
PRIVATE = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
PUBLIC = ("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
          "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
UID = b"1234567812345678"


def test_plain_gateway_sends_the_envelope_without_headers():
    sealed = PlainGateway().seal("1101", HEADER, INPUT)
    assert sealed.headers == {}
    assert loads(sealed.body)["input"]["data"]["psn_name"] == "张三"


def test_tif_signature_is_sha256_of_timestamp_token_nonce_timestamp():
    signer = TifSigner("paas01", "tok-secret", clock=lambda: 1700000000.9, nonce=lambda: "abc123")
    headers = signer.seal("1101", HEADER, INPUT).headers
    expected = hashlib.sha256(b"1700000000" + b"tok-secret" + b"abc123" + b"1700000000").hexdigest()
    assert headers == {
        "x-tif-paasid": "paas01",
        "x-tif-timestamp": "1700000000",
        "x-tif-nonce": "abc123",
        "x-tif-signature": expected,
    }
    assert headers["x-tif-signature"] == headers["x-tif-signature"].lower()


def test_tif_service_id_is_sent_only_when_configured():
    signer = TifSigner("paas01", "tok", service_id="svc-1", clock=lambda: 1.0, nonce=lambda: "n")
    assert signer.headers()["x-tif-serviceId"] == "svc-1"


def test_tif_nonce_differs_every_call():
    signer = TifSigner("paas01", "tok")
    assert len({signer.headers()["x-tif-nonce"] for _ in range(50)}) == 50


def test_api_signature_is_base64_hmac_sha1_of_the_sorted_parameters():
    signer = ApiSigner("AK-1", "s3cret", version="1.0.0", clock=lambda: 1700000000.123)
    headers = signer.seal("2207", HEADER, INPUT).headers
    text = b"_api_access_key=AK-1&_api_name=hsa-fsi-2207&_api_timestamp=1700000000123&_api_version=1.0.0"
    expected = base64.b64encode(hmac.new(b"s3cret", text, hashlib.sha1).digest()).decode()
    assert headers == {
        "_api_name": "hsa-fsi-2207",
        "_api_version": "1.0.0",
        "_api_timestamp": "1700000000123",
        "_api_access_key": "AK-1",
        "_api_signature": expected,
    }


def test_api_gateway_has_one_path_per_transaction():
    signer = ApiSigner("AK", "S", path_template="/fsi/api/{api_name}")
    assert signer.path_for("2207") == "/fsi/api/hsa-fsi-2207"
    assert signer.path_for("1101") == "/fsi/api/hsa-fsi-1101"


def _encrypted(**kwargs) -> EncryptedSigner:
    return EncryptedSigner(SM4_KEY, PRIVATE, platform_public_key=PUBLIC, **kwargs)


def test_encrypted_input_is_base64_sm4_ecb_pkcs7_of_the_input_json():
    envelope = loads(_encrypted().seal("1101", HEADER, INPUT).body)
    decrypted = crypto.sm4_ecb_decrypt(SM4_KEY, base64.b64decode(envelope["input"]))
    assert decrypted == INPUT.encode("utf-8")


def test_encrypted_cainfo_is_raw_sm2_signature_over_the_plaintext_json():
    envelope = loads(_encrypted().seal("1101", HEADER, INPUT).body)
    signature = base64.b64decode(envelope["cainfo"])
    assert len(signature) == 64  # raw r||s, not DER
    assert envelope["signtype"] == "SM2"
    backend = crypto.get_backend("auto")
    assert backend.verify(PUBLIC, INPUT.encode("utf-8"), signature, uid=UID)


def test_encrypted_cainfo_may_sign_the_ciphertext_instead():
    envelope = loads(_encrypted(sign_over="ciphertext").seal("1101", HEADER, INPUT).body)
    signature = base64.b64decode(envelope["cainfo"])
    assert crypto.get_backend("auto").verify(PUBLIC, envelope["input"].encode("ascii"), signature, uid=UID)


def _platform_reply(output: dict, *, sign: bool = True, tamper: bool = False) -> dict:
    plaintext = dumps(output).encode("utf-8")
    reply = {"infcode": 0, "output": base64.b64encode(crypto.sm4_ecb_encrypt(SM4_KEY, plaintext)).decode()}
    if sign:
        signed = plaintext + (b" " if tamper else b"")
        reply["cainfo"] = base64.b64encode(crypto.get_backend("auto").sign(PRIVATE, signed, uid=UID)).decode()
    return reply


def test_encrypted_output_is_decrypted_and_verified():
    opened = _encrypted().open("1101", MSGID, _platform_reply({"baseinfo": {"psn_no": "P1", "balc": Decimal("1.50")}}))
    assert opened["output"] == {"baseinfo": {"psn_no": "P1", "balc": Decimal("1.50")}}


def test_encrypted_output_with_a_bad_signature_is_an_unknown_outcome():
    with pytest.raises(UnknownOutcome):
        _encrypted().open("2207", MSGID, _platform_reply({"a": 1}, tamper=True))


def test_encrypted_output_that_does_not_decrypt_is_an_unknown_outcome():
    reply = {"infcode": 0, "output": base64.b64encode(b"0123456789abcdef").decode()}
    with pytest.raises(UnknownOutcome):
        _encrypted().open("2207", MSGID, reply)


def test_unsigned_output_is_refused_when_signatures_are_required():
    with pytest.raises(UnknownOutcome):
        _encrypted(require_response_signature=True).open("2207", MSGID, _platform_reply({"a": 1}, sign=False))


def test_plain_object_output_passes_through_the_encrypted_gateway():
    reply = {"infcode": 0, "output": {"a": 1}}
    assert _encrypted().open("2207", MSGID, reply) == reply


def test_sm4_key_is_read_from_hex_or_sixteen_characters():
    assert parse_sm4_key("0123456789abcdeffedcba9876543210") == SM4_KEY
    assert parse_sm4_key("abcdefghijklmnop") == b"abcdefghijklmnop"
    with pytest.raises(ConfigurationError):
        parse_sm4_key("short")


def test_signer_is_chosen_by_configuration():
    assert isinstance(make_signer(PlatformSettings()), PlainGateway)
    assert isinstance(make_signer(PlatformSettings(gateway="tif", tif_paasid="p", tif_token=SecretStr("t"))),
                      TifSigner)
    assert isinstance(make_signer(PlatformSettings(gateway="_api", api_access_key="a", api_secret=SecretStr("s"))),
                      ApiSigner)
    encrypted = PlatformSettings(gateway="encrypted", sm4_key=SecretStr(SM4_KEY.hex()),
                                 sm2_private_key=SecretStr(PRIVATE))
    assert isinstance(make_signer(encrypted), EncryptedSigner)


def test_missing_gateway_credentials_are_a_configuration_error():
    with pytest.raises(ConfigurationError):
        make_signer(PlatformSettings(gateway="tif"))
    with pytest.raises(ConfigurationError):
        make_signer(PlatformSettings(gateway="api"))
    with pytest.raises(ConfigurationError):
        make_signer(PlatformSettings(gateway="encrypted", sm4_key=SecretStr(SM4_KEY.hex())))


def test_sealed_body_is_json_with_the_header_intact():
    envelope = json.loads(_encrypted().seal("1101", HEADER, INPUT).body)
    assert {k: v for k, v in envelope.items() if k not in ("input", "cainfo", "signtype")} == {
        k: v for k, v in HEADER.items() if k not in ("cainfo", "signtype")
    }
