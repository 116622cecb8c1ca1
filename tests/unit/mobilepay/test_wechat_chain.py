"""The WeChat side of an order, through the real engine: the insurance part by 6202, the cash part by WeChat Pay
(统一支付下单: CASH_AND_INSURANCE, INSURANCE_ONLY, CASH_ONLY), the notification (confirmed by 查询订单 when it lacks
the final status), an abandoned cash part, refunds split between 6203 and 申请退款."""

from __future__ import annotations

import asyncio
import datetime as _dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from unit.mobilepay.harness import Harness
from unit.mobilepay.standin import make_simulator

WX = dict(wechat_enabled=True, wechat_appid="wxapp", wechat_city_id="440100", wechat_med_inst_no="H44010600001",
          wechat_med_inst_name="医院", callback_wait=_dt.timedelta(0))


@pytest.fixture
def wx_h(sqlite_engine: Engine):  # type: ignore[no-untyped-def]
    return lambda sim_kw=None, **config: Harness(sqlite_engine, make_simulator(wx_autopay_s=0.0, **(sim_kw or {})),
                                                 **{**WX, **config})


async def _settle_in_wechat(h: Harness, v, order_id: str) -> None:  # type: ignore[no-untyped-def]
    await h.drain()
    await asyncio.sleep(0.05)  # the patient pays the cash part in WeChat (the simulator's autopay)
    h.wechat_notice(v, order_id, "MIX_PAY_SUCCESS")
    await h.drain()


async def test_a_wechat_order_pays_insurance_by_6202_and_cash_in_wechat(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("80.00", "45.00")
    order_id = h.order(v, "W1", channel="wechat-oa", kind="wechat", pay_now=True)
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "wechat_pending" and order.wechat.mix_pay_type == "CASH_AND_INSURANCE"
    assert h.results(v) == []  # HIS waits for the cash part
    wx = h.sim.wechat.orders[order.wechat.out_trade_no]
    assert wx["serial_no"] == order.med_org_ord and wx["pay_order_id"] == order.pay_ord_id
    assert Decimal(wx["fees"]["wechat_pay_cash_fee"]) / 100 == order.own_pay_amt
    await _settle_in_wechat(h, v, order_id)
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.wechat.status == "paid"
    [settled] = h.results(v)
    assert settled.detail["wechat_mix_pay_type"] == "CASH_AND_INSURANCE"
    assert h.client.infnos() == ["6201", "6202", "6301", "8802"]


async def test_a_notification_without_the_final_status_is_confirmed_by_query(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("80.00")
    order_id = h.order(v, "W2", channel="wechat-oa", kind="wechat", pay_now=True)
    await h.drain()
    await asyncio.sleep(0.05)
    h.wechat_notice(v, order_id, None)
    await h.drain()
    assert h.get(v, order_id).phase == "settled" and h.client.infnos()[-1] == "8803"


async def test_an_abandoned_cash_part_gives_the_insurance_back(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h(sim_kw={"faults": ["wechat:abandon:1"]}, wechat_cash_wait=_dt.timedelta(0))
    v = h.visit("90.00")
    order_id = h.order(v, "W3", channel="wechat-oa", kind="wechat", pay_now=True)
    await h.drain()
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.wechat.status == "unpaid" and order.reason_code == "cash_unpaid"
    assert [r.phase for r in order.refunds] == ["succeeded"] and order.refunds[0].internal
    assert [(r.kind, (r.detail or {}).get("refd_type")) for r in h.results(v)] == [("settled", None),
                                                                                   ("refunded", "HI")]
    assert h.results(v)[0].detail["cash_unpaid"] is True
    assert h.platform_order(order).status == "10"  # the insurance part given back, no cash was ever paid


async def test_an_insurance_only_order_is_recorded_in_wechat(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("10.00")  # 甲类 within the fund's share … or not: the split decides the mix type
    order_id = h.order(v, "W4", channel="wechat-oa", kind="wechat", pay_now=True, acct="1")
    await h.drain()
    order = h.get(v, order_id)
    if order.own_pay_amt:
        pytest.skip("the policy left a cash part for this person")
    assert order.phase == "settled" and order.wechat.mix_pay_type == "INSURANCE_ONLY"


async def test_self_pay_for_one_visit_is_a_cash_only_wechat_order(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("33.00")
    order_id = h.order(v, "W5", channel="wechat-oa", kind="wechat", pay_now=True, pay_type="self_pay")
    await _settle_in_wechat(h, v, order_id)
    order = h.get(v, order_id)
    assert order.phase == "settled" and order.wechat.mix_pay_type == "CASH_ONLY" and order.pay_ord_id is None
    assert h.client.infnos() == ["8802"]  # no 医保 order at all
    [settled] = h.results(v)
    assert settled.detail["cash_only"] is True and settled.split.psn_cash_pay == Decimal("33.00")


async def test_a_refund_of_a_wechat_order_splits_between_6203_and_wechat(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("80.00", "45.00")
    order_id = h.order(v, "W6", channel="wechat-oa", kind="wechat", pay_now=True)
    await _settle_in_wechat(h, v, order_id)
    h.refund(v, order_id, "R1", "ALL")
    await h.drain()
    order = h.get(v, order_id)
    assert order.refunds[0].phase == "succeeded" and h.client.infnos()[-2:] == ["6203", "8804"]
    [wx_refund] = h.sim.wechat.refunds.values()
    assert Decimal(wx_refund["amount"]["refund"]) / 100 == order.own_pay_amt
    refund = h.sim.ledger.orders[order.pay_ord_id].refunds[0]
    assert refund["refdType"] == "HI" and refund["cashRefdAmt"] == 0
    assert [r.kind for r in h.results(v)] == ["settled", "refunded"]


async def test_a_lost_wechat_order_answer_is_adopted_by_query(wx_h) -> None:  # type: ignore[no-untyped-def]
    h = wx_h()
    v = h.visit("80.00")
    order_id = h.order(v, "W7", channel="wechat-oa", kind="wechat", pay_now=True)
    h.client.fail("8802", "lose")
    await _settle_in_wechat(h, v, order_id)
    assert h.get(v, order_id).phase == "settled"
    assert h.journal(v, "8802") == [("8802", "resolved", "adopted")]
    assert len(h.sim.wechat.orders) == 1
