"""Mobile pay 2.0 over HTTP: envelope, order state machine, signed callbacks verified with libs/envelope."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web

from yibao.simulator import smcrypto

mobilepay = pytest.importorskip("yibao.envelope.mobilepay")

APP_ID = "yibaoMobileApp0001"
SECRET = "yibao-mobile-app-secret"


class Receiver:
    """The hospital's callback endpoint: acknowledges after ``fail_first`` failures."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.url = ""
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        self.got.set()
        if len(self.bodies) <= self.fail_first:
            return web.json_response({"code": -1}, status=500)
        return web.json_response({"code": 0, "message": "success"})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(fail_first=1)
    app = web.Application()
    app.router.add_post("/callback", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    r.url = f"http://127.0.0.1:{sock.getsockname()[1]}/callback"
    yield r
    await runner.cleanup()


def keys() -> tuple[str, str]:
    private, public = smcrypto.sm2_keypair()
    return private.hex().upper(), public.hex().upper()


async def call(c: httpx.AsyncClient, sim, codec, path: str, data: dict[str, Any]) -> Any:
    env = codec.encode_request(data)
    r = await c.post(sim.url + sim.settings.mobilepay_prefix + path, content=json.dumps(env, default=str).encode(),
                     headers={"content-type": "application/json"})
    return codec.decode_response(json.loads(r.content, parse_float=Decimal))


async def paid_order(c: httpx.AsyncClient, sim, hosp_private: str, med_org_ord: str) -> tuple[Any, dict[str, Any]]:
    """A one-line 2.0 order uploaded and paid (its callbacks delivered): the hospital's codec and the 6201 answer."""
    codec = mobilepay.MobilePayCodec(APP_ID, SECRET, hosp_private, sim.platform_public_key_hex,
                                     timestamp_format="epoch_ms")
    person = next(iter(sim.ledger.persons.values()))
    up = await call(c, sim, codec, "uldFeeInfo", {
        "payAuthNo": "A", "orgCodg": sim.settings.fixmedins_codes[0], "psnNo": person.psn_no,
        "insutype": person.insutype, "medOrgOrd": med_org_ord, "medType": "11", "medfeeSumamt": Decimal("1.00"),
        "feedetailList": [{"medListCodg": "XA03", "detItemFeeSumamt": Decimal("1.00")}]})
    await call(c, sim, codec, "pay_order", {"payAuthNo": "A", "payOrdId": up["payOrdId"], "payToken": up["payToken"],
                                            "acctUsedFlag": "0"})
    await sim.callbacks.drain()
    return codec, up


async def test_order_settles_and_a_signed_callback_is_delivered_until_acknowledged(start, receiver) -> None:
    hosp_private, hosp_public = keys()
    async with start(mp_hospital_public_key_hex=hosp_public, callback_url=receiver.url,
                     callback_retry_initial_s=0.05) as sim, httpx.AsyncClient() as c:
        codec = mobilepay.MobilePayCodec(APP_ID, SECRET, hosp_private, sim.platform_public_key_hex,
                                         timestamp_format="epoch_ms")
        person = next(p for p in sim.ledger.persons.values())
        upload = await call(c, sim, codec, "uldFeeInfo", {
            "payAuthNo": "AUTH1", "orgCodg": sim.settings.fixmedins_codes[0], "psnNo": person.psn_no,
            "insutype": person.insutype, "medOrgOrd": "ORD-HIS-1", "medType": "11", "medfeeSumamt": Decimal("30.00"),
            "feedetailList": [{"feedetlSn": "1", "medListCodg": "XA01", "detItemFeeSumamt": Decimal("30.00")}]})
        paid = await call(c, sim, codec, "pay_order", {"payAuthNo": "AUTH1", "payOrdId": upload["payOrdId"],
                                                       "payToken": upload["payToken"], "orgCodg": sim.settings.fixmedins_codes[0],
                                                       "acctUsedFlag": "0"})
        assert paid["ordStas"] == "4"
        assert Decimal(str(paid["feeSumamt"])) == Decimal(str(paid["fundPay"])) + Decimal(str(paid["ownPayAmt"])) + \
            Decimal(str(paid["psnAcctPay"]))
        await sim.callbacks.drain()
        assert len(receiver.bodies) == 2  # the first attempt was refused, the retry acknowledged
        data = codec.verify_callback(receiver.bodies[-1])
        assert data["payOrdId"] == upload["payOrdId"] and str(data["ordStas"]) == "4"
        tampered = dict(receiver.bodies[-1], timestamp="1")
        with pytest.raises(Exception):
            codec.verify_callback(tampered)
        queried = await call(c, sim, codec, "query_order_info", {"payOrdId": upload["payOrdId"], "payToken": upload["payToken"]})
        assert queried["medOrgOrd"] == "ORD-HIS-1"


async def test_order_state_machine_refuses_wrong_steps(start) -> None:
    hosp_private, hosp_public = keys()
    async with start(mp_hospital_public_key_hex=hosp_public) as sim, httpx.AsyncClient() as c:
        codec = mobilepay.MobilePayCodec(APP_ID, SECRET, hosp_private, sim.platform_public_key_hex,
                                         timestamp_format="epoch_ms")
        person = next(iter(sim.ledger.persons.values()))
        base = {"payAuthNo": "A", "orgCodg": sim.settings.fixmedins_codes[0], "psnNo": person.psn_no,
                "insutype": person.insutype, "medOrgOrd": "O-2", "medType": "11", "medfeeSumamt": Decimal("10.00"),
                "feedetailList": [{"medListCodg": "XA02", "detItemFeeSumamt": Decimal("10.00")}]}
        up = await call(c, sim, codec, "uldFeeInfo", base)
        ids = {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}
        with pytest.raises(Exception):  # repeat upload of the same medOrgOrd
            await call(c, sim, codec, "uldFeeInfo", base)
        refund = {**ids, "appRefdSn": "R1", "appRefdTime": "20240501100000", "totlRefdAmt": Decimal("10.00"),
                  "cashRefdAmt": Decimal("0"), "psnAcctRefdAmt": Decimal("0"), "fundRefdAmt": Decimal("0"), "refdType": "ALL"}
        assert (await call(c, sim, codec, "refund_Order", refund))["refStatus"] == "FAIL"  # not settled yet
        assert (await call(c, sim, codec, "revoke_order", ids))["success"] is True
        with pytest.raises(Exception):  # a revoked order cannot be paid
            await call(c, sim, codec, "pay_order", {**ids, "payAuthNo": "A", "acctUsedFlag": "0"})


async def test_a_request_signed_with_another_key_is_refused(start) -> None:
    _, hosp_public = keys()
    other_private, _ = keys()
    async with start(mp_hospital_public_key_hex=hosp_public) as sim, httpx.AsyncClient() as c:
        codec = mobilepay.MobilePayCodec(APP_ID, SECRET, other_private, sim.platform_public_key_hex,
                                         timestamp_format="epoch_ms")
        with pytest.raises(Exception, match="signData"):
            await call(c, sim, codec, "query_order_info", {"payOrdId": "X", "payToken": "Y"})


async def test_duplicate_callback_fault_delivers_twice(start, receiver) -> None:
    receiver.fail_first = 0
    hosp_private, hosp_public = keys()
    async with start(mp_hospital_public_key_hex=hosp_public, callback_url=receiver.url,
                     faults=["callback:duplicate:1"]) as sim, httpx.AsyncClient() as c:
        codec, up = await paid_order(c, sim, hosp_private, "O-3")
        assert len(receiver.bodies) == 2
        assert [codec.verify_callback(b)["payOrdId"] for b in receiver.bodies] == [up["payOrdId"]] * 2


async def test_the_callback_url_set_through_the_admin_api_receives_the_callbacks_of_orders_settled_after(
        start, receiver) -> None:
    receiver.fail_first = 0
    hosp_private, hosp_public = keys()
    async with start(mp_hospital_public_key_hex=hosp_public) as sim, httpx.AsyncClient() as c:
        assert (await c.get(sim.admin_url + "/admin/callback-url")).json() == {"url": ""}
        refused = await c.put(sim.admin_url + "/admin/callback-url", json={"url": "ftp://elsewhere"})
        assert refused.status_code == 400 and "url" in refused.json()["error"]
        assert (await c.put(sim.admin_url + "/admin/callback-url", json={"url": receiver.url})).status_code == 200
        codec, up = await paid_order(c, sim, hosp_private, "O-URL")
        assert [codec.verify_callback(b)["payOrdId"] for b in receiver.bodies] == [up["payOrdId"]]
