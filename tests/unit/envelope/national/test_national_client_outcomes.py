"""Outcome classification and retry rules of the client, against a stand-in HTTP peer (httpx.MockTransport)."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest
from pydantic import SecretStr

from yibao.envelope import crypto
from yibao.envelope.errors import (
    BusinessRejection,
    EnvelopeValidationError,
    GatewayAuthError,
    TransportError,
    UnknownOutcome,
)
from yibao.envelope.national.jsontext import dumps
from yibao.envelope.national.outcomes import GatewayRefusal
from yibao.envelope.settings import PlatformSettings

from unit.envelope.national.national_standins import fail, ok, raw, reject, reply_json

MSGID = re.compile(r"H44010600001\d{14}\d{4}")
SETTLE = {"data": {"psn_no": "P0001", "mdtrt_id": "M1", "medfee_sumamt": "100.00"}}
QUERY = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440106199001011234"}}


async def test_success_returns_the_response_with_output(make_client, platform):
    platform.on("1101", ok({"baseinfo": {"psn_no": "P0001"}}))
    response = await make_client().call("1101", QUERY)
    assert response.ok and response.output == {"baseinfo": {"psn_no": "P0001"}}
    assert MSGID.fullmatch(response.msgid)
    sent = platform.calls("1101")[0]
    assert sent.path == "/fsi/api/rsfComIfsService/callService"
    assert sent.headers["content-type"].startswith("application/json")
    assert sent.envelope["msgid"] == response.msgid


async def test_a_caller_msgid_is_sent_as_it_is(make_client, platform):
    client = make_client()
    msgid = await client.allocate_msgid()
    response = await client.call("1101", QUERY, msgid=msgid)
    assert response.msgid == msgid == platform.calls("1101")[0].envelope["msgid"]


async def test_read_timeout_after_sending_a_settlement_is_unknown_and_never_resent(make_client, platform):
    platform.on("2207", fail(httpx.ReadTimeout))
    client = make_client()
    msgid = await client.allocate_msgid()
    with pytest.raises(UnknownOutcome) as caught:
        await client.call("2207", SETTLE, msgid=msgid, insuplc_admdvs="440100")
    assert caught.value.msgid == msgid
    assert len(platform.calls("2207")) == 1


async def test_connection_reset_after_sending_is_unknown(make_client, platform):
    platform.on("2207", fail(httpx.RemoteProtocolError))
    with pytest.raises(UnknownOutcome):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 1


async def test_write_failure_is_unknown_for_a_settlement(make_client, platform):
    platform.on("2207", fail(httpx.WriteError))
    with pytest.raises(UnknownOutcome):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 1


async def test_connect_error_is_a_transport_error_retried_with_the_same_msgid(make_client, platform):
    platform.on("2207", fail(httpx.ConnectError), fail(httpx.ConnectTimeout), ok({"setlinfo": {"setl_id": "S1"}}))
    client = make_client()
    msgid = await client.allocate_msgid()
    response = await client.call("2207", SETTLE, msgid=msgid, insuplc_admdvs="440100")
    assert response.output == {"setlinfo": {"setl_id": "S1"}}
    assert [seen.envelope["msgid"] for seen in platform.calls("2207")] == [msgid] * 3


async def test_transport_error_is_raised_when_attempts_run_out(make_client, platform):
    platform.on("2207", fail(httpx.ConnectError))
    with pytest.raises(TransportError):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 3


async def test_pool_timeout_is_a_transport_error(make_client, platform):
    platform.on("1101", fail(httpx.PoolTimeout))
    with pytest.raises(TransportError):
        await make_client(PlatformSettings(retry_attempts=1, retry_backoff_s=0)).call("1101", QUERY)


async def test_infcode_minus_one_is_a_business_rejection_not_retried(make_client, platform):
    platform.on("2207", reject("结算失败：余额不足"))
    with pytest.raises(BusinessRejection) as caught:
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert caught.value.err_msg == "结算失败：余额不足"
    assert len(platform.calls("2207")) == 1


async def test_infcode_as_text_is_read_like_a_number(make_client, platform):
    platform.on("1101", ok({"x": 1}, infcode="0"))
    assert (await make_client().call("1101", QUERY)).ok
    platform.on("2201", reject("挂号失败", infcode="-1"))
    with pytest.raises(BusinessRejection):
        await make_client().call("2201", {"data": {"psn_no": "P1"}}, insuplc_admdvs="440100")


async def test_unreadable_reply_is_unknown(make_client, platform):
    platform.on("2207", raw(200, b"<html>gateway</html>", "text/html"))
    with pytest.raises(UnknownOutcome):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 1


async def test_reply_without_infcode_is_unknown(make_client, platform):
    platform.on("2207", lambda seen: reply_json({"output": {"setlinfo": {}}}))
    with pytest.raises(UnknownOutcome):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_statuses_proving_non_processing_are_transport_errors_and_retried(make_client, platform, status):
    platform.on("2207", raw(status), ok({"setlinfo": {"setl_id": "S1"}}))
    response = await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert response.ok and len(platform.calls("2207")) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_other_5xx_after_acceptance_are_unknown_and_a_settlement_is_not_resent(make_client, platform, status):
    platform.on("2207", raw(status))
    with pytest.raises(UnknownOutcome):
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 1


async def test_5xx_carrying_a_platform_rejection_is_a_business_rejection(make_client, platform):
    platform.on("2207", reject("系统异常，交易未处理", status=500))
    with pytest.raises(BusinessRejection) as caught:
        await make_client().call("2207", SETTLE, insuplc_admdvs="440100")
    assert caught.value.err_msg == "系统异常，交易未处理"


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_refusal_is_a_gateway_auth_error_not_retried(make_client, platform, status):
    platform.on("1101", raw(status, b'{"code":"401","message":"signature error"}', "application/json"))
    with pytest.raises(GatewayAuthError):
        await make_client().call("1101", QUERY)
    assert len(platform.calls("1101")) == 1


async def test_other_4xx_is_a_gateway_refusal_not_retried(make_client, platform):
    platform.on("1101", raw(404, b"not found"))
    with pytest.raises(GatewayRefusal) as caught:
        await make_client().call("1101", QUERY)
    assert isinstance(caught.value, TransportError)
    assert len(platform.calls("1101")) == 1


async def test_query_is_retried_after_an_unknown_outcome_with_a_new_msgid(make_client, platform):
    platform.on("1101", fail(httpx.ReadTimeout), ok({"baseinfo": {}}))
    response = await make_client().call("1101", QUERY)
    first, second = (seen.envelope["msgid"] for seen in platform.calls("1101"))
    assert first != second and response.msgid == second


async def test_transaction_unknown_to_the_catalog_is_sent_raw_and_never_retried_after_unknown(make_client, platform):
    platform.on("4101", fail(httpx.ReadTimeout))
    with pytest.raises(UnknownOutcome):
        await make_client().call("4101", {"setlinfo": {"mdtrt_id": "M1"}})
    assert len(platform.calls("4101")) == 1


async def test_invalid_input_is_refused_and_nothing_is_sent(make_client, platform):
    with pytest.raises(EnvelopeValidationError) as caught:
        await make_client().call("2201", {"data": {"psn_no": ""}})
    assert (caught.value.infno, caught.value.path, caught.value.rule) == ("2201", "data.psn_no", "required")
    assert platform.seen == []


async def test_psn_no_without_insuplc_admdvs_is_refused_before_sending(make_client, platform):
    with pytest.raises(EnvelopeValidationError) as caught:
        await make_client().call("2207", SETTLE)
    assert caught.value.path == "insuplc_admdvs"
    assert platform.calls("2207") == []


async def test_insuplc_admdvs_is_put_in_the_envelope(make_client, platform):
    await make_client().call("2207", SETTLE, insuplc_admdvs="440106")
    assert platform.calls("2207")[0].envelope["insuplc_admdvs"] == "440106"


async def test_reverse_sends_2601_with_the_original_msgid_and_infno(make_client, platform):
    client = make_client()
    await client.reverse("P0001", "H44010600001202401010800000001", "2207", insuplc_admdvs="440100")
    sent = platform.calls("2601")[0].envelope
    assert sent["input"] == {"data": {"psn_no": "P0001", "omsgid": "H44010600001202401010800000001",
                                      "oinfno": "2207"}}


async def test_settlements_get_the_settlement_read_timeout(sqlite_engine, platform, make_client):
    timeouts: dict[str, float] = {}

    def capture(request: httpx.Request) -> httpx.Response:
        infno = json.loads(request.read())["infno"]
        timeouts[infno] = request.extensions["timeout"]["read"]
        return platform.handler(request)

    settings = PlatformSettings(read_timeout_s=7, settlement_read_timeout_s=70, retry_backoff_s=0)
    client = make_client(settings, transport=httpx.MockTransport(capture))
    await client.call("1101", QUERY)
    await client.call("2207", SETTLE, insuplc_admdvs="440100")
    assert timeouts["1101"] == 7 and timeouts["2207"] == 70


async def test_tif_headers_are_sent_with_every_request(make_client, platform):
    settings = PlatformSettings(gateway="tif", tif_paasid="paas01", tif_token=SecretStr("tok"), retry_backoff_s=0)
    await make_client(settings).call("1101", QUERY)
    headers = platform.calls("1101")[0].headers
    assert headers["x-tif-paasid"] == "paas01" and len(headers["x-tif-signature"]) == 64


async def test_api_gateway_posts_each_transaction_to_its_own_path(make_client, platform):
    settings = PlatformSettings(gateway="api", api_access_key="AK", api_secret=SecretStr("S"), retry_backoff_s=0,
                                api_path_template="/fsi/api/{api_name}")
    await make_client(settings).call("1101", QUERY)
    seen = platform.calls("1101")[0]
    assert seen.path == "/fsi/api/hsa-fsi-1101"
    assert seen.headers["_api_name"] == "hsa-fsi-1101"


async def test_encrypted_gateway_round_trip(make_client, platform):
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    private, public = crypto.generate_keypair()
    settings = PlatformSettings(gateway="encrypted", sm4_key=SecretStr(key.hex()), sm2_private_key=SecretStr(private),
                                platform_public_key=public, retry_backoff_s=0, signin_enabled=False)
    received: list[dict] = []

    def platform_side(seen) -> httpx.Response:
        plaintext = crypto.sm4_ecb_decrypt(key, base64.b64decode(seen.envelope["input"]))
        assert crypto.get_backend("auto").verify(public, plaintext, base64.b64decode(seen.envelope["cainfo"]))
        received.append(json.loads(plaintext))
        out = dumps({"baseinfo": {"psn_no": "P9"}}).encode()
        return reply_json({"infcode": 0, "output": base64.b64encode(crypto.sm4_ecb_encrypt(key, out)).decode(),
                           "cainfo": crypto.sign_b64(private, out)})

    platform.on("1101", platform_side)
    response = await make_client(settings).call("1101", QUERY)
    assert received == [QUERY]
    assert response.output == {"baseinfo": {"psn_no": "P9"}}
