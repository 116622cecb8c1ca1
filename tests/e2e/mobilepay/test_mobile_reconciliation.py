"""The mobile 单边账, found by the daily mobile-pay reconciliation and repaired with finance's approval, on the real
broker and database through the simulator:

* an order the platform settled while every answer to the hospital was lost (the 6202 answer, its callback, and
  6301 until the order was parked): paid on the platform, not in HIS — refunded by 6203 once approved, and HIS books
  both the payment and its refund; the parked order, replayed, ends without telling HIS again;
* a settlement HIS holds that no platform order is paid with — voided in HIS once approved;

and afterwards the national 3201 of the day balances (a mobile-pay settlement is a national settlement too)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from e2e.mobilepay.mobile_rig import MobileRig, rig_on_stack
from support.kafka import consume
from yibao.chains.store import ChainStore
from yibao.core import clock
from yibao.core.db.schema import outbox
from yibao.core.deployment import Deployment
from yibao.core.results import HisResult, SettlementSplit
from yibao.core.topics import topic
from yibao.envelope.client import NationalClient
from yibao.envelope.mobilepay.client import MobilePayClient
from yibao.envelope.mobilepay.settings import MobilePaySettings
from yibao.envelope.settings import PlatformSettings
from yibao.reconciliation.audit import Actor
from yibao.reconciliation.ledger import record_result
from yibao.reconciliation.mobile import MobileDeps
from yibao.reconciliation.models import RunRequest
from yibao.reconciliation.reconciler import Reconciler
from yibao.reconciliation.settings import ReconciliationSettings
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MobileRig]:
    yield from rig_on_stack(stack, tmp_path_factory.mktemp("mobile-recon"), people_offset=420,
                            extra_env={"YIBAO_MOBILEPAY_CHAIN_MAX_ATTEMPTS": "3",
                                       "YIBAO_MOBILEPAY_CALLBACK_WAIT_S": "1"})


async def _ledger(rig: MobileRig) -> list[HisResult]:
    """HIS's side: every result on yibao.his.results.v1 booked into the hospital ledger (the reconciliation
    worker's consumer, run here)."""
    records = await consume(rig.bridge.info.kafka_bootstrap, [topic("his_results", rig.bridge.prefix)], idle=1.5,
                            timeout=15)
    results = [HisResult.model_validate_json(r.value) for r in records]
    with rig.db.begin() as conn:
        for r in results:
            record_result(conn, r)
    return results


def _reconciler(rig: MobileRig, tmp: Path) -> tuple[Reconciler, Any, Any]:
    national = NationalClient(PlatformSettings(base_url=rig.bridge.sim_url, retry_backoff_s=0.05),
                              engine=rig.db, service="reconciliation")
    mp = MobilePaySettings(base_url=rig.bridge.sim_url, private_key=rig.keys["hospital_private"],
                           platform_public_key=rig.keys["platform_public"], retry_backoff_s=0.05)
    mobile = MobileDeps(MobilePayClient(mp, engine=rig.db, service="reconciliation"), mp.meaning, org_codg=mp.org_codg)
    settings = ReconciliationSettings(database_url=rig.database_url, reports_dir=tmp / "reports",
                                      topic_prefix=rig.bridge.prefix, setl_optins=["440100", "440106", "440300"])
    return Reconciler(rig.db, national, settings, default_optins="440100", mobile=mobile), national, mobile


async def test_mobile_single_sided_orders_are_found_and_repaired_with_approval(
        rig: MobileRig, tmp_path: Path) -> None:
    # two orders paid as they should be
    good = [await rig.visit("26.00"), await rig.visit("14.00", "3.00")]
    for i, v in enumerate(good):
        await rig.pending(v)
        order_id = (await rig.order(v, f"G-{i}")).json()["order"]["order_id"]
        await rig.until(order_id, "paid")
    # paid on the platform, every answer lost: parked
    lost = await rig.visit("58.00")
    await rig.pending(lost)
    rig.bridge.set_faults(["6202:commit_then_timeout:1", "6301:http_5xx:1:500", "callback:lose:1"])
    lost_order = (await rig.order(lost, "L-1")).json()["order"]
    await rig.results(until=lambda rs: any(r.his_visit_id == lost.key and r.kind == "parked" for r in rs),
                      timeout=120)
    rig.bridge.set_faults([])
    platform = next(o for o in rig.orders().values() if o["med_org_ord"].startswith(lost_order["order_id"]))
    assert platform["status"] == "4"  # the platform has it; HIS does not

    results = await _ledger(rig)
    assert not [r for r in results if r.his_visit_id == lost.key and r.kind == "settled"]
    # a settlement HIS holds that no platform order is paid with
    ghost = good[0]
    zero, amount = clock.now(), SettlementSplit(medfee_sumamt="19.00", fund_pay_sumamt="9.50", psn_part_amt="9.50",
                                                acct_pay="0", psn_cash_pay="9.50")
    with rig.db.begin() as conn:
        record_result(conn, HisResult(
            message_id="ghost-1", his_visit_id=ghost.key, visit_kind="outpatient", kind="settled", service="mobilepay",
            psn_no=ghost.person.psn_no, insutype=ghost.person.insutype, insuplc_admdvs=ghost.person.insuplc_admdvs,
            setl_id="GHOST0000001", setl_time=zero, clr_type="11", clr_optins=ghost.person.insuplc_admdvs,
            split=amount, detail={"channel": "mobilepay-2.0", "pay_ord_id": "ORD-NONE"}))

    reconciler, national, mobile = _reconciler(rig, tmp_path)
    try:
        today = clock.today()
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        run = await reconciler.run(RunRequest.for_day(today, scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        status = await reconciler.status(run.run_id)
        diffs = {d["diff_class"]: d for d in status["differences"]}
        assert run.state == "differences_found", status
        assert set(diffs) == {"mp_paid_not_in_his", "mp_in_his_not_paid"}, diffs
        assert {d["status"] for d in diffs.values()} == {"pending_approval"}, [(d["diff_class"], d["outcome"]) for d in diffs.values()]
        assert diffs["mp_paid_not_in_his"]["channel"] == "mobilepay-2.0"
        assert diffs["mp_paid_not_in_his"]["action"] == "mp_refund"

        approver = Actor("approver.wang", "approver", "cli", "test")
        done = await reconciler.approve(run.run_id, by="approver.wang", reason="refund the patient; void the ghost",
                                        actor=approver)
        assert done.state == "repaired_and_balanced", await reconciler.status(run.run_id)
        platform = next(o for o in rig.orders().values() if o["med_org_ord"].startswith(lost_order["order_id"]))
        assert platform["status"] == "9" and platform["refunds"][0]["refStatus"] == "SUCC"

        with rig.db.connect() as conn:  # the repairs' results, in the outbox (the worker's relay would publish them)
            payloads = conn.execute(select(outbox.c.payload).where(
                outbox.c.producer == Deployment.of(conn).scoped("reconciliation"), outbox.c.topic == topic("his_results", rig.bridge.prefix))
            ).scalars().all()
        repairs = [HisResult.model_validate_json(p) for p in payloads]
        kinds = sorted((r.his_visit_id, r.kind) for r in repairs)
        assert kinds == sorted([(lost.key, "settled"), (lost.key, "refunded"), (ghost.key, "refunded")]), kinds

        again = await reconciler.run(RunRequest.for_day(today, scope="mobile", requested_by="clerk.li",
                                                        trigger="cli"), actor=clerk)
        assert again.state == "balanced", await reconciler.status(again.run_id)
        whole = await reconciler.run(RunRequest.for_day(today, requested_by="clerk.li", trigger="cli"), actor=clerk)
        assert whole.state == "balanced", await reconciler.status(whole.run_id)
    finally:
        await national.aclose()
        await mobile.client.aclose()

    # the parked order, replayed, learns it was refunded and ends without telling HIS again
    with rig.db.begin() as conn:
        assert ChainStore("mobilepay").unpark(conn, lost.key) == 1
    order = await rig.until(lost_order["order_id"], "cancelled", timeout=90)
    assert order["reason_code"] == "refunded_elsewhere"
    await asyncio.sleep(1)
    mine = [r for r in await rig.results() if r.his_visit_id == lost.key]
    assert [r.kind for r in mine] == ["parked"]


async def test_wechat_pays_bill_feeds_the_mobile_reconciliation(rig: MobileRig, tmp_path: Path) -> None:
    """WeChat Pay's daily bill (8806) against HIS's ledger: a cash part WeChat collected for an order HIS never
    booked, and one HIS booked with another amount — found, left to finance by hand."""
    from sqlalchemy import update

    from yibao.core.db.schema import recon_ledger
    from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings

    mixed, cash_only = await rig.visit("40.00"), await rig.visit("21.00")
    for v in (mixed, cash_only):
        await rig.pending(v, who="wechat")
    m = (await rig.order(mixed, "WXR-1", who="wechat")).json()["order"]
    c = (await rig.order(cash_only, "WXR-2", who="wechat", pay_type="self_pay", pay_auth_no=None)).json()["order"]
    m = await rig.until(m["order_id"], "paid", who="wechat")
    c = await rig.until(c["order_id"], "paid", who="wechat")
    await rig.results(until=lambda rs: {mixed.key, cash_only.key} <= {r.his_visit_id for r in rs
                                                                       if r.kind == "settled"})
    records = await consume(rig.bridge.info.kafka_bootstrap, [topic("his_results", rig.bridge.prefix)], idle=1.5,
                            timeout=15)
    with rig.db.begin() as conn:  # HIS never booked the cash-only payment; it booked the mixed one's cash wrong
        for r in (HisResult.model_validate_json(x.value) for x in records):
            if r.his_visit_id != cash_only.key:
                record_result(conn, r)
        conn.execute(update(recon_ledger).where(recon_ledger.c.setl_id == m["hi_doc_sn"])
                     .values(psn_cash_pay=recon_ledger.c.psn_cash_pay + 1))

    env = rig.bridge.extra_env
    wechat = WeChatPayClient(WeChatSettings(base_url=rig.bridge.sim_url,
                                            merchant_private_key=env["YIBAO_WECHAT_MERCHANT_PRIVATE_KEY"],
                                            platform_public_key=env["YIBAO_WECHAT_PLATFORM_PUBLIC_KEY"],
                                            api_v3_key=env["YIBAO_WECHAT_API_V3_KEY"]),
                             engine=rig.db, service="reconciliation")
    reconciler, national, mobile = _reconciler(rig, tmp_path)
    mobile.wechat = wechat
    try:
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        run = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        status = await reconciler.status(run.run_id)
        mine = {d["setl_id"]: d for d in status["differences"]
                if d["setl_id"] in (m["wechat"]["out_trade_no"], c["wechat"]["out_trade_no"])}
        assert mine[c["wechat"]["out_trade_no"]]["diff_class"] == "mp_cash_not_in_his", status
        assert mine[m["wechat"]["out_trade_no"]]["diff_class"] == "mp_cash_mismatch", status
        assert {d["status"] for d in mine.values()} == {"manual"}
        assert run.state == "differences_found"
    finally:
        await national.aclose()
        await mobile.client.aclose()
        await wechat.aclose()


async def test_where_the_province_says_so_the_single_sided_order_is_refunded_at_the_counter(
        rig: MobileRig, tmp_path: Path) -> None:
    """``mobile_refund_via=2208``: the insurance part of a mobile 单边账 goes back by the counter's 2208 (the
    patient need not scan again), the cash part by 6203 CASH; HIS books the settlement and both refunds."""
    lost = await rig.visit("33.00")
    await rig.pending(lost)
    rig.bridge.set_faults(["6202:commit_then_timeout:1", "6301:http_5xx:1:500", "callback:lose:1"])
    lost_order = (await rig.order(lost, "L-2208")).json()["order"]
    await rig.results(until=lambda rs: any(r.his_visit_id == lost.key and r.kind == "parked" for r in rs),
                      timeout=120)
    rig.bridge.set_faults([])
    await _ledger(rig)

    reconciler, national, mobile = _reconciler(rig, tmp_path)
    mobile.refund_via = "2208"
    try:
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        run = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        mine = [d for d in (await reconciler.status(run.run_id))["differences"] if d["his_visit_id"] == lost.key]
        assert [(d["diff_class"], d["action"], d["status"]) for d in mine] == [
            ("mp_paid_not_in_his", "mp_refund", "pending_approval")], mine
        assert "2208 at the counter" in mine[0]["outcome"]
        approver = Actor("approver.wang", "approver", "cli", "test")
        await reconciler.approve(run.run_id, by="approver.wang", reason="refund at the counter", actor=approver)
        after = [d for d in (await reconciler.status(run.run_id))["differences"] if d["his_visit_id"] == lost.key]
        assert after[0]["status"] == "repaired", after
    finally:
        await national.aclose()
        await mobile.client.aclose()

    platform = next(o for o in rig.orders().values() if o["med_org_ord"].startswith(lost_order["order_id"]))
    assert platform["status"] == "9", platform
    assert sorted((r.get("via") or "6203", r["refdType"], r["refStatus"]) for r in platform["refunds"]) == [
        ("2208", "HI", "SUCC"), ("6203", "CASH", "SUCC")], platform["refunds"]
    with rig.db.connect() as conn:
        payloads = conn.execute(select(outbox.c.payload).where(
            outbox.c.producer == Deployment.of(conn).scoped("reconciliation"), outbox.c.topic == topic("his_results", rig.bridge.prefix))
        ).scalars().all()
    booked = [r for r in (HisResult.model_validate_json(p) for p in payloads) if r.his_visit_id == lost.key]
    settled = [r for r in booked if r.kind == "settled"]
    cancelled = [r for r in booked if r.kind == "refunded" and not (r.detail or {}).get("cash_only")]
    cash = [r for r in booked if r.kind == "refunded" and (r.detail or {}).get("cash_only")]
    assert len(settled) == len(cancelled) == len(cash) == 1, [(r.kind, r.detail) for r in booked]
    assert cancelled[0].split is not None and settled[0].split is not None
    assert cancelled[0].split.medfee_sumamt == -settled[0].split.medfee_sumamt
    assert cancelled[0].detail["via"] == "2208"
    assert cancelled[0].detail["cash_kept"] == str(settled[0].split.psn_cash_pay)  # the cash went back by 6203
    assert cash[0].split is not None and cash[0].split.psn_cash_pay == -settled[0].split.psn_cash_pay


async def test_wechat_refunds_on_the_bill_are_compared_with_his_refunds_and_repaired_with_approval(
        rig: MobileRig, tmp_path: Path) -> None:
    """The bill's refunds against HIS's: a cash part a cashier refunded by hand in WeChat Pay's merchant platform
    (HIS never heard of it) is booked in HIS once approved; a refund HIS booked that WeChat Pay never made (the
    bridge's 8804 never arrived) is refunded by WeChat Pay once approved — the same out_refund_no."""
    from yibao.envelope.calllog import CallRecord, row_values, write_rows
    from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings

    hand, window = await rig.visit("26.00"), await rig.visit("18.00")
    for v in (hand, window):
        await rig.pending(v, who="wechat")
    h = (await rig.order(hand, "WXF-1", who="wechat", pay_type="self_pay", pay_auth_no=None)).json()["order"]
    w = (await rig.order(window, "WXF-2", who="wechat", pay_type="self_pay", pay_auth_no=None)).json()["order"]
    h = await rig.until(h["order_id"], "paid", who="wechat")
    w = await rig.until(w["order_id"], "paid", who="wechat")
    await rig.results(until=lambda rs: {hand.key, window.key} <= {r.his_visit_id for r in rs if r.kind == "settled"})
    await _ledger(rig)

    env = rig.bridge.extra_env
    settings = WeChatSettings(base_url=rig.bridge.sim_url, merchant_private_key=env["YIBAO_WECHAT_MERCHANT_PRIVATE_KEY"],
                              platform_public_key=env["YIBAO_WECHAT_PLATFORM_PUBLIC_KEY"],
                              api_v3_key=env["YIBAO_WECHAT_API_V3_KEY"])
    cashier = WeChatPayClient(settings, engine=rig.db, service="cashier")
    wechat = WeChatPayClient(settings, engine=rig.db, service="reconciliation")
    by_hand, never = f"HAND{rig.run_tag}", f"LOST{rig.run_tag}"
    hand_trade, window_trade = h["wechat"]["out_trade_no"], w["wechat"]["out_trade_no"]
    try:
        done = await cashier.call("8804", {"data": {"out_trade_no": hand_trade, "out_refund_no": by_hand,
                                                    "reason": "窗口手工退款",
                                                    "amount": {"refund": 2600, "total": 2600, "currency": "CNY"}}})
        assert done.output["status"] == "SUCCESS"
    finally:
        await cashier.aclose()
    started = clock.now()
    with rig.db.begin() as conn:  # the bridge's 8804 that never reached WeChat Pay; HIS booked the refund anyway
        write_rows(conn, [row_values(
            CallRecord(service=Deployment.of(conn).scoped("mobilepay"), platform="wechat", infno="8804",
                       msgid=f"WX{rig.run_tag}LOST", visit_key=window.key, started_at=started, outcome="transport"),
            input_obj={"out_trade_no": window_trade, "out_refund_no": never,
                       "amount": {"refund": 1800, "total": 1800, "currency": "CNY"}})])
        zero = Decimal("0.00")
        record_result(conn, HisResult(
            message_id=f"window-refund-{rig.run_tag}", his_visit_id=window.key, visit_kind="outpatient",
            kind="refunded", service="mobilepay", msgid=never, setl_id=never, orig_setl_id=window_trade,
            setl_time=started, clr_type="11", refd_setl_flag="1",
            split=SettlementSplit(medfee_sumamt=zero, fund_pay_sumamt=zero, psn_part_amt=Decimal("-18.00"),
                                  acct_pay=zero, psn_cash_pay=Decimal("-18.00")),
            detail={"channel": "mobilepay-2.0", "cash_only": True, "refund_id": never}))

    reconciler, national, mobile = _reconciler(rig, tmp_path)
    mobile.wechat = wechat
    try:
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        run = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        status = await reconciler.status(run.run_id)
        mine = {d["setl_id"]: d for d in status["differences"] if d["setl_id"] in (by_hand, never)}
        assert {k: (d["diff_class"], d["action"], d["status"]) for k, d in mine.items()} == {
            by_hand: ("mp_wechat_refund_not_in_his", "mp_adopt_wechat_refund", "pending_approval"),
            never: ("mp_wechat_refund_not_on_wechat", "mp_wechat_refund", "pending_approval")}, status
        assert mine[by_hand]["msgid"] == hand_trade and mine[never]["msgid"] == window_trade

        approver = Actor("approver.wang", "approver", "cli", "test")
        await reconciler.approve(run.run_id, by="approver.wang", reason="book the hand refund; pay back the window's",
                                 ids=[d["id"] for d in mine.values()], actor=approver)
        after = {d["setl_id"]: d for d in (await reconciler.status(run.run_id))["differences"]
                 if d["setl_id"] in (by_hand, never)}
        assert {k: d["status"] for k, d in after.items()} == {by_hand: "repaired", never: "repaired"}, after
        refunds = {r["out_refund_no"]: r for r in rig.bridge.admin("wechat")["refunds"]}
        assert refunds[never]["status"] == "SUCCESS" and refunds[never]["amount"]["refund"] == 1800
        with rig.db.connect() as conn:  # HIS is told of the hand refund (the reconciliation worker's outbox)
            payloads = conn.execute(select(outbox.c.payload).where(
                outbox.c.producer == Deployment.of(conn).scoped("reconciliation"),
                outbox.c.topic == topic("his_results", rig.bridge.prefix))).scalars().all()
        booked = [r for r in (HisResult.model_validate_json(p) for p in payloads) if r.setl_id == by_hand]
        assert [(r.his_visit_id, r.kind, r.split.psn_cash_pay, r.orig_setl_id) for r in booked] == [
            (hand.key, "refunded", Decimal("-26.00"), hand_trade)]

        again = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                        trigger="cli"), actor=clerk)
        left = [d for d in (await reconciler.status(again.run_id))["differences"] if d["setl_id"] in (by_hand, never)]
        assert left == [], left
    finally:
        await national.aclose()
        await mobile.client.aclose()
        await wechat.aclose()


async def test_a_refund_booked_by_hand_in_his_is_refunded_on_the_platform_once_approved(
        rig: MobileRig, tmp_path: Path) -> None:
    """HIS's window booked a refund of a mobile-paid order by hand (no 6203 behind it; the platform still holds the
    order paid): mp_refund_only_in_his — the national run, whose 3202 sees the refund only in HIS, leaves it to the
    mobile run (no national repair). Once approved the platform refunds what HIS booked (6203 ALL, stored before
    it is sent), HIS's hand refund is voided and the platform's refund booked in its place; the next run agrees."""
    v = await rig.visit("41.00", "6.50")
    await rig.pending(v)
    order_id = (await rig.order(v, "HAND-1")).json()["order"]["order_id"]
    await rig.until(order_id, "paid")
    settled = next(r for r in await _ledger(rig) if r.his_visit_id == v.key and r.kind == "settled")
    assert settled.split is not None
    s = settled.split
    hand = SettlementSplit(medfee_sumamt=-s.medfee_sumamt, fund_pay_sumamt=-s.fund_pay_sumamt,
                           psn_part_amt=-s.psn_part_amt, acct_pay=-s.acct_pay, psn_cash_pay=-s.psn_cash_pay)
    with rig.db.begin() as conn:  # the window's refund: HIS names the settlement, no platform call stands behind it
        record_result(conn, HisResult(
            message_id="hand-refund-1", his_visit_id=v.key, visit_kind="outpatient", kind="refunded",
            service="his-window", psn_no=settled.psn_no, insutype=settled.insutype,
            insuplc_admdvs=settled.insuplc_admdvs, setl_id="HANDREF0000001", orig_setl_id=settled.setl_id,
            setl_time=clock.now(), clr_type="11", clr_optins=settled.clr_optins, refd_setl_flag="1", split=hand))

    reconciler, national, mobile = _reconciler(rig, tmp_path)
    try:
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        # the national 3202 sees the window's refund "only in HIS": the national run leaves it to the mobile run
        whole = await reconciler.run(RunRequest.for_day(clock.today(), requested_by="clerk.li", trigger="cli"),
                                     actor=clerk)
        theirs = [d for d in (await reconciler.status(whole.run_id))["differences"]
                  if d["setl_id"] == "HANDREF0000001"]
        assert [(d["diff_class"], d["action"], d["status"]) for d in theirs] == [
            ("his_only", "mobile_run", "resolved")], (whole.state, whole.message, [
                (d["diff_class"], d["setl_id"], d["action"], d["status"]) for d in
                (await reconciler.status(whole.run_id))["differences"]])
        assert "mobile-pay reconciliation" in theirs[0]["outcome"]

        run = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        mine = [d for d in (await reconciler.status(run.run_id))["differences"] if d["his_visit_id"] == v.key]
        assert [(d["diff_class"], d["setl_id"], d["action"], d["status"]) for d in mine] == [
            ("mp_refund_only_in_his", "HANDREF0000001", "mp_refund_as_booked", "pending_approval")], mine
        assert Decimal(str(mine[0]["amount"])) == s.medfee_sumamt
        platform = next(o for o in rig.orders().values() if o["med_org_ord"].startswith(order_id))
        assert platform["status"] == "4" and not platform.get("refunds")  # nothing moves before the approval

        approver = Actor("approver.wang", "approver", "cli", "test")
        await reconciler.approve(run.run_id, by="approver.wang", reason="the patient was not paid back at the window",
                                 ids=[mine[0]["id"]], actor=approver)
        after = [d for d in (await reconciler.status(run.run_id))["differences"] if d["his_visit_id"] == v.key]
        assert after[0]["status"] == "repaired", after
        platform = next(o for o in rig.orders().values() if o["med_org_ord"].startswith(order_id))
        assert platform["status"] == "9", platform
        assert [(r["refdType"], r["refStatus"]) for r in platform["refunds"]] == [("ALL", "SUCC")]
        assert platform["refunds"][0]["appRefdSn"] == after[0]["repair_msgid"]

        with rig.db.connect() as conn:
            payloads = conn.execute(select(outbox.c.payload).where(
                outbox.c.producer == Deployment.of(conn).scoped("reconciliation"),
                outbox.c.topic == topic("his_results", rig.bridge.prefix))).scalars().all()
        told = [r for r in (HisResult.model_validate_json(p) for p in payloads) if r.his_visit_id == v.key]
        voided = [r for r in told if (r.detail or {}).get("void")]
        refunded = [r for r in told if r.kind == "refunded"]
        assert [(r.kind, r.setl_id, r.detail["voided_setl_id"]) for r in voided] == [
            ("settled", settled.setl_id, "HANDREF0000001")]
        assert len(refunded) == 1 and refunded[0].orig_setl_id == settled.setl_id
        assert refunded[0].setl_id == platform["refunds"][0]["hiDocSn"]  # the platform's cancellation
        assert refunded[0].split is not None and refunded[0].split.medfee_sumamt == -s.medfee_sumamt

        again = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                        trigger="cli"), actor=clerk)
        assert not [d for d in (await reconciler.status(again.run_id))["differences"] if d["his_visit_id"] == v.key]
    finally:
        await national.aclose()
        await mobile.client.aclose()


async def test_a_hand_refund_of_a_wechat_cash_only_order_is_refunded_in_wechat_pay_once_approved(
        rig: MobileRig, tmp_path: Path) -> None:
    """HIS's window refunded a WeChat CASH_ONLY order by hand (paid wholly in WeChat Pay: no 医保 order, nothing 6301
    knows; no 8804 behind the refund) while WeChat Pay still holds it paid: mp_cash_refund_only_in_his, found with
    WeChat's 查询订单 and bill. Once approved WeChat Pay refunds it (申请退款, its out_refund_no stored before it is
    sent); the answer is lost, 退款查询 finds the refund made and nothing is refunded twice; HIS's hand refund is voided
    and WeChat's refund booked in its place; the next run agrees and the national 3201 never saw any of it."""
    from yibao.core.db.schema import recon_audit
    from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings
    from yibao.reconciliation.ledger import entry_by_setl_id

    v = await rig.visit("23.00")
    await rig.pending(v, who="wechat")
    o = (await rig.order(v, "WXHAND-1", who="wechat", pay_type="self_pay", pay_auth_no=None)).json()["order"]
    o = await rig.until(o["order_id"], "paid", who="wechat")
    trade = o["wechat"]["out_trade_no"]
    settled = next(r for r in await _ledger(rig) if r.his_visit_id == v.key and r.kind == "settled")
    assert settled.setl_id == trade and (settled.detail or {}).get("cash_only")
    hand_id = f"HANDCASH{rig.run_tag}"
    with rig.db.begin() as conn:  # the window's refund: it names the WeChat order, no 8804 stands behind it
        record_result(conn, HisResult(
            message_id=f"hand-cash-{rig.run_tag}", his_visit_id=v.key, visit_kind="outpatient", kind="refunded",
            service="his-window", psn_no=settled.psn_no, setl_id=hand_id, orig_setl_id=trade, setl_time=clock.now(),
            clr_type="11", refd_setl_flag="1",
            split=SettlementSplit(medfee_sumamt=Decimal("-23.00"), fund_pay_sumamt=Decimal("0"),
                                  psn_part_amt=Decimal("-23.00"), acct_pay=Decimal("0"),
                                  psn_cash_pay=Decimal("-23.00"))))
        assert entry_by_setl_id(conn, hand_id).status == "cash"  # no national settlement: 3201/3202 never see it

    env = rig.bridge.extra_env
    wechat = WeChatPayClient(WeChatSettings(base_url=rig.bridge.sim_url,
                                            merchant_private_key=env["YIBAO_WECHAT_MERCHANT_PRIVATE_KEY"],
                                            platform_public_key=env["YIBAO_WECHAT_PLATFORM_PUBLIC_KEY"],
                                            api_v3_key=env["YIBAO_WECHAT_API_V3_KEY"]),
                             engine=rig.db, service="reconciliation")
    reconciler, national, mobile = _reconciler(rig, tmp_path)
    mobile.wechat = wechat

    def wechat_refunds() -> list[dict[str, Any]]:
        return [r for r in rig.bridge.admin("wechat")["refunds"] if r["out_trade_no"] == trade]

    try:
        clerk = Actor("clerk.li", "clerk", "cli", "test")
        run = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                      trigger="cli"), actor=clerk)
        mine = [d for d in (await reconciler.status(run.run_id))["differences"] if d["setl_id"] == hand_id]
        assert [(d["diff_class"], d["msgid"], d["action"], d["status"]) for d in mine] == [
            ("mp_cash_refund_only_in_his", trade, "mp_cash_refund_as_booked", "pending_approval")], mine
        assert Decimal(str(mine[0]["amount"])) == Decimal("23.00")
        assert wechat_refunds() == []  # nothing moves before the approval

        approver = Actor("approver.wang", "approver", "cli", "test")
        rig.bridge.set_faults(["wechat_refund:drop_reply:1"])  # WeChat refunds; its answer never arrives
        try:
            await reconciler.approve(run.run_id, by="approver.wang", reason="the patient was not paid back",
                                     ids=[mine[0]["id"]], actor=approver)
        finally:
            rig.bridge.set_faults([])
        [lost] = [d for d in (await reconciler.status(run.run_id))["differences"] if d["setl_id"] == hand_id]
        assert lost["status"] == "applying" and "8805" in lost["outcome"], lost
        assert [(r["out_refund_no"], r["status"]) for r in wechat_refunds()] == [(lost["repair_msgid"], "SUCCESS")]

        await reconciler.approve(run.run_id, by="approver.wang", reason="finish the refund", ids=[lost["id"]],
                                 actor=approver)  # the retry asks 退款查询 first
        [after] = [d for d in (await reconciler.status(run.run_id))["differences"] if d["setl_id"] == hand_id]
        assert after["status"] == "repaired", after
        refunds = wechat_refunds()
        assert [(r["out_refund_no"], r["amount"]["refund"]) for r in refunds] == [(after["repair_msgid"], 2300)]
        order = next(x for x in rig.bridge.admin("wechat")["orders"] if x["out_trade_no"] == trade)
        assert order["self_pay_status"] == "SELF_PAY_REFUND"

        with rig.db.connect() as conn:
            assert entry_by_setl_id(conn, hand_id).status == "voided"
            assert entry_by_setl_id(conn, after["repair_msgid"]).status == "cash"
            payloads = conn.execute(select(outbox.c.payload).where(
                outbox.c.producer == Deployment.of(conn).scoped("reconciliation"),
                outbox.c.topic == topic("his_results", rig.bridge.prefix))).scalars().all()
            audit = conn.execute(select(recon_audit.c.actor, recon_audit.c.role, recon_audit.c.action).where(
                recon_audit.c.run_id == run.run_id)).all()
        assert [tuple(a) for a in audit].count(("approver.wang", "approver", "approve")) == 2
        told = [r for r in (HisResult.model_validate_json(p) for p in payloads) if r.his_visit_id == v.key]
        assert sorted((r.kind, r.setl_id, (r.detail or {}).get("voided_setl_id")) for r in told) == sorted([
            ("settled", trade, hand_id), ("refunded", after["repair_msgid"], None)])
        cash_back = next(r for r in told if r.kind == "refunded")
        assert cash_back.orig_setl_id == trade and cash_back.split is not None
        assert cash_back.split.psn_cash_pay == Decimal("-23.00") and (cash_back.detail or {}).get("cash_only")

        again = await reconciler.run(RunRequest.for_day(clock.today(), scope="mobile", requested_by="clerk.li",
                                                        trigger="cli"), actor=clerk)
        left = [d for d in (await reconciler.status(again.run_id))["differences"]
                if d["setl_id"] in (hand_id, trade, after["repair_msgid"])]
        assert left == [], left
    finally:
        await national.aclose()
        await mobile.client.aclose()
        await wechat.aclose()
