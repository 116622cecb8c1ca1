"""The channel API and the callback endpoint, framework-free (MobilePayApi on SQLite and the real engine), with the
platform's real SM2/SM4 envelope (the simulator's own codec signs the callbacks)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from yibao.core import clock
from yibao.core.db.schema import mobilepay_audit
from yibao.envelope.crypto import generate_keypair
from yibao.envelope.mobilepay.codec import MobilePayCodec
from yibao.mobilepay.channels import Channels
from yibao.mobilepay.http import MobilePayApi, Request
from yibao.mobilepay.results import CALLBACKS
from yibao.mobilepay.settings import MobilepaySettings
from yibao.simulator.mobilepay import mp_timestamp

from unit.mobilepay.harness import Harness
from unit.mobilepay.standin import make_simulator

TOKENS = {"app": "app-token-0123456789abcdef", "window": "window-token-0123456789ab", "reader": "reader-token-0123456789"}


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_keypair()


@pytest.fixture
def rig(sqlite_engine: Engine, keys: tuple[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    private, public = keys
    sim = make_simulator(mp_hospital_public_key_hex=public)
    h = Harness(sqlite_engine, sim, callback_wait=_dt.timedelta(seconds=30))
    channels_file = tmp_path / "channels.yaml"
    channels_file.write_text(json.dumps({"channels": [
        {"channel": "app", "kind": "app", "version": "2.0", "rights": ["read", "pay", "refund"],
         "token_sha256": hashlib.sha256(TOKENS["app"].encode()).hexdigest()},
        {"channel": "window", "kind": "window", "version": "2.0", "rights": ["read", "refund"], "token": TOKENS["window"]},
        {"channel": "reader", "kind": "app", "rights": ["read"], "token": TOKENS["reader"]},
    ]}))
    codec = MobilePayCodec("yibaoMobileApp0001", "yibao-mobile-app-secret", private, sim.platform_public_key_hex)
    settings = MobilepaySettings(channels_file=channels_file, callback_max_age_s=600)
    api = MobilePayApi(db=h._run_db, engine=h.engine, channels=Channels(channels_file), codec=codec, settings=settings)
    return h, api


def req(method: str, body: Any = b"", *, who: str | None = "app", query: dict[str, str] | None = None) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {TOKENS[who]}"} if who else {}
    return Request(method, "/x", headers, raw, query or {}, "127.0.0.1")


def order_body(v: Any, channel_order_id: str = "C1", **kw: Any) -> dict[str, Any]:
    return {"channel_order_id": channel_order_id, "his_visit_id": v.key, "his_patient_id": v.patient,
            "pay_auth_no": "AUTH1", "pay_now": True, **kw}


async def call(api: MobilePayApi, action: str, fn: Any, *args: Any) -> Any:
    return await api.handle(action, lambda: fn(*args))


def envelope(sim: Any, data: dict[str, Any], *, when: _dt.datetime | None = None) -> dict[str, Any]:
    fields = {"appId": sim.mp_codec.app_id, "encType": "SM4", "signType": "SM2", "version": "2.0.1",
              "timestamp": mp_timestamp(when or clock.now(), True)}
    return sim.mp_codec.seal(fields, data)


def counted(outcome: str) -> float:
    return CALLBACKS.labels(outcome)._value.get()


# --- channels ---------------------------------------------------------------------------------------------------

async def test_a_channel_without_a_token_is_refused_and_one_without_the_right_too(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v = h.visit("10.00")
    assert (await call(api, "order", api.create_order, req("POST", order_body(v), who=None))).status == 401
    assert (await call(api, "order", api.create_order, req("POST", order_body(v), who="reader"))).status == 403


@pytest.mark.parametrize("body, field", [
    (b"{not json", "JSON"),
    (b"[1, 2]", "JSON object"),
    ({"channel_order_id": "C1"}, "his_visit_id"),
    ({"channel_order_id": "C1", "his_visit_id": "V", "his_patient_id": "P", "pay_auth_no": "A", "total": "1.555"},
     "total"),
    ({"channel_order_id": "C1", "his_visit_id": "V", "his_patient_id": "P", "pay_auth_no": "A", "total": True},
     "total"),
    ({"channel_order_id": "C1", "his_visit_id": "V", "his_patient_id": "P", "pay_auth_no": "A", "surprise": 1},
     "surprise"),
    ({"channel_order_id": "C1", "his_visit_id": "V", "his_patient_id": "P"}, "pay_auth_no"),
    (b"[" * 5000 + b"]" * 5000, "JSON"),
    (b'{"channel_order_id": "C1", "his_visit_id": "V", "his_patient_id": "P", "pay_auth_no": "A", "total": 1e999999}',
     "total"),
])
async def test_a_malformed_order_body_is_a_400_naming_the_field(rig, body, field) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    answer = await call(api, "order", api.create_order, req("POST", body))
    assert answer.status == 400 and field in answer.body["message"], answer.body


async def test_an_order_is_created_once_however_often_the_channel_sends_it(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v = h.visit("10.00", "2.50")
    first = await call(api, "order", api.create_order, req("POST", order_body(v)))
    again = await call(api, "order", api.create_order, req("POST", order_body(v)))
    assert (first.status, again.status) == (201, 200)
    assert first.body["order"]["order_id"] == again.body["order"]["order_id"]
    assert first.body["order"]["total"] == "12.50" and len(h.state(v).orders) == 1
    with h.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mobilepay_audit)).scalar_one() == 2


async def test_an_order_for_an_unknown_visit_is_a_404_and_leaves_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v = h.visit("10.00")
    answer = await call(api, "order", api.create_order, req("POST", {**order_body(v), "his_visit_id": "NOPE"}))
    assert answer.status == 404 and answer.body["error"] == "unknown_visit"
    with h.db.connect() as conn:
        from yibao.core.db.schema import chain_visits
        assert conn.execute(select(func.count()).select_from(chain_visits)).scalar_one() == 1


async def test_a_refused_order_is_a_409_with_its_reason(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v = h.visit("10.00")
    answer = await call(api, "order", api.create_order, req("POST", order_body(v, total="9.00")))
    assert answer.status == 409 and answer.body["error"] == "total_changed"


async def test_pending_fees_and_the_order_as_the_channel_sees_it(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v = h.visit("10.00", "2.50")
    pending = await call(api, "pending", api.pending, req("GET"), v.patient)
    [visit] = pending.body["visits"]
    assert visit["total"] == "12.50" and [line["feedetl_sn"] for line in visit["lines"]] == ["L1", "L2"]
    created = await call(api, "order", api.create_order, req("POST", order_body(v)))
    await h.drain()
    order_id = created.body["order"]["order_id"]
    shown = await call(api, "read", api.get_order, req("GET"), order_id)
    assert shown.body["order"]["status"] == "paying"
    text = json.dumps(shown.body, ensure_ascii=False)
    assert v.person.certno not in text and "AUTH1" not in text and v.person.psn_name not in text
    assert (await call(api, "pending", api.pending, req("GET"), v.patient)).body["visits"] == []


# --- the callback -----------------------------------------------------------------------------------------------

async def _paid(h: Harness, api: MobilePayApi):  # type: ignore[no-untyped-def]
    v = h.visit("20.00")
    created = await call(api, "order", api.create_order, req("POST", order_body(v)))
    await h.drain()
    order_id = created.body["order"]["order_id"]
    platform = h.sim.mobile.settled.pop(0)
    return v, order_id, platform


async def test_a_verified_callback_settles_the_order(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    before = counted("accepted")
    answer = await call(api, "callback", api.callback, req("POST", envelope(h.sim, h.sim.mobile.callback_data(platform)),
                                                           who=None))
    assert answer.status == 200 and answer.body["code"] == 0 and counted("accepted") == before + 1
    await h.drain()
    assert h.get(v, order_id).phase == "settled" and h.get(v, order_id).settled_by == "callback"


async def test_a_forged_callback_never_changes_state(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    data = h.sim.mobile.callback_data(platform)
    other_private, other_public = generate_keypair()
    forger = MobilePayCodec("yibaoMobileApp0001", "yibao-mobile-app-secret", other_private, other_public)
    forged = {**forger.encode_callback(data)}
    before = h.state(v).model_dump()
    answer = await call(api, "callback", api.callback, req("POST", forged, who=None))
    assert answer.status == 401 and answer.body["error"] == "bad_signature"
    assert h.state(v).model_dump() == before


@pytest.mark.parametrize("tamper", ["encData", "signData", "timestamp"])
async def test_a_tampered_callback_never_changes_state(rig, tamper) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    env = envelope(h.sim, h.sim.mobile.callback_data(platform))
    text = str(env[tamper])
    middle = len(text) // 2
    flipped = text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1:]
    env[tamper] = flipped if tamper != "timestamp" else str(int(text) + 1)
    before = h.state(v).model_dump()
    answer = await call(api, "callback", api.callback, req("POST", env, who=None))
    assert answer.status in (400, 401) and answer.body["code"] == -1
    assert answer.body["error"] in ("bad_signature", "undecryptable")
    assert h.state(v).model_dump() == before


async def test_a_replayed_callback_is_refused_and_changes_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    env = envelope(h.sim, h.sim.mobile.callback_data(platform))
    assert (await call(api, "callback", api.callback, req("POST", env, who=None))).status == 200
    await h.drain()
    settled = h.state(v).model_dump()
    before = counted("replayed")
    answer = await call(api, "callback", api.callback, req("POST", env, who=None))
    assert answer.status == 409 and answer.body["error"] == "replayed" and counted("replayed") == before + 1
    await h.drain()
    assert h.state(v).model_dump() == settled and [r.kind for r in h.results(v)] == ["settled"]


async def test_a_replay_with_its_signature_re_encoded_is_still_a_replay(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    env = envelope(h.sim, h.sim.mobile.callback_data(platform))
    assert (await call(api, "callback", api.callback, req("POST", env, who=None))).status == 200
    sig = env["signData"]  # 64 bytes: Base64 ends in one data character carrying 2 unused bits, then "=="
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(sig[-3])
    twin = sig[:-3] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1] + sig[-2:]
    answer = await call(api, "callback", api.callback, req("POST", {**env, "signData": twin}, who=None))
    assert answer.status in (401, 409), answer.body


async def test_the_same_event_signed_again_is_acknowledged_once(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    data = h.sim.mobile.callback_data(platform)
    first = await call(api, "callback", api.callback, req("POST", envelope(h.sim, data), who=None))
    again = await call(api, "callback", api.callback,
                       req("POST", envelope(h.sim, data, when=clock.now() + _dt.timedelta(seconds=1)), who=None))
    assert (first.body["message"], again.status, again.body["message"]) == ("success", 200, "already received")
    await h.drain()
    assert [r.kind for r in h.results(v)] == ["settled"]


async def test_a_stale_callback_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    old = envelope(h.sim, h.sim.mobile.callback_data(platform), when=clock.now() - _dt.timedelta(hours=2))
    answer = await call(api, "callback", api.callback, req("POST", old, who=None))
    assert answer.status == 400 and answer.body["error"] == "stale"
    assert h.get(v, order_id).phase == "paid"


async def test_a_callback_for_no_order_of_ours_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    data = {**h.sim.mobile.callback_data(platform), "payOrdId": "ORD-NOT-OURS", "medOrgOrd": "X-1"}
    answer = await call(api, "callback", api.callback, req("POST", envelope(h.sim, data), who=None))
    assert answer.status == 404 and answer.body["error"] == "unknown_order"


@pytest.mark.parametrize("body", [b"", b"nonsense", b"{}", json.dumps({"appId": "x"}).encode()])
async def test_a_malformed_callback_is_a_clear_400(rig, body) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    answer = await call(api, "callback", api.callback, req("POST", body, who=None))
    assert answer.status == 400 and answer.body["code"] == -1


# --- refunds ----------------------------------------------------------------------------------------------------

async def test_the_window_refunds_an_order_of_another_channel(rig) -> None:  # type: ignore[no-untyped-def]
    h, api = rig
    v, order_id, platform = await _paid(h, api)
    await call(api, "callback", api.callback, req("POST", envelope(h.sim, h.sim.mobile.callback_data(platform)),
                                                  who=None))
    await h.drain()
    body = {"refund_request_id": "W1", "refd_type": "ALL", "operator": "cashier-7"}
    answer = await call(api, "refund", api.refund, req("POST", body, who="window"), order_id)
    assert answer.status == 202
    await h.drain()
    order = h.get(v, order_id)
    assert order.refunds[0].phase == "succeeded" and order.refunds[0].operator == "cashier-7"
    again = await call(api, "refund", api.refund, req("POST", body, who="window"), order_id)
    assert again.status == 200 and len(h.get(v, order_id).refunds) == 1
    refused = await call(api, "refund", api.refund, req("POST", {"refund_request_id": "W2"}, who="window"), order_id)
    assert refused.status == 409 and refused.body["error"] == "nothing_to_refund"
    assert Decimal(h.results(v)[-1].split.medfee_sumamt) == -Decimal("20.00")
