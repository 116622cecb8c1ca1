"""The bridge's WeChat Pay client against the simulator's WeChat side over HTTP: API v3 signatures both ways (RSA),
notifications sealed with the APIv3 key (AES-GCM), the med-ins order's rules, refunds of the cash part, the bill."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from yibao.envelope.errors import BusinessRejection, CryptoError, GatewayAuthError, SignatureError, UnknownOutcome
from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings, encrypt_resource, fen, yuan
from yibao.simulator.wechat import rsa_keypair_pem

API_V3_KEY = "yibao-wechat-apiv3-key-000000001"


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.json_response({"code": "SUCCESS"})


@pytest.fixture
async def receiver():  # type: ignore[no-untyped-def]
    r = Receiver()
    app = web.Application()
    app.router.add_post("/notify", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    r.url = f"http://127.0.0.1:{sock.getsockname()[1]}/notify"
    yield r
    await runner.cleanup()


def client_for(sim: Any, merchant_private: str, **kw: Any) -> WeChatPayClient:
    return WeChatPayClient(WeChatSettings(base_url=sim.url, merchant_private_key=merchant_private,
                                          merchant_serial_no="MSERIAL", platform_public_key=sim.wechat.public_pem,
                                          api_v3_key=API_V3_KEY, **kw))


def test_fen_and_yuan_are_exact() -> None:
    assert fen(Decimal("12.30")) == 1230 and yuan(1230) == Decimal("12.30")
    with pytest.raises(ValueError):
        yuan(12.3)  # type: ignore[arg-type]


async def test_a_cash_only_order_is_paid_and_notified_with_a_verified_sealed_notification(start, receiver) -> None:  # type: ignore[no-untyped-def]
    private, public = rsa_keypair_pem()
    async with start(wx_merchant_public_key_pem=public, wx_api_v3_key=API_V3_KEY, wx_autopay_s=0.05) as sim:
        client = client_for(sim, private)
        try:
            placed = await client.call("8802", {"data": {
                "mix_pay_type": "CASH_ONLY", "order_type": "DIAG_PAY", "out_trade_no": "MPX1W", "serial_no": "MPX1",
                "total_fee": 3300, "med_ins_gov_fee": 0, "med_ins_self_fee": 0, "med_ins_cash_fee": 0,
                "wechat_pay_cash_fee": 3300, "callback_url": receiver.url}})
            assert placed.output["mix_pay_status"] == "MIX_PAY_CREATED"
            for _ in range(100):
                if receiver.got:
                    break
                await asyncio.sleep(0.05)
            headers, body = receiver.got[0]
            data = client.verify_notification(headers, body)
            assert data["out_trade_no"] == "MPX1W" and data["mix_pay_status"] == "MIX_PAY_SUCCESS"
            queried = await client.call("8803", {"data": {"out_trade_no": "MPX1W"}})
            assert queried.output["self_pay_status"] == "SELF_PAY_SUCCESS"
            refund = await client.call("8804", {"data": {"out_trade_no": "MPX1W", "out_refund_no": "R1",
                                                         "amount": {"refund": 1000, "total": 3300, "currency": "CNY"}}})
            assert refund.output["status"] == "SUCCESS"
            again = await client.call("8805", {"data": {"out_refund_no": "R1"}})
            assert again.output["amount"]["refund"] == 1000
            with pytest.raises(BusinessRejection, match="INVALID_REQUEST"):
                await client.call("8804", {"data": {"out_trade_no": "MPX1W", "out_refund_no": "R2",
                                                    "amount": {"refund": 9000, "total": 3300, "currency": "CNY"}}})
            day = data["paid_time"][:10]
            bill = await client.call("8806", {"data": {"bill_date": day}})
            assert "MPX1W" in bill.output["bill"] and ",REFUND," in bill.output["bill"]
            # a forged notification (signed by someone else) and a tampered one are not believed
            with pytest.raises(SignatureError):
                client.verify_notification({**headers, "Wechatpay-Signature": "AAAA"}, body)
            sealed = json.loads(body)
            sealed["resource"] = encrypt_resource("another-apiv3-key-00000000000001", {"out_trade_no": "MPX1W"})
            text = json.dumps(sealed).encode()
            with pytest.raises((SignatureError, CryptoError)):
                client.verify_notification(headers, text)
        finally:
            await client.aclose()


async def test_a_request_signed_with_another_key_is_refused_and_so_is_an_unsigned_answer(start) -> None:  # type: ignore[no-untyped-def]
    merchant_private, public = rsa_keypair_pem()
    other_private, _ = rsa_keypair_pem()
    async with start(wx_merchant_public_key_pem=public, wx_api_v3_key=API_V3_KEY) as sim:
        client = client_for(sim, other_private)
        try:
            with pytest.raises(GatewayAuthError):  # WeChat refused our signature (401): nothing done
                await client.call("8803", {"data": {"out_trade_no": "NOPE"}})
        finally:
            await client.aclose()
        _, stranger_public = rsa_keypair_pem()
        stranger = WeChatPayClient(WeChatSettings(base_url=sim.url, merchant_private_key=merchant_private,
                                                  platform_public_key=stranger_public, api_v3_key=API_V3_KEY))
        try:
            with pytest.raises(UnknownOutcome, match="cannot be believed"):
                await stranger.call("8803", {"data": {"out_trade_no": "NOPE"}})
        finally:
            await stranger.aclose()


async def test_an_insurance_order_must_match_its_mobile_pay_order(start) -> None:  # type: ignore[no-untyped-def]
    private, public = rsa_keypair_pem()
    async with start(wx_merchant_public_key_pem=public, wx_api_v3_key=API_V3_KEY) as sim:
        client = client_for(sim, private)
        try:
            with pytest.raises(BusinessRejection, match="pay_order_id"):
                await client.call("8802", {"data": {
                    "mix_pay_type": "CASH_AND_INSURANCE", "out_trade_no": "X1W", "serial_no": "X1-1",
                    "pay_order_id": "ORD-NONE", "total_fee": 100, "med_ins_gov_fee": 50, "med_ins_self_fee": 0,
                    "med_ins_cash_fee": 50, "wechat_pay_cash_fee": 50}})
        finally:
            await client.aclose()


async def test_authorization_gives_a_pay_auth_no(start) -> None:  # type: ignore[no-untyped-def]
    private, public = rsa_keypair_pem()
    async with start(wx_merchant_public_key_pem=public, wx_api_v3_key=API_V3_KEY) as sim:
        person = next(iter(sim.ledger.persons.values()))
        client = client_for(sim, private)
        try:
            first = await client.call("8801", {"data": {"auth_code": f"AUTH-{person.psn_no}"}})
            again = await client.call("8801", {"data": {"auth_code": f"AUTH-{person.psn_no}"}})
            assert first.output["pay_auth_no"] == again.output["pay_auth_no"]
            with pytest.raises(BusinessRejection):
                await client.call("8801", {"data": {"auth_code": "nonsense"}})
        finally:
            await client.aclose()
