"""Imported as ``e2e.mobilepay.mobile_rig``. Mobile pay through real processes: the simulator (``yibao sim``, its
mobile-pay side calling back the worker), the registration and mobile-pay workers (``yibao worker …``) on the
session's real Kafka and a fresh PostgreSQL database, under a topic prefix of their own.

:class:`MobileRig` plays HIS (canonical events on ``yibao.his.events.v1``, as ingest publishes them) and the
channels (the worker's HTTP API, with the channel tokens of a channels file), reads what HIS got back
(``yibao.his.results.v1``) and the platform's ledger (the simulator's admin API), and checks what a hospital checks:
every HIS result matches the platform's ledger, nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from support.kafka import consume, produce
from support.stack import new_database
from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.deployment import Deployment, bind
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import chain_calls
from yibao.core.kafka import create_topics
from yibao.core.results import HisResult
from yibao.core.topics import CATALOG, topic
from yibao.envelope.crypto import generate_keypair
from yibao.fakedata.people import population
from yibao.hisevents.models import (
    ChargeLineAdded,
    ChargeLineReversed,
    EventSource,
    PatientRegistered,
    SettlementRequested,
)
from yibao.cli.mobilepay_demo import wechat_env
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge

__all__ = ["MobileRig", "rig_on_stack", "TOKENS", "SEED"]

SEED = 2026
TOKENS = {"wechat": "wechat-channel-token-0001", "app": "app-channel-token-000001", "legacy": "legacy-app-token-00001",
          "window": "his-window-token-000001", "kiosk": "kiosk-channel-token-0001"}
FAST = {
    "YIBAO_SIM_HOLD_S": "1",
    "YIBAO_SIM_CALLBACK_RETRY_INITIAL_S": "0.2",
    "YIBAO_SIM_CALLBACK_RETRY_MAX_S": "1",
    "YIBAO_SIM_CALLBACK_MAX_ATTEMPTS": "5",
    "YIBAO_SIM_CALLBACK_LATE_S": "6",
    "YIBAO_PLATFORM_RETRY_BACKOFF_S": "0.05",
    "YIBAO_MP_RETRY_BACKOFF_S": "0.05",
    "YIBAO_MP_READ_TIMEOUT_S": "5",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_REGISTRATION_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_REGISTRATION_CHAIN_LEASE_S": "10",
    "YIBAO_MOBILEPAY_CHAIN_BACKOFF_S": "0.1",
    "YIBAO_MOBILEPAY_CHAIN_BACKOFF_MAX_S": "1",
    "YIBAO_MOBILEPAY_CHAIN_MAX_ATTEMPTS": "40",
    "YIBAO_MOBILEPAY_CHAIN_LEASE_S": "10",
    "YIBAO_MOBILEPAY_CALLBACK_WAIT_S": "3",
    "YIBAO_MOBILEPAY_CONFIRM_POLL_S": "0.5",
    "YIBAO_MOBILEPAY_ORDER_TTL_S": "600",
}
_offsets = itertools.count(1)


@dataclasses.dataclass
class Visit:
    key: str
    patient: str
    person: Any
    lines: dict[str, ChargeLineAdded] = dataclasses.field(default_factory=dict)


def write_channels(path: Path) -> Path:
    path.write_text(json.dumps({"channels": [
        {"channel": "wechat-oa", "kind": "wechat", "version": "2.0", "rights": ["read", "pay", "refund", "identity"],
         "token": TOKENS["wechat"]},
        {"channel": "app", "kind": "app", "version": "2.0", "rights": ["read", "pay", "refund"], "token": TOKENS["app"]},
        {"channel": "legacy-app", "kind": "app", "version": "1.0", "rights": ["read", "pay", "refund"],
         "token": TOKENS["legacy"]},
        {"channel": "kiosk", "kind": "kiosk", "version": "2.0", "rights": ["read", "pay"], "token": TOKENS["kiosk"]},
        {"channel": "his-window", "kind": "window", "version": "2.0", "rights": ["read", "refund", "identity"],
         "token": TOKENS["window"]},
    ]}), encoding="utf-8")
    return path


class MobileRig:
    def __init__(self, bridge: LocalBridge, database_url: str, *, people_offset: int = 300) -> None:
        self.bridge = bridge
        self.database_url = database_url
        self._people = iter(population(SEED, 500)[people_offset:])
        self._visits = itertools.count(1)
        self.run_tag = uuid.uuid4().hex[:6].upper()
        self._engine: Engine | None = None
        self.keys: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.bridge.workers["mobilepay"].url

    # --- HIS ---------------------------------------------------------------------------------------------------

    def _base(self, v: Visit) -> dict[str, Any]:
        return {"event_id": f"evt-{uuid.uuid4().hex[:16]}", "his_visit_id": v.key, "visit_kind": "outpatient",
                "his_patient_id": v.patient, "occurred_at": clock.now(),
                "source": EventSource(topic="his.cdc", partition=0, offset=next(_offsets), table="T")}

    async def his(self, *events: Any) -> None:
        await produce(self.bridge.info.kafka_bootstrap,
                      [(topic("his_events", self.bridge.prefix), e.his_visit_id.encode(), e.to_json()) for e in events])

    def new_visit(self) -> Visit:
        person = next(self._people)
        n = next(self._visits)
        return Visit(f"MP{self.run_tag}{n:04d}", f"PAT{self.run_tag}{n:04d}", person)

    def registration(self, v: Visit, *, channel: str = "wechat", settle_choice: str = "insurance") -> PatientRegistered:
        p = v.person
        return PatientRegistered(**self._base(v), ipt_otp_no="MZ" + v.key, mdtrt_cert_type="02", mdtrt_cert_no=p.certno,
                                 psn_cert_type="01", certno=p.certno, psn_name=p.psn_name, insutype=p.insutype,
                                 med_type="11", begntime=clock.now(), dept_code="K01", dept_name="内科", caty="A03",
                                 atddr_no="D01", dr_name="医生甲", channel=channel,  # type: ignore[arg-type]
                                 settle_choice=settle_choice)  # type: ignore[arg-type]

    def line(self, v: Visit, sn: str, amount: str) -> ChargeLineAdded:
        event = ChargeLineAdded(**self._base(v), feedetl_sn=sn, fee_ocur_time=clock.now(), med_list_codg="XA01",
                                medins_list_codg="HXA01", medins_list_name="检查费", det_item_fee_sumamt=Decimal(amount),
                                cnt=Decimal("1"), pric=Decimal(amount), bilg_dept_codg="K01", bilg_dept_name="内科",
                                bilg_dr_codg="D01", bilg_dr_name="医生甲")
        v.lines[sn] = event
        return event

    def reversal(self, v: Visit, sn: str, of: str) -> ChargeLineReversed:
        o = v.lines[of]
        return ChargeLineReversed(**self._base(v), feedetl_sn=sn, init_feedetl_sn=of, fee_ocur_time=clock.now(),
                                  med_list_codg=o.med_list_codg, medins_list_codg=o.medins_list_codg,
                                  det_item_fee_sumamt=-o.det_item_fee_sumamt, cnt=-o.cnt, pric=o.pric)

    def counter(self, v: Visit, request_id: str, total: str) -> SettlementRequested:
        return SettlementRequested(**self._base(v), his_request_id=request_id, medfee_sumamt=Decimal(total))

    async def visit(self, *amounts: str, channel: str = "wechat", settle_choice: str = "insurance") -> Visit:
        """A registered outpatient visit with its charge lines, once mobile pay shows them pending."""
        v = self.new_visit()
        events: list[Any] = [self.registration(v, channel=channel, settle_choice=settle_choice)]
        events += [self.line(v, f"L{i}", a) for i, a in enumerate(amounts, start=1)]
        await self.his(*events)
        return v

    async def visits(self, *specs: tuple[str, ...]) -> list[Visit]:
        out = [self.new_visit() for _ in specs]
        events: list[Any] = []
        for v, amounts in zip(out, specs):
            events.append(self.registration(v))
            events += [self.line(v, f"L{i}", a) for i, a in enumerate(amounts, start=1)]
        await self.his(*events)
        return out

    # --- the channels ----------------------------------------------------------------------------------------

    def _auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[who]}"}

    async def api(self, method: str, path: str, body: Any = None, *, who: str = "app",
                  params: dict[str, Any] | None = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=40) as client:
            return await client.request(method, self.url + path, json=body, headers=self._auth(who), params=params)

    async def pending(self, v: Visit, *, who: str = "app", lines: int | None = None, timeout: float = 90
                      ) -> dict[str, Any]:
        """The visit as the channel sees it, once its lines are pending (and registration done when asked)."""
        deadline = time.monotonic() + timeout
        want = lines if lines is not None else len(v.lines)
        while True:
            r = await self.api("GET", f"/mobilepay/patients/{v.patient}/pending", who=who)
            assert r.status_code == 200, r.text
            found = [x for x in r.json()["visits"] if x["his_visit_id"] == v.key]
            if found and len(found[0]["lines"]) >= want and found[0]["registered"]:
                return found[0]
            assert time.monotonic() < deadline, f"visit {v.key} not pending in time: {r.text}"
            await asyncio.sleep(0.2)

    async def order(self, v: Visit, channel_order_id: str, *, who: str = "app", pay_now: bool = True,
                    **extra: Any) -> httpx.Response:
        body = {"channel_order_id": channel_order_id, "his_visit_id": v.key, "his_patient_id": v.patient,
                "pay_auth_no": f"AUTH-{channel_order_id}", "pay_now": pay_now, **extra}
        body = {k: val for k, val in body.items() if val is not None}
        return await self.api("POST", "/mobilepay/orders", body, who=who)

    async def get(self, order_id: str, *, who: str = "app") -> dict[str, Any]:
        r = await self.api("GET", f"/mobilepay/orders/{order_id}", who=who)
        assert r.status_code == 200, r.text
        return r.json()["order"]

    async def until(self, order_id: str, *statuses: str, who: str = "app", timeout: float = 90,
                    check: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = await self.get(order_id, who=who)
            if order["status"] in statuses and (check is None or check(order)):
                return order
            assert time.monotonic() < deadline, f"order {order_id} is {order['status']} ({order.get('reason')})"
            await asyncio.sleep(0.2)

    # --- what HIS got, what the platform holds ----------------------------------------------------------------

    async def results(self, *, until: Any = None, timeout: float = 60) -> list[HisResult]:
        deadline = time.monotonic() + timeout
        while True:
            records = await consume(self.bridge.info.kafka_bootstrap, [topic("his_results", self.bridge.prefix)],
                                    idle=1.0, timeout=10)
            results = [HisResult.model_validate_json(r.value) for r in records]
            mine = [r for r in results if r.service == "mobilepay"]
            if until is None or until(mine):
                return mine
            assert time.monotonic() < deadline, f"the HIS results awaited never came: {[(r.kind, r.his_visit_id) for r in mine]}"

    def orders(self) -> dict[str, dict[str, Any]]:
        return {o["pay_ord_id"]: o for o in self.bridge.admin("orders")}

    def settlements(self) -> dict[str, dict[str, Any]]:
        return {s["setl_id"]: s for s in self.bridge.admin("settlements")}

    def audit(self, results: list[HisResult]) -> list[str]:
        """Every disagreement between what HIS was told and the platform's ledger; every double payment."""
        problems: list[str] = []
        orders, settlements = self.orders(), self.settlements()
        seen: dict[str, int] = {}
        for r in results:
            if r.kind not in ("settled", "refunded"):
                continue
            seen[r.message_id] = seen.get(r.message_id, 0) + 1
            if r.kind == "settled" and (r.detail or {}).get("cash_only"):
                continue  # a CASH_ONLY WeChat order: no 医保 order behind it (checked against WeChat's ledger)
            pay_ord_id = (r.detail or {}).get("pay_ord_id")
            order = orders.get(pay_ord_id)
            if order is None:
                problems.append(f"{r.kind} {r.his_visit_id}: no platform order {pay_ord_id}")
                continue
            if r.kind == "settled":
                s = settlements.get(r.setl_id or "")
                if s is None or s["infno"] != "6202":
                    problems.append(f"settled {r.his_visit_id}: no national settlement {r.setl_id}")
                    continue
                if Decimal(str(order["amounts"]["feeSumamt"])) != r.split.medfee_sumamt or \
                        Decimal(str(s["amounts"]["fund_pay_sumamt"])) != r.split.fund_pay_sumamt:
                    problems.append(f"settled {r.his_visit_id}: amounts differ from the platform's")
            elif not (r.detail or {}).get("cash_only"):
                s = settlements.get(r.setl_id or "")
                if s is None or s["refd_setl_flag"] != "1" or s["orig_setl_id"] != r.orig_setl_id:
                    problems.append(f"refunded {r.his_visit_id}: no national cancellation {r.setl_id}")
        problems += [f"HIS told twice: {m}" for m, n in seen.items() if n > 1]
        settled_per_order: dict[str, int] = {}
        for r in results:
            if r.kind == "settled":
                pid = (r.detail or {}).get("pay_ord_id") or ""
                settled_per_order[pid] = settled_per_order.get(pid, 0) + 1
        problems += [f"order {p} settled {n} times for HIS" for p, n in settled_per_order.items() if n > 1]
        paid_per_med_org: dict[str, int] = {}
        for o in orders.values():
            if o["status"] in ("4", "9", "10", "11"):
                base = o["med_org_ord"].rsplit("-", 1)[0]
                paid_per_med_org[base] = paid_per_med_org.get(base, 0) + 1
        problems += [f"order {b} paid {n} times on the platform" for b, n in paid_per_med_org.items() if n > 1]
        return problems

    # --- the database --------------------------------------------------------------------------------------------

    @property
    def db(self) -> Engine:
        if self._engine is None:
            # bound to this rig's deployment, as the workers are: chain rows are under the prefixed service names
            self._engine = bind(make_engine(self.database_url), Deployment(prefix=self.bridge.prefix))
        return self._engine

    def calls(self, infno: str) -> list[tuple[str, str, str | None]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(chain_calls.c.visit_key, chain_calls.c.status, chain_calls.c.resolution)
                                .where(chain_calls.c.service == Deployment.of(conn).scoped("mobilepay"),
                                       chain_calls.c.infno == infno)
                                .order_by(chain_calls.c.id)).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def wait_for_call_in_flight(self, infno: str, *, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = [visit for visit, status, _ in self.calls(infno) if status == "sent"]
            if sent:
                return sent[0]
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {infno} in flight within {timeout:.0f}s")

    def explain(self) -> str:
        return "\n".join(f"--- {name}.log\n{w.log_tail(25)}" for name, w in self.bridge.workers.items())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def rig_on_stack(stack: Stack, tmp: Path, *, extra_env: dict[str, str] | None = None,
                 services: tuple[str, ...] = ("registration", "mobilepay"), people_offset: int = 300
                 ) -> Iterator[MobileRig]:
    url = new_database(stack, tmp)
    upgrade(url)
    prefix = f"mp{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    asyncio.run(create_topics(info.kafka_bootstrap, [(spec.full_name(prefix), spec.partitions, {})
                                                     for spec in CATALOG]))
    hospital_private, hospital_public = generate_keypair()
    platform_private, platform_public = generate_keypair()
    bridge = LocalBridge(info, tmp, prefix=prefix, sim_seed=SEED, services=services, sim_population=500)
    port = bridge._ports["mobilepay"]
    bridge.extra_env = {
        **FAST,
        "YIBAO_SIM_PLATFORM_PRIVATE_KEY_HEX": platform_private, "YIBAO_SIM_PLATFORM_PUBLIC_KEY_HEX": platform_public,
        "YIBAO_SIM_MP_HOSPITAL_PUBLIC_KEY_HEX": hospital_public,
        "YIBAO_SIM_CALLBACK_URL": f"http://127.0.0.1:{port}/mobilepay/callback",
        "YIBAO_MP_BASE_URL": bridge.sim_url, "YIBAO_MP_PRIVATE_KEY": hospital_private,
        "YIBAO_MP_PLATFORM_PUBLIC_KEY": platform_public,
        "YIBAO_MOBILEPAY_CHANNELS_FILE": str(write_channels(tmp / "channels.json")),
        **wechat_env(bridge.sim_url, port),
        **(extra_env or {}),
    }
    bridge.start()
    rig = MobileRig(bridge, url, people_offset=people_offset)
    rig.keys = {"hospital_private": hospital_private, "platform_public": platform_public}
    try:
        yield rig
    finally:
        rig.close()
        bridge.stop()

