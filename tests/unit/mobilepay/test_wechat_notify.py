"""WeChat Pay's payment notification at ``POST /mobilepay/wechat/notify``: verified with WeChat Pay's key and
decrypted with the APIv3 key before it is believed; forged, tampered, stale or foreign notifications change nothing;
the same notification twice is acknowledged once."""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings
from yibao.mobilepay.channels import Channels
from yibao.mobilepay.http import MobilePayApi, Request
from yibao.mobilepay.results import CALLBACKS
from yibao.mobilepay.settings import MobilepaySettings
from yibao.simulator.wechat import rsa_keypair_pem

from unit.mobilepay.harness import Harness
from unit.mobilepay.standin import make_simulator

WX = dict(wechat_enabled=True, wechat_appid="wxapp", wechat_city_id="440100", wechat_med_inst_no="H44010600001",
          wechat_med_inst_name="医院", callback_wait=_dt.timedelta(0), wechat_cash_wait=_dt.timedelta(hours=1))


@pytest.fixture
def rig(sqlite_engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    sim = make_simulator(wx_autopay_s=0.0)
    h = Harness(sqlite_engine, sim, **WX)
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps({"channels": [{"channel": "wechat-oa", "kind": "wechat", "rights": ["read", "pay"],
                                                  "token": "wechat-token-0123456789ab"}]}))
    merchant_private, _ = rsa_keypair_pem()
    client = WeChatPayClient(WeChatSettings(merchant_private_key=merchant_private,
                                            platform_public_key=sim.wechat.public_pem,
                                            api_v3_key=sim.settings.wx_api_v3_key))
    api = MobilePayApi(db=h._run_db, engine=h.engine, channels=Channels(channels), codec=None,
                       settings=MobilepaySettings(channels_file=channels), wechat=client)
    return h, api


def notify(body: str, headers: dict[str, str]) -> Request:
    return Request("POST", "/mobilepay/wechat/notify", {k.lower(): v for k, v in headers.items()}, body.encode(), {},
                   "127.0.0.1")


def counted(outcome: str) -> float:
    return CALLBACKS.labels(f"wechat_{outcome}")._value.get()


async def _awaiting_cash(h: Harness) -> tuple[Any, str, dict[str, Any]]:
    v = h.visit("80.00")
    order_id = h.order(v, "W1", channel="wechat-oa", kind="wechat", pay_now=True)
    await h.drain()
    await asyncio.sleep(0.05)  # the patient pays the cash part (the simulator's autopay)
    order = h.get(v, order_id)
    assert order.phase == "wechat_pending"
    return v, order_id, h.sim.wechat.orders[order.wechat.out_trade_no]


async def test_a_verified_notification_settles_the_order_and_its_replay_changes_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, record = await _awaiting_cash(h)
    body, headers = h.sim.wechat.notification(record)
    before = counted("duplicate")
    answer = await api.handle("wechat_notify", lambda: api.wechat_notify(notify(body, headers)))
    assert (answer.status, answer.body["code"]) == (200, "SUCCESS")
    await h.drain()
    assert h.get(v, order_id).phase == "settled" and h.get(v, order_id).wechat.status == "paid"
    again = await api.handle("wechat_notify", lambda: api.wechat_notify(notify(body, headers)))
    assert again.status == 200 and counted("duplicate") == before + 1
    await h.drain()
    assert len(h.get(v, order_id).wechat.notices) == 1


async def test_a_forged_notification_is_refused_and_changes_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, record = await _awaiting_cash(h)
    body, _ = h.sim.wechat.notification(record)
    forger = make_simulator().wechat  # another RSA key
    before = counted("bad_signature")
    answer = await api.wechat_notify(notify(body, forger.signed_headers(body)))
    assert (answer.status, answer.body["code"]) == (401, "FAIL") and counted("bad_signature") == before + 1
    unsigned = await api.wechat_notify(notify(body, {"Content-Type": "application/json"}))
    assert unsigned.status == 401 and "missing" in unsigned.body["message"]
    await h.drain()
    assert h.get(v, order_id).phase == "wechat_pending" and h.get(v, order_id).wechat.notices == []


async def test_a_tampered_notification_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, record = await _awaiting_cash(h)
    body, headers = h.sim.wechat.notification(record)
    envelope = json.loads(body)
    cipher = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    cipher[0] ^= 1
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(cipher)).decode()
    tampered = json.dumps(envelope, ensure_ascii=False)
    assert (await api.wechat_notify(notify(tampered, headers))).status == 401  # the signature covers the body
    resigned = await api.wechat_notify(notify(tampered, h.sim.wechat.signed_headers(tampered)))
    assert resigned.status == 400 and counted("undecryptable") >= 1  # signed, but not sealed with the APIv3 key
    await h.drain()
    assert h.get(v, order_id).phase == "wechat_pending"


async def test_a_stale_notification_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, record = await _awaiting_cash(h)
    body, headers = h.sim.wechat.notification(record)
    old = str(int(time.time()) - 3600)
    headers.update({"Wechatpay-Timestamp": old,
                    "Wechatpay-Signature": h.sim.wechat._sign(f"{old}\n{headers['Wechatpay-Nonce']}\n{body}\n")})
    answer = await api.wechat_notify(notify(body, headers))
    assert answer.status == 401 and "stale" in answer.body["message"]
    await h.drain()
    assert h.get(v, order_id).phase == "wechat_pending"


async def test_a_notification_for_no_order_of_ours_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    _, _, record = await _awaiting_cash(h)
    body, headers = h.sim.wechat.notification({**record, "out_trade_no": "NOT-OURS-1W"})
    answer = await api.wechat_notify(notify(body, headers))
    assert (answer.status, answer.body["code"]) == (404, "FAIL")
