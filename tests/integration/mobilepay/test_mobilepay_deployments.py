"""Two deployments (topic prefixes) sharing one PostgreSQL database: mobile pay's orders, visits and audit rows carry
the deployment's scope (the scoped service name, as ``chain_visits.service``), so neither deployment sees — nor
overwrites — the other's, even where HIS's visit ids, patients and the channels' order ids are the same."""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from yibao.core import clock
from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import mobilepay_audit, mobilepay_orders, mobilepay_visits, platform_calls
from yibao.core.deployment import Deployment, bind
from yibao.mobilepay import store
from yibao.reconciliation.mobile import order_ref, orders_of_period

from unit.mobilepay.harness import Harness
from unit.mobilepay.standin import make_simulator

pytestmark = [pytest.mark.integration]


async def test_two_deployments_on_one_database_never_see_each_others_orders_visits_or_audit(
        fresh_db_url: str) -> None:
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    tag = uuid.uuid4().hex[:6]
    pa, pb = f"a{tag}.", f"b{tag}."
    try:
        a = Harness(bind(base, Deployment(prefix=pa)), make_simulator())
        b = Harness(bind(base, Deployment(prefix=pb)), make_simulator())
        va, vb = a.visit("30.00"), b.visit("12.00", "8.00")
        assert (va.key, va.patient) == (vb.key, vb.patient), "the same HIS ids in both deployments"
        first = a.order(va, "SAME", pay_now=True)
        second = b.order(vb, "SAME")  # the same channel order id: the same order id
        assert first == second
        other = b.visit("5.00")  # only deployment b has this visit pending
        await a.drain()
        await b.drain()
        a.callbacks()
        await a.drain()
        assert a.get(va, first).phase == "settled" and b.get(vb, second).phase == "uploaded"

        with a.db.begin() as conn:
            store.audit(conn, actor="app", role="pay", action="order", outcome="ok", source="test", order_id=first)
        with b.db.begin() as conn:
            store.audit(conn, actor="kiosk", role="read", action="pending_fees", outcome="ok", source="test")

        with a.db.connect() as ca, b.db.connect() as cb:
            mine, theirs = store.order_row(ca, first), store.order_row(cb, second)
            assert mine is not None and theirs is not None
            assert (mine.phase, mine.total) == ("settled", Decimal("30.00"))
            assert (theirs.phase, theirs.total) == ("uploaded", Decimal("20.00"))
            assert mine.pay_ord_id and theirs.pay_ord_id
            found = store.order_by_pay_ord_id(cb, mine.pay_ord_id)
            assert found is None or found.total == Decimal("20.00"), "b never finds a's order by its payOrdId"
            assert store.order_by_pay_ord_id(ca, mine.pay_ord_id) == mine
            assert store.phase_counts(ca) == {"settled": 1} and store.phase_counts(cb) == {"uploaded": 1}
            assert store.visits_of_patient(ca, other.patient) == []
            assert store.visits_of_patient(cb, other.patient) == [(other.key, 1, Decimal("5.00"))]
            state_a, state_b = store.load_state(ca, va.key), store.load_state(cb, vb.key)
            assert state_a is not None and state_a.order(first).total == Decimal("30.00")
            assert state_b is not None and state_b.order(second).total == Decimal("20.00")
            assert store.load_state(ca, other.key) is None
            assert [r["actor"] for r in store.audit_rows(ca)] == ["app"]
            assert [r["actor"] for r in store.audit_rows(cb)] == ["kiosk"]
            scopes = {t.name: set(ca.execute(select(t.c.scope).distinct()).scalars())
                      for t in (mobilepay_orders, mobilepay_visits, mobilepay_audit)}
        assert scopes == {t: {f"{pa}mobilepay", f"{pb}mobilepay"}
                          for t in ("mobilepay_orders", "mobilepay_visits", "mobilepay_audit")}
    finally:
        base.dispose()


def test_the_mobile_reconciliation_of_a_deployment_reconciles_only_its_own_orders(fresh_db_url: str) -> None:
    """The orders the mobile reconciliation asks 6301 about come from the call log of its own deployment's mobile-pay
    service (``platform_calls.service`` = the scoped name), never from another deployment's calls."""
    upgrade(fresh_db_url)
    base = make_engine(fresh_db_url)
    tag = uuid.uuid4().hex[:6]
    pa, pb = f"a{tag}.", f"b{tag}."
    a, b = bind(base, Deployment(prefix=pa)), bind(base, Deployment(prefix=pb))
    now = clock.now()
    try:
        with base.begin() as conn:
            for n, prefix in enumerate((pa, pb)):
                conn.execute(insert(platform_calls).values(
                    service=f"{prefix}mobilepay", platform="mobilepay", infno="6201", msgid=f"M{tag}{n}",
                    visit_key="MV00001", started_at=now, outcome="success",
                    input_masked=json.dumps({"data": {"medOrgOrd": f"ORD{n}-1", "insuCode": "440100"}}),
                    output_masked=json.dumps({"payOrdId": f"PAY{n}", "payToken": f"TOK{n}"})))
        start, end = now - _dt.timedelta(hours=1), now + _dt.timedelta(hours=1)
        with a.connect() as ca, b.connect() as cb:
            assert [r.pay_ord_id for r in orders_of_period(ca, start, end)] == ["PAY0"]
            assert [r.pay_ord_id for r in orders_of_period(cb, start, end)] == ["PAY1"]
            assert order_ref(ca, "PAY1") is None and order_ref(cb, "PAY0") is None
            ref = order_ref(cb, "PAY1")
            assert ref is not None and (ref.pay_token, ref.insu_code) == ("TOK1", "440100")
    finally:
        base.dispose()
