"""Mobile-pay visits for ``yibao demo`` (and the mobile-pay benchmark): HIS registers outpatient visits and charges
them, channels (a WeChat official account, an app, a 1.0 app, a kiosk, the HIS window) pay them through the
mobile-pay worker's API, and the platform (the simulator's mobile-pay side) settles and calls back.

Two calls, around the bridge's start::

    bridge = LocalBridge(info, workdir, services=(*CHAIN_SERVICES, "mobilepay"), ...)
    mobilepay_demo.prepare(bridge, workdir)          # keys, the channels file, the callback URL — before start()
    bridge.start()
    ...
    for line in asyncio.run(mobilepay_demo.run(bridge)):
        print(line)

``run`` plays a small day: orders paid at once and after the patient's confirmation, on 2.0 and on 1.0 channels,
refunded (all, or cash then insurance), withdrawn, abandoned (revoked when never confirmed), and one HIS reverses a
fee of before payment; it waits for every order to end and checks what HIS was told against the platform's ledger.
The visits' HIS events are put on ``yibao.his.events.v1`` as ingest publishes them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from yibao.core import clock
from yibao.core.results import HisResult
from yibao.core.topics import topic

__all__ = ["prepare", "run", "Channels", "MobileDay", "TOKENS", "wechat_env"]

#: the demo's channel tokens (a channels file written next to the bridge's logs)
TOKENS = {"wechat": "demo-wechat-oa-token-0001", "app": "demo-app-channel-token-01", "legacy": "demo-legacy-app-token-01",
          "kiosk": "demo-kiosk-token-000000001", "window": "demo-his-window-token-001"}
_CHANNELS = [
    {"channel": "wechat-oa", "kind": "wechat", "version": "2.0", "rights": ["read", "pay", "refund", "identity"],
     "token": TOKENS["wechat"]},
    {"channel": "app", "kind": "app", "version": "2.0", "rights": ["read", "pay", "refund"], "token": TOKENS["app"]},
    {"channel": "legacy-app", "kind": "app", "version": "1.0", "rights": ["read", "pay", "refund"],
     "token": TOKENS["legacy"]},
    {"channel": "kiosk", "kind": "kiosk", "version": "2.0", "rights": ["read", "pay"], "token": TOKENS["kiosk"]},
    {"channel": "his-window", "kind": "window", "version": "2.0", "rights": ["read", "refund", "identity"],
     "token": TOKENS["window"]},
]


def prepare(bridge: Any, workdir: Path, *, order_ttl_s: float = 8.0, wechat: bool = True,
            extra: dict[str, str] | None = None) -> None:
    """Configure a :class:`~yibao.stack.bridge.LocalBridge` (not started yet) for mobile pay: key pairs for the
    hospital and the platform, the simulator's callback URL (the mobile-pay worker's port), the channels file, short
    waits (an unconfirmed order is revoked after ``order_ttl_s``) and, with ``wechat``, WeChat Pay for the WeChat
    channel's cash parts."""
    from yibao.envelope.crypto import generate_keypair

    hospital_private, hospital_public = generate_keypair()
    platform_private, platform_public = generate_keypair()
    port = bridge._ports.setdefault("mobilepay", _free_port())
    channels = workdir / "mobilepay-channels.json"
    channels.write_text(json.dumps({"channels": _CHANNELS}), encoding="utf-8")
    bridge.extra_env = {
        **bridge.extra_env,
        "YIBAO_SIM_PLATFORM_PRIVATE_KEY_HEX": platform_private, "YIBAO_SIM_PLATFORM_PUBLIC_KEY_HEX": platform_public,
        "YIBAO_SIM_MP_HOSPITAL_PUBLIC_KEY_HEX": hospital_public,
        "YIBAO_SIM_CALLBACK_URL": f"http://127.0.0.1:{port}/mobilepay/callback",
        "YIBAO_SIM_CALLBACK_RETRY_INITIAL_S": "0.2", "YIBAO_SIM_CALLBACK_RETRY_MAX_S": "2",
        "YIBAO_MP_BASE_URL": bridge.sim_url, "YIBAO_MP_PRIVATE_KEY": hospital_private,
        "YIBAO_MP_PLATFORM_PUBLIC_KEY": platform_public, "YIBAO_MP_RETRY_BACKOFF_S": "0.05",
        "YIBAO_MOBILEPAY_CHANNELS_FILE": str(channels),
        "YIBAO_MOBILEPAY_ORDER_TTL_S": str(order_ttl_s), "YIBAO_MOBILEPAY_CALLBACK_WAIT_S": "3",
        "YIBAO_MOBILEPAY_CONFIRM_POLL_S": "0.5", "YIBAO_MOBILEPAY_CHAIN_BACKOFF_S": "0.1",
        "YIBAO_MOBILEPAY_CHAIN_BACKOFF_MAX_S": "2",
        **(wechat_env(bridge.sim_url, port) if wechat else {}),
        **(extra or {}),
    }


def wechat_env(bridge_sim_url: str, worker_port: int) -> dict[str, str]:
    """WeChat Pay for the WeChat channels: the merchant's and WeChat's RSA keys, the APIv3 key, the notify URL."""
    from yibao.simulator.wechat import rsa_keypair_pem

    merchant_private, merchant_public = rsa_keypair_pem()
    wechat_private, _ = rsa_keypair_pem()
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(wechat_private.encode(), password=None)
    wechat_public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    api_v3_key = "yibao-demo-apiv3-key-00000000001"
    return {
        "YIBAO_SIM_WX_MERCHANT_PUBLIC_KEY_PEM": merchant_public, "YIBAO_SIM_WX_PLATFORM_PRIVATE_KEY_PEM": wechat_private,
        "YIBAO_SIM_WX_API_V3_KEY": api_v3_key, "YIBAO_SIM_WX_AUTOPAY_S": "0.3",
        "YIBAO_MOBILEPAY_WECHAT_ENABLED": "true", "YIBAO_WECHAT_BASE_URL": bridge_sim_url,
        "YIBAO_WECHAT_MERCHANT_PRIVATE_KEY": merchant_private, "YIBAO_WECHAT_MERCHANT_SERIAL_NO": "DEMO-SERIAL",
        "YIBAO_WECHAT_PLATFORM_PUBLIC_KEY": wechat_public, "YIBAO_WECHAT_API_V3_KEY": api_v3_key,
        "YIBAO_WECHAT_NOTIFY_URL": f"http://127.0.0.1:{worker_port}/mobilepay/wechat/notify",
        "YIBAO_MOBILEPAY_WECHAT_CASH_WAIT_S": "30",
    }



def _free_port() -> int:
    from yibao.stack._proc import free_port

    return free_port()


@dataclass
class Visit:
    key: str
    patient: str
    person: Any
    amounts: tuple[str, ...]
    lines: dict[str, Any] = field(default_factory=dict)


class Channels:
    """The hospital's channels talking to the mobile-pay worker, and HIS putting its events on Kafka."""

    def __init__(self, bridge: Any, *, seed: int = 2026, people_offset: int = 460, tag: str | None = None) -> None:
        from yibao.fakedata.people import population

        self.bridge = bridge
        self._people = iter(population(seed, 500)[people_offset:])
        self._n = itertools.count(1)
        self.tag = tag or uuid.uuid4().hex[:6].upper()
        self._offsets = itertools.count(1)

    @property
    def url(self) -> str:
        return self.bridge.workers["mobilepay"].url

    # --- HIS ---------------------------------------------------------------------------------------------------

    def new_visit(self, *amounts: str) -> Visit:
        n = next(self._n)
        return Visit(f"MPD{self.tag}{n:04d}", f"PD{self.tag}{n:04d}", next(self._people), amounts)

    def _base(self, v: Visit) -> dict[str, Any]:
        from yibao.hisevents.models import EventSource

        return {"event_id": f"evt-{uuid.uuid4().hex[:16]}", "his_visit_id": v.key, "visit_kind": "outpatient",
                "his_patient_id": v.patient, "occurred_at": clock.now(),
                "source": EventSource(topic="his.cdc", partition=0, offset=next(self._offsets), table="MP_DEMO")}

    def events(self, v: Visit) -> list[Any]:
        from yibao.hisevents.models import ChargeLineAdded, PatientRegistered

        p = v.person
        out: list[Any] = [PatientRegistered(
            **self._base(v), ipt_otp_no="MZ" + v.key, mdtrt_cert_type="02", mdtrt_cert_no=p.certno, psn_cert_type="01",
            certno=p.certno, psn_name=p.psn_name, insutype=p.insutype, med_type="11", begntime=clock.now(),
            dept_code="K01", dept_name="内科", caty="A03", atddr_no="D01", dr_name="医生甲", channel="wechat")]
        for i, amount in enumerate(v.amounts, start=1):
            line = ChargeLineAdded(**self._base(v), feedetl_sn=f"L{i}", fee_ocur_time=clock.now(),
                                   med_list_codg="XA01", medins_list_codg="HXA01", medins_list_name="诊疗费",
                                   det_item_fee_sumamt=Decimal(amount), cnt=Decimal("1"), pric=Decimal(amount),
                                   bilg_dept_codg="K01", bilg_dept_name="内科")
            v.lines[line.feedetl_sn] = line
            out.append(line)
        return out

    def reversal(self, v: Visit, sn: str, of: str) -> Any:
        from yibao.hisevents.models import ChargeLineReversed

        o = v.lines[of]
        return ChargeLineReversed(**self._base(v), feedetl_sn=sn, init_feedetl_sn=of, fee_ocur_time=clock.now(),
                                  med_list_codg=o.med_list_codg, medins_list_codg=o.medins_list_codg,
                                  det_item_fee_sumamt=-o.det_item_fee_sumamt, cnt=-o.cnt, pric=o.pric)

    async def his(self, events: list[Any]) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bridge.info.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            name = topic("his_events", self.bridge.prefix)
            futures = [await producer.send(name, key=e.his_visit_id.encode(), value=e.to_json()) for e in events]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    # --- the channels ------------------------------------------------------------------------------------------

    async def api(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None, *, who: str = "app"
                  ) -> httpx.Response:
        return await client.request(method, self.url + path, json=body,
                                    headers={"Authorization": f"Bearer {TOKENS[who]}"})

    async def pending(self, client: httpx.AsyncClient, v: Visit, *, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.api(client, "GET", f"/mobilepay/patients/{v.patient}/pending")
            found = [x for x in (r.json().get("visits") or []) if x["his_visit_id"] == v.key] if r.status_code == 200 \
                else []
            if found and len(found[0]["lines"]) >= len(v.amounts) and found[0]["registered"]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"visit {v.key} not ready for mobile pay: {r.status_code} {r.text[:200]}")
            await asyncio.sleep(0.25)

    async def order(self, client: httpx.AsyncClient, v: Visit, channel_order_id: str, *, who: str = "app",
                    pay_now: bool = True) -> dict[str, Any]:
        r = await self.api(client, "POST", "/mobilepay/orders", {
            "channel_order_id": channel_order_id, "his_visit_id": v.key, "his_patient_id": v.patient,
            "pay_auth_no": "AUTH" + secrets.token_hex(6), "pay_now": pay_now}, who=who)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"order {channel_order_id}: {r.status_code} {r.text[:300]}")
        return r.json()["order"]

    async def until(self, client: httpx.AsyncClient, order_id: str, statuses: tuple[str, ...], *, who: str = "app",
                    timeout: float = 120, check: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.api(client, "GET", f"/mobilepay/orders/{order_id}", who=who)
            order = r.json().get("order", {}) if r.status_code == 200 else {}
            if order.get("status") in statuses and (check is None or check(order)):
                return order
            if time.monotonic() > deadline:
                raise TimeoutError(f"order {order_id} is {order.get('status')} ({order.get('reason')})")
            await asyncio.sleep(0.25)

    async def results(self, *, idle: float = 1.5, timeout: float = 20) -> list[HisResult]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(topic("his_results", self.bridge.prefix),
                                    bootstrap_servers=self.bridge.info.kafka_bootstrap,
                                    group_id=f"mp-demo-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        out: list[HisResult] = []
        loop = asyncio.get_running_loop()
        deadline, last = loop.time() + timeout, loop.time()
        try:
            while loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=250)
                for records in batch.values():
                    for r in records:
                        result = HisResult.model_validate_json(r.value)
                        if result.service == "mobilepay":
                            out.append(result)
                if batch:
                    last = loop.time()
                elif loop.time() - last > idle:
                    break
        finally:
            await consumer.stop()
        return out

    def audit(self, results: list[HisResult]) -> list[str]:
        """What HIS was told against the platform's ledger; any order paid twice."""
        orders = {o["pay_ord_id"]: o for o in self.bridge.admin("orders")}
        settlements = {s["setl_id"]: s for s in self.bridge.admin("settlements")}
        problems: list[str] = []
        told = Counter(r.message_id for r in results)
        problems += [f"HIS told twice: {m}" for m, n in told.items() if n > 1]
        for r in results:
            if r.kind == "settled":
                order = orders.get((r.detail or {}).get("pay_ord_id"))
                s = settlements.get(r.setl_id or "")
                if order is None or s is None or s["infno"] != "6202":
                    problems.append(f"settled {r.his_visit_id}: not on the platform")
                elif Decimal(str(order["amounts"]["feeSumamt"])) != r.split.medfee_sumamt:
                    problems.append(f"settled {r.his_visit_id}: amounts differ from the platform's")
            elif r.kind == "refunded" and not (r.detail or {}).get("cash_only"):
                s = settlements.get(r.setl_id or "")
                if s is None or s["refd_setl_flag"] != "1":
                    problems.append(f"refunded {r.his_visit_id}: no cancellation on the platform")
        paid = Counter(o["med_org_ord"].rsplit("-", 1)[0] for o in orders.values()
                       if o["status"] in ("4", "9", "10", "11"))
        problems += [f"order {k} paid {n} times" for k, n in paid.items() if n > 1]
        return problems


@dataclass
class MobileDay:
    orders: dict[str, str] = field(default_factory=dict)  #: order id → what the demo made of it
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    results: Counter[str] = field(default_factory=Counter)


async def run(bridge: Any, *, visits: int = 12, seed: int = 2026, timeout: float = 240) -> list[str]:
    """A small day of mobile-pay visits through the running bridge; the summary lines to print."""
    ch = Channels(bridge, seed=seed)
    started = time.monotonic()
    plan = ["pay", "confirm", "refund_all", "refund_parts", "legacy", "withdraw", "abandon", "reverse", "kiosk"]
    kinds = [plan[i % len(plan)] for i in range(max(visits, 1))]
    vs = [ch.new_visit(f"{20 + 7 * i}.{(i * 13) % 100:02d}", f"{5 + i}.50") for i in range(len(kinds))]
    await ch.his([e for v in vs for e in ch.events(v)])
    day = MobileDay()
    async with httpx.AsyncClient(timeout=40) as client:
        await asyncio.gather(*(ch.pending(client, v) for v in vs))
        waits = []
        for i, (v, kind) in enumerate(zip(vs, kinds)):
            who = {"legacy": "legacy", "kiosk": "kiosk"}.get(kind, "wechat" if i % 2 else "app")
            pay_now = kind not in ("confirm", "withdraw", "abandon", "reverse")
            order = await ch.order(client, v, f"D{ch.tag}-{i}", who=who, pay_now=pay_now)
            day.orders[order["order_id"]] = kind
            waits.append(_follow(ch, client, v, order["order_id"], kind, who, day))
        await asyncio.wait_for(asyncio.gather(*waits), timeout)
        day.seconds = time.monotonic() - started
    results = await ch.results()
    day.results = Counter(r.kind for r in results if r.his_visit_id.startswith(f"MPD{ch.tag}"))
    day.problems = ch.audit([r for r in results if r.his_visit_id.startswith(f"MPD{ch.tag}")])
    return _lines(day)


async def _follow(ch: Channels, client: httpx.AsyncClient, v: Visit, order_id: str, kind: str, who: str,
                  day: MobileDay) -> None:
    if kind == "confirm":
        await ch.until(client, order_id, ("awaiting_payment",), who=who)
        await ch.api(client, "POST", f"/mobilepay/orders/{order_id}/pay", {"acct_used_flag": "1"}, who=who)
    elif kind == "withdraw":
        await ch.until(client, order_id, ("awaiting_payment",), who=who)
        await ch.api(client, "POST", f"/mobilepay/orders/{order_id}/cancel", {}, who=who)
    elif kind == "reverse":
        await ch.until(client, order_id, ("awaiting_payment",), who=who)
        await ch.his([ch.reversal(v, "R2", "L2")])
    if kind in ("withdraw", "abandon", "reverse"):
        final = await ch.until(client, order_id, ("cancelled", "failed", "refused"), who=who)
        day.statuses[final["status"] + f" ({kind})"] += 1
        if kind == "reverse":  # the rest of the visit, paid by a new order
            again = await ch.order(client, v, f"{order_id}-rest", who=who)
            await ch.until(client, again["order_id"], ("paid",), who=who)
            day.statuses["paid (after a fee reversed)"] += 1
        return
    paid = await ch.until(client, order_id, ("paid", "failed", "refused"), who=who)
    day.statuses[f"{paid['status']} ({paid['version']})"] += 1
    if kind == "refund_all":
        await ch.api(client, "POST", f"/mobilepay/orders/{order_id}/refunds", {"refund_request_id": "RF1",
                                                                               "refd_type": "ALL"}, who=who)
        await ch.until(client, order_id, ("paid",), who=who, check=lambda o: o["refunds"] and
                       o["refunds"][0]["status"] in ("succeeded", "failed", "expired"))
        day.statuses["refunded (ALL)"] += 1
    elif kind == "refund_parts":
        for n, part in enumerate(("CASH", "HI")):
            await ch.api(client, "POST", f"/mobilepay/orders/{order_id}/refunds",
                         {"refund_request_id": f"RF-{part}", "refd_type": part},
                         who="window" if part == "HI" else who)
            await ch.until(client, order_id, ("paid",), who=who, check=lambda o, n=n: len(o["refunds"]) > n and
                           o["refunds"][n]["status"] in ("succeeded", "failed", "expired"))
        day.statuses["refunded (CASH, then HI at the window)"] += 1


def _lines(day: MobileDay) -> list[str]:
    lines = [f"mobile pay: {len(day.orders)} orders in {day.seconds:.1f}s — "
             + ", ".join(f"{k} {n}" for k, n in sorted(day.statuses.items()))]
    lines.append("  HIS told: " + (", ".join(f"{k} {n}" for k, n in sorted(day.results.items())) or "nothing"))
    if day.problems:
        lines.append("  PROBLEMS (HIS against the platform's ledger): " + "; ".join(day.problems[:10]))
    else:
        lines.append("  every mobile-pay result HIS got matches the platform's ledger; no order paid twice")
    return lines
