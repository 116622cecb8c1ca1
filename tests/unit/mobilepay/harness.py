"""Imported as ``unit.mobilepay.harness``. The mobile-pay chain on SQLite, driven by the real ChainEngine against the
simulator's mobile platform in-process, with helpers that play the other parties: HIS (canonical events),
registration (its VisitFact), the channel (orders, confirmations, refunds — as the HTTP API absorbs them) and the
platform's callbacks; and read what mobile pay said (the outbox)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from yibao.chains.engine import ChainEngine, EngineSettings
from yibao.core import clock
from yibao.core.db.schema import chain_calls, chain_visits, outbox
from yibao.core.results import HisResult, VisitFact, stable_id
from yibao.envelope.mobilepay.catalog import load_catalog
from yibao.core.deployment import Deployment
from yibao.mobilepay import absorb, store
from yibao.mobilepay.chain import MobilePayChain
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.models import CallbackReceived
from yibao.mobilepay.state import MobilePayState, Order, Refund, order_id_for, refund_id_for
from yibao.simulator import Simulator

from unit.mobilepay import events as ev
from unit.mobilepay.standin import SimMobileClient

__all__ = ["Harness", "Visit"]

_ids = itertools.count(1)


def _state(conn: Any, text: str) -> MobilePayState:
    """A stored state as the service reads it (opened with the deployment's data key)."""
    return MobilePayState.model_validate_json(Deployment.of(conn).cipher.open(text))


class Visit:
    def __init__(self, key: str, patient: str, person: Any) -> None:
        self.key, self.patient, self.person = key, patient, person
        self.lines: dict[str, Any] = {}


class Harness:
    def __init__(self, db: Engine, sim: Simulator, *, engine: dict[str, Any] | None = None, **config: Any) -> None:
        self.db = db
        self.sim = sim
        self.client = SimMobileClient(sim)
        self.catalog = load_catalog()
        self.config = ChainConfig(**{"callback_wait": _dt.timedelta(seconds=30), **config})
        self.chain = MobilePayChain(self.config, catalog=self.catalog)
        self.engine = ChainEngine(self.chain, db=self._run_db, client=self.client, catalog=self.catalog,
                                  settings=EngineSettings(**{"retry_backoff_s": 0.0, "max_attempts": 6,
                                                             **(engine or {})}))
        self._persons = iter([p for p in sim.ledger.persons.values() if p.balance > 100])
        self._visits = itertools.count(1)

    async def _run_db(self, fn):  # type: ignore[no-untyped-def]
        def unit():  # type: ignore[no-untyped-def]
            with self.db.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(unit)

    def absorb(self, absorption: Any) -> bool:
        with self.db.begin() as conn:
            flags, after = self.engine.absorb_in(conn, [absorption])
        for fn in after:
            fn()
        return flags[0]

    async def drain(self) -> None:
        await self.engine.drain(timeout=30)

    # --- HIS and registration -----------------------------------------------------------------------------------

    def his(self, event: Any) -> bool:
        return self.absorb(absorb.absorb_his_event(event.to_json()))

    def visit(self, *lines: str, registered: bool = True, settle_choice: str = "insurance",
              channel: str = "wechat") -> Visit:
        person = next(self._persons)
        n = next(self._visits)
        v = Visit(f"MV{n:05d}", f"P{n:05d}", person)
        self.his(ev.registered(v.key, v.patient, person, channel=channel, settle_choice=settle_choice))
        for i, amount in enumerate(lines, start=1):
            self.line(v, f"L{i}", amount)
        if registered:
            self.register(v, self_pay=settle_choice == "self_pay")
        return v

    def line(self, v: Visit, sn: str, amount: str) -> None:
        event = ev.line(v.key, v.patient, sn, amount)
        v.lines[sn] = event
        self.his(event)

    def register(self, v: Visit, *, self_pay: bool = False) -> None:
        who = v.person
        fact = VisitFact(message_id=stable_id("test", v.key, "registered", next(_ids)), his_visit_id=v.key,
                         visit_kind="outpatient", kind="registered", psn_no=who.psn_no, insutype=who.insutype,
                         insuplc_admdvs=who.insuplc_admdvs, med_type="11", self_pay=self_pay)
        self.absorb(absorb.absorb_visit_fact(fact.to_json()))

    # --- the channel ----------------------------------------------------------------------------------------------

    def wechat_notice(self, v: Visit, order_id: str, status: str | None, n: int = 1) -> None:
        self.absorb(absorb.wechat_notified(visit_key=v.key, order_id=order_id, notification_id=f"{order_id}-{n}",
                                           mix_pay_status=status, self_pay_status=None))

    def order(self, v: Visit, channel_order_id: str, *, channel: str = "app", kind: str = "app", version: str = "2.0",
              sns: list[str] | None = None, total: str | None = None, pay_now: bool = False,
              pay_type: str = "insurance", acct: str = "0", patient: str | None = None) -> str:
        order_id = order_id_for(channel, channel_order_id)
        now = clock.now()
        order = Order(id=order_id, channel=channel, channel_kind=kind, channel_order_id=channel_order_id,
                      his_patient_id=patient or v.patient, message_id=f"order:{order_id}",
                      version=version, pay_type=pay_type, asked_sns=sns,  # type: ignore[arg-type]
                      asked_total=Decimal(total) if total else None, acct_used_flag=acct,  # type: ignore[arg-type]
                      pay_auth_no="AUTH-" + channel_order_id, auto_pay=pay_now, created_at=now, updated_at=now)
        self.absorb(absorb.order_requested(visit_key=v.key, order=order))
        return order_id

    def pay(self, v: Visit, order_id: str, *, acct: str | None = None) -> None:
        self.absorb(absorb.pay_requested(visit_key=v.key, order_id=order_id, request_id="pay", acct_used_flag=acct,
                                         pay_auth_no=None, operator=None))

    def cancel(self, v: Visit, order_id: str) -> None:
        self.absorb(absorb.cancel_requested(visit_key=v.key, order_id=order_id))

    def refund(self, v: Visit, order_id: str, request_id: str, refd_type: str = "ALL") -> str:
        refund_id = refund_id_for(order_id, "app", request_id)
        self.absorb(absorb.refund_requested(visit_key=v.key, order_id=order_id, refund=Refund(
            id=refund_id, request_id=request_id, channel="app", message_id=f"refund:{refund_id}",
            refd_type=refd_type, cash=Decimal("0"), acct=Decimal("0"), fund=Decimal("0"),  # type: ignore[arg-type]
            asked_at=clock.now())))
        return refund_id

    # --- the platform's callbacks ---------------------------------------------------------------------------------

    def callbacks(self, *, partial: bool = False, keep: bool = False) -> list[CallbackReceived]:
        """Deliver the callbacks the platform has queued (settled 2.0 orders), as the HTTP endpoint would."""
        sent = []
        while self.sim.mobile.settled:
            order = self.sim.mobile.settled.pop(0)
            sent.append(self.callback_of(order.pay_ord_id, partial=partial))
        return sent

    def callback_of(self, pay_ord_id: str, *, partial: bool = False, deliver: bool = True) -> CallbackReceived:
        order = self.sim.ledger.orders[pay_ord_id]
        data = self.sim.mobile.callback_data(order, partial=partial)
        received = CallbackReceived(
            message_id=absorb.callback_message_id(data["payOrdId"], data["ordStas"], data["traceTime"]),
            pay_ord_id=data["payOrdId"], ord_stas=data["ordStas"], trace_time=data["traceTime"],
            med_org_ord=data.get("medOrgOrd"), fee_sumamt=data.get("feeSumamt"), ownpay_amt=data.get("ownpayAmt"),
            psn_acct_pay=data.get("psnAcctPay"), fund_pay=data.get("fundPay"), hi_doc_sn=data.get("hiDocSn") or None,
            hi_rgst_sn=data.get("hiRgstSn") or None, hi_chrg_time=data.get("hiChrgTime"))
        if deliver:
            key = self._visit_of(pay_ord_id)
            self.absorb(absorb.callback_received(visit_key=key, notice=received))
        return received

    def _visit_of(self, pay_ord_id: str) -> str:
        with self.db.connect() as conn:
            for key, text in conn.execute(select(chain_visits.c.visit_key, chain_visits.c.state)
                                          .where(chain_visits.c.service == store.scope_of(conn))):
                if _state(conn, text).order_by_pay_ord_id(pay_ord_id) is not None:
                    return key
        raise AssertionError(f"no visit holds {pay_ord_id}")

    # --- reading ----------------------------------------------------------------------------------------------

    def state(self, v: Visit) -> MobilePayState:
        with self.db.connect() as conn:
            text = conn.execute(select(chain_visits.c.state).where(chain_visits.c.service == store.scope_of(conn),
                                                                   chain_visits.c.visit_key == v.key)).scalar_one()
            return _state(conn, text)

    def status(self, v: Visit) -> str:
        with self.db.connect() as conn:
            return conn.execute(select(chain_visits.c.status).where(chain_visits.c.service == store.scope_of(conn),
                                                                    chain_visits.c.visit_key == v.key)).scalar_one()

    def get(self, v: Visit, order_id: str) -> Order:
        order = self.state(v).order(order_id)
        assert order is not None
        return order

    def results(self, v: Visit | None = None) -> list[HisResult]:
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "yibao.his.results.v1")
                                .order_by(outbox.c.id)).scalars().all()
            out = [HisResult.model_validate_json(Deployment.of(conn).cipher.open(r)) for r in rows]
        return [r for r in out if v is None or r.his_visit_id == v.key]

    def journal(self, v: Visit, infno: str | None = None) -> list[tuple[str, str, str | None]]:
        with self.db.connect() as conn:
            q = select(chain_calls.c.infno, chain_calls.c.status, chain_calls.c.resolution).where(
                chain_calls.c.service == store.scope_of(conn), chain_calls.c.visit_key == v.key)
            if infno:
                q = q.where(chain_calls.c.infno == infno)
            return [tuple(r) for r in conn.execute(q.order_by(chain_calls.c.id))]  # type: ignore[misc]

    def platform_order(self, order: Order) -> Any:
        return self.sim.ledger.orders[order.pay_ord_id] if order.pay_ord_id else None


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)
