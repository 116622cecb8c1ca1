"""An order's life through the real engine: 6201 → 6202 → callback → HIS, and everything that can go otherwise."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from yibao.core.money import money

from unit.mobilepay import events as ev
from unit.mobilepay.harness import Harness


async def _paid(h: Harness, *amounts: str, pay_now: bool = True, **kw):  # type: ignore[no-untyped-def]
    v = h.visit(*amounts)
    order_id = h.order(v, "C1", pay_now=pay_now, **kw)
    await h.drain()
    return v, order_id


async def test_an_order_is_uploaded_paid_and_settled_by_the_platforms_callback(h: Harness) -> None:
    v, order_id = await _paid(h, "30.00", "12.50")
    order = h.get(v, order_id)
    assert order.phase == "paid" and h.client.infnos() == ["6201", "6202"]
    assert h.results(v) == []  # HIS hears of it only from a final answer
    h.callbacks()
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.settled_by == "callback"
    [result] = h.results(v)
    platform = h.platform_order(order)
    assert result.kind == "settled" and result.service == "mobilepay"
    assert result.setl_id == platform.setl_id and result.mdtrt_id == platform.mdtrt_id
    assert result.split.medfee_sumamt == Decimal("42.50") == platform.amounts["feeSumamt"]
    assert result.split.fund_pay_sumamt == platform.amounts["fundPay"]
    assert result.split.psn_cash_pay == platform.amounts["ownPayAmt"]
    assert result.detail["channel"] == "mobilepay-2.0" and result.detail["lines"] == ["L1", "L2"]
    assert result.detail["pay_ord_id"] == order.pay_ord_id
    assert {line.status for line in h.state(v).lines.values()} == {"paid"}


async def test_the_same_channel_order_twice_is_one_platform_order(h: Harness) -> None:
    v = h.visit("10.00")
    first = h.order(v, "SAME", pay_now=True)
    again = h.order(v, "SAME", pay_now=True)
    await h.drain()
    assert first == again and len(h.state(v).orders) == 1
    assert h.client.infnos().count("6201") == 1 and len(h.sim.ledger.orders) == 1


async def test_an_order_waits_for_the_patients_confirmation_then_pays(h: Harness) -> None:
    v, order_id = await _paid(h, "20.00", pay_now=False)
    assert h.get(v, order_id).phase == "uploaded" and h.client.infnos() == ["6201"]
    h.pay(v, order_id, acct="1")
    await h.drain()
    assert h.get(v, order_id).phase == "paid"
    assert h.platform_order(h.get(v, order_id)).request.get("medOrgOrd") == h.get(v, order_id).med_org_ord


async def test_no_callback_in_time_is_confirmed_by_6301(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "15.00")
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.settled_by == "6301"
    assert h.client.infnos() == ["6201", "6202", "6301"]
    assert [r.kind for r in h.results(v)] == ["settled"]


async def test_a_callback_without_the_final_status_is_confirmed_by_6301(h: Harness) -> None:
    v, order_id = await _paid(h, "15.00")
    h.callbacks(partial=True)
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.settled_by == "6301"
    assert h.client.infnos()[-1] == "6301"


async def test_a_late_callback_after_6301_changes_nothing(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "15.00")
    assert h.get(v, order_id).phase == "settled"
    h.callbacks()  # the callback the platform queued arrives after all
    await h.drain()
    assert [r.kind for r in h.results(v)] == ["settled"]
    assert h.client.infnos() == ["6201", "6202", "6301"]


async def test_a_duplicated_callback_is_one_event(h: Harness) -> None:
    v, order_id = await _paid(h, "15.00")
    order = h.get(v, order_id)
    h.callback_of(order.pay_ord_id)
    h.callback_of(order.pay_ord_id)
    await h.drain()
    assert [r.kind for r in h.results(v)] == ["settled"]
    assert len(h.get(v, order_id).callbacks) == 1


async def test_a_lost_6202_answer_is_resolved_by_6301_and_never_paid_twice(h: Harness) -> None:
    v = h.visit("25.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6202", "lose")
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.settled_by == "6301"
    assert h.client.infnos() == ["6201", "6202", "6301"]
    assert h.journal(v, "6202") == [("6202", "resolved", "adopted")]
    assert len([s for s in h.sim.ledger.settlements.values() if s.infno == "6202"]) == 1
    assert [r.kind for r in h.results(v)] == ["settled"]


async def test_a_6202_that_never_reached_the_platform_is_sent_again_after_6301(h: Harness) -> None:
    v = h.visit("25.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6202", "reset")
    await h.drain()
    assert h.client.infnos() == ["6201", "6301", "6202"]
    assert h.journal(v, "6202") == [("6202", "resolved", "absent"), ("6202", "ok", None)]
    assert h.get(v, order_id).phase == "paid"


async def test_a_crash_mid_6202_resumes_by_6301(h: Harness) -> None:
    v = h.visit("25.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6202", "crash")
    try:
        await h.drain()
    except BaseException:  # noqa: BLE001 - the driver was cancelled mid-call: the journal stays "sent"
        pass
    # a new engine (the restarted worker) finds the call journalled and resolves it
    h2 = Harness(h.db, h.sim)
    h2.client = h.client
    h2.engine.client = h.client
    await h2.engine.drain(timeout=60)
    assert h2.get(v, order_id).phase == "settled"
    assert ("6202", "resolved", "adopted") in h2.journal(v, "6202")
    assert len([s for s in h.sim.ledger.settlements.values() if s.infno == "6202"]) == 1


async def test_a_lost_6201_answer_uploads_again_under_the_next_med_org_ord(h: Harness) -> None:
    v = h.visit("10.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6201", "lose")
    await h.drain()
    order = h.get(v, order_id)
    assert order.upload_no == 2 and order.med_org_ord.endswith("-2")
    assert h.client.infnos()[:3] == ["6201", "6201", "6201"]  # lost, refused as a repeat, uploaded anew
    assert order.phase == "paid"
    orphans = [o for o in h.sim.ledger.orders.values() if o.med_org_ord.endswith("-1")]
    assert len(orphans) == 1 and orphans[0].status == "1"  # never paid


async def test_an_unconfirmed_order_is_revoked_after_its_time(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(order_ttl=_dt.timedelta(0))
    v, order_id = await _paid(h, "10.00", pay_now=False)
    order = h.get(v, order_id)
    assert order.phase == "revoked" and h.client.infnos() == ["6201", "6401"]
    assert h.platform_order(order).status == "7"
    assert [line.status for line in h.state(v).lines.values()] == ["pending"]


async def test_a_fee_his_reverses_before_payment_revokes_the_upload(h: Harness) -> None:
    v, order_id = await _paid(h, "10.00", "5.00", pay_now=False)
    h.his(ev.reversal(v.key, v.patient, "R1", v.lines["L2"]))
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "revoked" and "L2" in (order.reason or "")
    lines = h.state(v).lines
    assert (lines["L1"].status, lines["L2"].status) == ("pending", "ordered") or lines["L1"].status == "pending"
    again = h.order(v, "C2", pay_now=True)
    await h.drain()
    assert h.get(v, again).sns == ["L1"] and h.get(v, again).total == Decimal("10.00")


async def test_a_refused_order_names_its_reason(h: Harness) -> None:
    v = h.visit("10.00")
    order_id = h.order(v, "C1", sns=["L9"])
    assert (h.get(v, order_id).phase, h.get(v, order_id).reason_code) == ("refused", "line_not_pending")
    changed = h.order(v, "C2", total="9.99")
    assert h.get(v, changed).reason_code == "total_changed"
    other = h.order(v, "C3", patient="SOMEONE-ELSE")
    assert h.get(v, other).reason_code == "wrong_patient"


async def test_a_self_pay_visit_is_never_paid_by_insurance(h: Harness) -> None:
    v = h.visit("10.00", settle_choice="self_pay")
    order_id = h.order(v, "C1", pay_now=True)
    await h.drain()
    assert h.get(v, order_id).reason_code == "self_pay_visit" and h.client.infnos() == []


async def test_the_counter_settling_the_visit_revokes_unpaid_uploads(h: Harness) -> None:
    v, order_id = await _paid(h, "10.00", pay_now=False)
    h.his(ev.counter(v.key, v.patient, "S1", "10.00"))
    await h.drain()
    assert h.get(v, order_id).phase == "revoked"
    assert h.state(v).lines["L1"].status == "counter"


async def test_a_1_0_order_gets_no_callback_and_is_confirmed_by_6301(h: Harness) -> None:
    v = h.visit("12.00")
    order_id = h.order(v, "C1", pay_now=True, version="1.0")
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.settled_by == "6301"
    assert h.platform_order(order).version == "1.0" and h.sim.mobile.settled == []
    [result] = h.results(v)
    assert result.detail["channel"] == "mobilepay-1.0"


async def test_refunds_all_cash_and_hi(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "80.00", "50.00")
    order = h.get(v, order_id)
    assert order.own_pay_amt and order.own_pay_amt > 0 and order.fund_pay and order.fund_pay > 0
    h.refund(v, order_id, "R-CASH", "CASH")
    await h.drain()
    h.refund(v, order_id, "R-HI", "HI")
    await h.drain()
    order = h.get(v, order_id)
    assert [r.phase for r in order.refunds] == ["succeeded", "succeeded"]
    assert h.platform_order(order).status == "9"
    kinds = [(r.kind, (r.detail or {}).get("refd_type")) for r in h.results(v)]
    assert kinds == [("settled", None), ("refunded", "CASH"), ("refunded", "HI")]
    cash, hi = h.results(v)[1:]
    assert cash.split.psn_cash_pay == -order.own_pay_amt and cash.detail["cash_only"] is True
    assert hi.setl_id == order.refunds[1].hi_doc_sn and hi.split.medfee_sumamt == -order.fee_sumamt
    again = h.refund(v, order_id, "R-ALL", "ALL")
    await h.drain()
    refused = h.get(v, order_id).refund(again)
    assert refused.phase == "failed" and h.results(v)[-1].kind == "rejected"


async def test_a_lost_refund_answer_is_resolved_by_6301(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "40.00")
    h.client.fail("6203", "lose")
    h.refund(v, order_id, "R1")
    await h.drain()
    order = h.get(v, order_id)
    assert order.refunds[0].phase == "succeeded" and h.platform_order(order).status == "9"
    assert h.journal(v, "6203") == [("6203", "resolved", "adopted")]
    assert [r.kind for r in h.results(v)] == ["settled", "refunded"]


async def test_an_expired_refund_is_told_and_a_new_one_may_follow(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "40.00")
    h.client.fail("6203", "expire")
    h.refund(v, order_id, "R1")
    await h.drain()
    assert h.get(v, order_id).refunds[0].phase == "expired"
    assert h.results(v)[-1].reason_code == "refund_expired"
    h.refund(v, order_id, "R2")
    await h.drain()
    assert h.get(v, order_id).refunds[1].phase == "succeeded"


async def test_money_is_never_a_float_and_adds_up(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    v, order_id = await _paid(h, "0.10", "0.20")
    order = h.get(v, order_id)
    assert order.total == Decimal("0.30")
    assert money(order.own_pay_amt + order.psn_acct_pay + order.fund_pay) == order.fee_sumamt


async def test_an_order_in_doubt_is_parked_and_his_is_told(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    h.engine.settings.max_attempts = 3
    v = h.visit("25.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6202", "lose")
    h.client.fail("6301", "transport", "transport", "transport", "transport")
    await h.drain()
    assert h.status(v) == "parked"
    [parked] = h.results(v)
    assert parked.kind == "parked" and order_id in (parked.reason or "")


async def test_an_order_refunded_by_reconciliation_ends_without_telling_his_again(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(callback_wait=_dt.timedelta(0))
    h.engine.settings.max_attempts = 3
    v = h.visit("25.00")
    order_id = h.order(v, "C1", pay_now=True)
    h.client.fail("6202", "lose")
    h.client.fail("6301", "transport", "transport", "transport", "transport")
    await h.drain()
    platform = h.platform_order(h.get(v, order_id))
    amounts = platform.amounts
    refund = h.sim.mobile.handle("6203", {  # reconciliation's repair: the patient gets the money back
        "payOrdId": platform.pay_ord_id, "appRefdSn": "RC-1", "appRefdTime": "20261201090000", "refdType": "ALL",
        "totlRefdAmt": amounts["feeSumamt"], "cashRefdAmt": amounts["ownPayAmt"],
        "psnAcctRefdAmt": amounts["psnAcctPay"], "fundRefdAmt": amounts["fundPay"]})
    assert refund["refStatus"] == "SUCC"
    with h.db.begin() as conn:
        assert h.engine.store.unpark(conn, v.key) == 1
    await h.drain()
    order = h.get(v, order_id)
    assert (order.phase, order.reason_code) == ("revoked", "refunded_elsewhere")
    assert [r.kind for r in h.results(v)] == ["parked"]
