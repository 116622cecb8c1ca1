"""The mobile-pay reconciliation's classes, decided from 6301's views and HIS's ledger alone (no I/O)."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.reconciliation.ledger import LedgerEntry
from yibao.reconciliation.mobile import (MOBILE_CLASSES, MobileView, OrderRef, classify_orders,
                                         hand_refunds_of_period, is_mobile, version_of_platform)

DAY = _dt.date(2024, 3, 5)
NOON = _dt.datetime(2024, 3, 5, 12, 0, tzinfo=clock.SHANGHAI)


def _ref(n: int, version: str = "2.0") -> OrderRef:
    return OrderRef(pay_ord_id=f"ORD{n}", pay_token=f"TOK{n}", visit_key=f"V{n}", version=version,
                    med_org_ord=f"MO{n}", insu_code="440100")


def _view(n: int, *, stas: str = "4", meaning: str = "settled", fee: str = "100.00", fund: str = "60.00",
          acct: str = "10.00", refunds: list[dict[str, Any]] | None = None) -> MobileView:
    return MobileView(pay_ord_id=f"ORD{n}", meaning=meaning, ord_stas=stas, fee=Decimal(fee),
                      cash=Decimal(fee) - Decimal(fund) - Decimal(acct), acct=Decimal(acct), fund=Decimal(fund),
                      hi_doc_sn=f"SETL{n}", hi_rgst_sn=f"MDTRT{n}", psn_no=f"PSN{n}", refunds=refunds or [])


def _entry(setl_id: str, *, fee: str = "100.00", fund: str = "60.00", acct: str = "10.00", refund_of: str | None = None,
           when: _dt.datetime = NOON, channel: str = "mobilepay-2.0") -> LedgerEntry:
    sign = Decimal(-1) if refund_of else Decimal(1)
    return LedgerEntry(setl_id=setl_id, his_visit_id="V", visit_kind="outpatient", channel=channel, insutype="310",
                       clr_type="11", setl_optins="440100", refd_setl_flag="1" if refund_of else "0", setl_time=when,
                       medfee_sumamt=sign * Decimal(fee), fund_pay_sumamt=sign * Decimal(fund),
                       acct_pay=sign * Decimal(acct), psn_cash_pay=sign * (Decimal(fee) - Decimal(fund) - Decimal(acct)),
                       orig_setl_id=refund_of)


def _classes(refs: list[OrderRef], views: list[MobileView], entries: list[LedgerEntry]) -> list[tuple[str, str]]:
    diffs = classify_orders(refs, {v.pay_ord_id: v for v in views}, entries, date_from=DAY, date_to=DAY)
    assert all(d.diff_class in MOBILE_CLASSES for d in diffs)
    return sorted((d.diff_class, d.setl_id) for d in diffs)


def test_an_order_paid_on_both_sides_with_the_same_amounts_is_no_difference() -> None:
    assert _classes([_ref(1)], [_view(1)], [_entry("SETL1")]) == []


def test_an_order_paid_on_the_platform_that_his_never_booked_is_a_mobile_single_sided_entry() -> None:
    diffs = classify_orders([_ref(1, "1.0")], {"ORD1": _view(1)}, [], date_from=DAY, date_to=DAY)
    assert [(d.diff_class, d.setl_id, d.msgid, d.channel, d.his_visit_id) for d in diffs] == [
        ("mp_paid_not_in_his", "SETL1", "ORD1", "mobilepay-1.0", "V1")]
    assert diffs[0].plat_medfee_sumamt == Decimal("100.00") and diffs[0].his_medfee_sumamt is None


def test_unpaid_revoked_or_unanswered_orders_are_not_differences() -> None:
    views = [_view(1, stas="0", meaning="created"), _view(2, stas="7", meaning="revoked")]
    assert _classes([_ref(1), _ref(2), _ref(3)], views, []) == []


def test_a_mobile_settlement_his_holds_that_no_order_paid_is_in_his_not_paid() -> None:
    assert _classes([], [], [_entry("SETL9")]) == [("mp_in_his_not_paid", "SETL9")]


def test_in_his_not_paid_looks_only_at_the_period() -> None:
    yesterday = NOON - _dt.timedelta(days=1)
    assert _classes([], [], [_entry("SETL9", when=yesterday)]) == []


def test_different_amounts_on_the_two_sides_are_an_amount_mismatch() -> None:
    diffs = classify_orders([_ref(1)], {"ORD1": _view(1, fund="50.00")}, [_entry("SETL1")], date_from=DAY,
                            date_to=DAY)
    assert [d.diff_class for d in diffs] == ["mp_amount_mismatch"]
    assert (diffs[0].his_fund_pay_sumamt, diffs[0].plat_fund_pay_sumamt) == (Decimal("60.00"), Decimal("50.00"))


def test_a_refund_the_platform_made_that_his_never_booked_is_found() -> None:
    refund = {"appRefdSn": "R1", "hiDocSn": "RSETL1", "refStatus": "SUCC", "refdType": "ALL", "cashRefdAmt": "30.00",
              "psnAcctRefdAmt": "10.00", "fundRefdAmt": "60.00"}
    pending = {"appRefdSn": "R2", "refStatus": "WAIT", "refdType": "CASH"}
    view = _view(1, stas="9", meaning="refunded", refunds=[refund, pending])
    assert _classes([_ref(1)], [view], [_entry("SETL1")]) == [("mp_refund_not_in_his", "RSETL1")]
    assert view.refundable() == (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))


def test_a_refund_his_booked_that_the_platform_does_not_list_is_found() -> None:
    entries = [_entry("SETL1"), _entry("RSETL1", refund_of="SETL1")]
    assert _classes([_ref(1)], [_view(1)], entries) == [("mp_refund_not_on_platform", "RSETL1")]


def test_refunds_booked_on_both_sides_agree() -> None:
    refund = {"appRefdSn": "R1", "hiDocSn": "RSETL1", "refStatus": "SUCC", "refdType": "ALL"}
    entries = [_entry("SETL1"), _entry("RSETL1", refund_of="SETL1")]
    assert _classes([_ref(1)], [_view(1, stas="9", meaning="refunded", refunds=[refund])], entries) == []


def test_the_channel_names_tell_mobile_pay_and_its_version() -> None:
    assert is_mobile("mobilepay-2.0") and is_mobile("mobilepay-1.0") and not is_mobile("national")
    assert not is_mobile(None) and not is_mobile("")
    assert version_of_platform("mobilepay-1.0") == "1.0" and version_of_platform("mobilepay") == "2.0"


def test_6301s_answer_is_read_as_decimals_with_its_refunds() -> None:
    view = MobileView.of({"payOrdId": "ORD1", "ordStas": "4", "feeSumamt": "100.5", "ownPayAmt": 20, "psnAcctPay": "0",
                          "fundPay": "80.50", "hiDocSn": "S1", "refdList": [{"refStatus": "SUCC"}, "junk"]},
                         lambda s: {"4": "settled"}.get(s))
    assert (view.meaning, view.fee, view.cash, view.fund) == ("settled", Decimal("100.50"), Decimal("20.00"),
                                                              Decimal("80.50"))
    assert view.hi_rgst_sn is None and len(view.refunds) == 1


# --- WeChat Pay's daily bill ------------------------------------------------------------------------------------

BILL = ("交易时间,商户订单号,医保自费混合订单号,类型,混合支付类型,现金金额(分),医保订单号,附加数据\n"
        "2024-03-05 10:00:00,MP1W,MIX1,PAY,CASH_AND_INSURANCE,3000,ORD1,\n"
        "2024-03-05 10:05:00,`MP2W,`MIX2,`PAY,`CASH_ONLY,`3300,`,\n"
        "2024-03-05 11:00:00,MP1W,,REFUND,,3000,,\n")


def test_the_bill_is_read_by_its_header_in_yuan() -> None:
    from yibao.reconciliation.mobile import parse_bill

    rows = parse_bill(BILL, "2024-03-05")
    assert [(r.out_trade_no, r.kind, r.mix_pay_type, r.cash, r.pay_ord_id) for r in rows] == [
        ("MP1W", "PAY", "CASH_AND_INSURANCE", Decimal("30.00"), "ORD1"),
        ("MP2W", "PAY", "CASH_ONLY", Decimal("33.00"), None),
        ("MP1W", "REFUND", "", Decimal("30.00"), None)]
    assert parse_bill("", "2024-03-05") == []


def test_a_bill_without_a_needed_column_or_with_a_bad_amount_is_an_error_naming_it() -> None:
    import pytest

    from yibao.core.errors import ReconciliationError
    from yibao.reconciliation.mobile import parse_bill

    with pytest.raises(ReconciliationError, match="医保订单号"):
        parse_bill("交易时间,商户订单号,类型,混合支付类型,现金金额(分)\n", "2024-03-05")
    with pytest.raises(ReconciliationError, match="line 2"):
        parse_bill(BILL.splitlines()[0] + "\n2024-03-05 10:00:00,MP1W,MIX1,PAY,CASH_ONLY,30.5,,\n", "2024-03-05")


def test_the_bills_payments_are_compared_with_the_cash_his_booked() -> None:
    from yibao.reconciliation.mobile import classify_bill, parse_bill

    rows = parse_bill(BILL, "2024-03-05")
    views = {"ORD1": _view(1)}  # fee 100, fund 60, acct 10: cash 30
    agree = [_entry("SETL1"), _entry("MP2W", fee="33.00", fund="0", acct="0")]
    assert classify_bill(rows, views, agree) == []
    differ = [_entry("SETL1", fund="50.00")]  # HIS booked 40 cash; the cash-only order not at all
    found = sorted((d.diff_class, d.setl_id, d.msgid) for d in classify_bill(rows, views, differ))
    assert found == [("mp_cash_mismatch", "MP1W", "MP1W"), ("mp_cash_not_in_his", "MP2W", "MP2W")]


def test_a_bill_payment_whose_insurance_order_6301_does_not_know_is_not_in_his() -> None:
    from yibao.reconciliation.mobile import classify_bill, parse_bill

    rows = parse_bill(BILL, "2024-03-05")[:1]
    assert [d.diff_class for d in classify_bill(rows, {}, [_entry("SETL1")])] == ["mp_cash_not_in_his"]


# --- WeChat Pay's refunds (the bill's REFUND lines against HIS's refunds) ----------------------------------------

BILL_WITH_REFUNDS = ("交易时间,商户订单号,医保自费混合订单号,类型,混合支付类型,现金金额(分),医保订单号,附加数据,商户退款单号\n"
                     "2024-03-05 10:00:00,MP1W,MIX1,PAY,CASH_AND_INSURANCE,3000,ORD1,,\n"
                     "2024-03-05 11:00:00,MP1W,MIX1,REFUND,CASH_AND_INSURANCE,3000,ORD1,,R1\n"
                     "2024-03-05 11:30:00,MP2W,MIX2,REFUND,CASH_ONLY,3300,,,R2\n")


def _refund(setl_id: str, msgid: str, cash: str, *, when: _dt.datetime = NOON) -> LedgerEntry:
    from dataclasses import replace

    return replace(_entry(setl_id, fee=cash, fund="0", acct="0", refund_of="SETL1", when=when), msgid=msgid)


def _bill_refunds(entries: list[LedgerEntry], sent: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    from yibao.reconciliation.mobile import classify_bill, parse_bill

    rows = parse_bill(BILL_WITH_REFUNDS, "2024-03-05")
    diffs = classify_bill(rows, {"ORD1": _view(1)}, [_entry("SETL1"), *entries], sent, date_from=DAY, date_to=DAY)
    assert all(d.diff_class in MOBILE_CLASSES for d in diffs)
    return sorted((d.diff_class, d.setl_id, d.msgid or "") for d in diffs)


def test_a_bills_refund_line_names_its_refund_and_order() -> None:
    from yibao.reconciliation.mobile import parse_bill

    rows = parse_bill(BILL_WITH_REFUNDS, "2024-03-05")
    assert [(r.kind, r.out_trade_no, r.refund_no, r.cash) for r in rows] == [
        ("PAY", "MP1W", None, Decimal("30.00")), ("REFUND", "MP1W", "R1", Decimal("30.00")),
        ("REFUND", "MP2W", "R2", Decimal("33.00"))]


def test_wechat_refunds_his_booked_by_their_refund_id_agree() -> None:
    his = [_refund("RSETL1", "R1", "30.00"), _refund("R2", "R2", "33.00")]  # an ALL refund, a cash-only one
    assert _bill_refunds(his) == []


def test_a_cash_refund_wechat_made_that_his_never_booked_is_found() -> None:
    assert _bill_refunds([_refund("RSETL1", "R1", "30.00")]) == [("mp_wechat_refund_not_in_his", "R2", "MP2W")]


def test_a_wechat_refund_his_booked_with_another_cash_amount_is_a_mismatch() -> None:
    his = [_refund("RSETL1", "R1", "20.00"), _refund("R2", "R2", "33.00")]
    assert _bill_refunds(his) == [("mp_wechat_refund_mismatch", "R1", "MP1W")]


def test_a_refund_sent_to_wechat_and_booked_in_his_that_no_bill_lists_is_found() -> None:
    from yibao.reconciliation.mobile import SentRefund

    his = [_refund("RSETL1", "R1", "30.00"), _refund("R2", "R2", "33.00"), _refund("R3", "R3", "12.00")]
    sent = {sn: SentRefund(sn, trade, Decimal(cash)) for sn, trade, cash in
            (("R1", "MP1W", "30.00"), ("R3", "MP3W", "12.00"), ("R4", "MP4W", "5.00"))}
    assert _bill_refunds(his, sent) == [("mp_wechat_refund_not_on_wechat", "R3", "MP3W")]


def test_a_refund_not_on_wechat_is_looked_for_only_in_his_period() -> None:
    from yibao.reconciliation.mobile import SentRefund

    yesterday = NOON - _dt.timedelta(days=1)
    his = [_refund("RSETL1", "R1", "30.00"), _refund("R2", "R2", "33.00"), _refund("R3", "R3", "12.00", when=yesterday)]
    assert _bill_refunds(his, {"R3": SentRefund("R3", "MP3W", Decimal("12.00"))}) == []


def test_a_bill_without_refund_numbers_compares_no_refunds() -> None:
    from yibao.reconciliation.mobile import classify_bill, parse_bill

    rows = parse_bill(BILL, "2024-03-05")
    assert [d.diff_class for d in classify_bill(rows, {"ORD1": _view(1)}, [_entry("SETL1"),
                                                                         _entry("MP2W", fee="33.00", fund="0",
                                                                                acct="0")])] == []


# --- refunds booked by hand in HIS (mp_refund_only_in_his) ------------------------------------------------------------


def _hand(setl_id: str, of: str, *, channel: str = "national", msgid: str | None = None, when: _dt.datetime = NOON,
          source: str = "his_result", **amounts: str) -> LedgerEntry:
    from dataclasses import replace

    return replace(_entry(setl_id, refund_of=of, when=when, channel=channel, **amounts), msgid=msgid, source=source)


def _with_sent(refs: list[OrderRef], views: list[MobileView], entries: list[LedgerEntry],
               sent: set[str]) -> list[tuple[str, str]]:
    diffs = classify_orders(refs, {v.pay_ord_id: v for v in views}, entries, date_from=DAY, date_to=DAY, sent=sent)
    assert all(d.diff_class in MOBILE_CLASSES for d in diffs)
    return sorted((d.diff_class, d.setl_id) for d in diffs)


def test_a_refund_booked_by_hand_in_his_with_no_6203_behind_it_is_refund_only_in_his() -> None:
    for channel in ("mobilepay-2.0", "national"):  # the window's refund names the mobile settlement, not its channel
        entries = [_entry("SETL1"), _hand("HAND1", "SETL1", channel=channel)]
        assert _with_sent([_ref(1)], [_view(1)], entries, set()) == [("mp_refund_only_in_his", "HAND1")], channel


def test_refund_only_in_his_names_the_order_and_both_sides() -> None:
    entries = [_entry("SETL1"), _hand("HAND1", "SETL1")]
    [diff] = classify_orders([_ref(1)], {"ORD1": _view(1)}, entries, date_from=DAY, date_to=DAY, sent=set())
    assert (diff.msgid, diff.refd_setl_flag, diff.his_medfee_sumamt, diff.plat_medfee_sumamt) == (
        "ORD1", "1", Decimal("-100.00"), Decimal("100.00"))


def test_a_refund_the_bridge_sent_that_the_platform_does_not_list_stays_refund_not_on_platform() -> None:
    entries = [_entry("SETL1"), _hand("R-APP-1", "SETL1", channel="mobilepay-2.0", msgid="R-APP-1")]
    assert _with_sent([_ref(1)], [_view(1)], entries, {"R-APP-1"}) == [("mp_refund_not_on_platform", "R-APP-1")]


def test_a_hand_refund_the_platform_lists_is_no_difference() -> None:
    refund = {"appRefdSn": "HAND1", "refStatus": "SUCC", "refdType": "ALL"}
    entries = [_entry("SETL1"), _hand("HAND1", "SETL1")]
    assert _with_sent([_ref(1)], [_view(1, stas="9", meaning="refunded", refunds=[refund])], entries, set()) == []


def test_hand_refunds_of_other_days_and_refunds_booked_by_reconciliation_are_not_reported() -> None:
    yesterday = NOON - _dt.timedelta(days=1)
    entries = [_entry("SETL1"), _hand("HAND0", "SETL1", when=yesterday), _hand("RC1", "SETL1", source="repair")]
    assert hand_refunds_of_period(entries, set(), date_from=DAY, date_to=DAY) == []
    assert "mp_refund_only_in_his" not in {c for c, _ in _with_sent([_ref(1)], [_view(1)], entries, set())}


def test_a_refund_of_a_settlement_that_is_not_mobile_pay_is_not_the_mobile_runs() -> None:
    entries = [_entry("SETL7", channel="national"), _hand("HAND7", "SETL7")]
    assert hand_refunds_of_period(entries, set(), date_from=DAY, date_to=DAY) == []


def _plan(view: MobileView | None, hand: LedgerEntry | None) -> Any:
    from yibao.reconciliation.mobile import _plan_as_booked

    return _plan_as_booked(None, view, hand)  # type: ignore[arg-type]


def test_the_repair_of_a_hand_refund_of_everything_is_6203_all_with_approval() -> None:
    from yibao.reconciliation.approval import MONEY_MOVING_ACTIONS

    plan = _plan(_view(1), _hand("HAND1", "SETL1"))
    assert (plan.action, plan.refd_type, plan.parts, plan.amount) == (
        "mp_refund_as_booked", "ALL", (Decimal("30.00"), Decimal("10.00"), Decimal("60.00")), Decimal("100.00"))
    assert plan.action in MONEY_MOVING_ACTIONS  # finance approves it
    assert "not paid back by hand" in plan.reason


def test_a_hand_refund_of_the_insurance_part_is_6203_hi_and_of_the_cash_part_6203_cash() -> None:
    hi = _plan(_view(1), _hand("HAND1", "SETL1", fee="70.00", fund="60.00", acct="10.00"))
    assert (hi.action, hi.refd_type, hi.parts) == ("mp_refund_as_booked", "HI",
                                                   (Decimal("0"), Decimal("10.00"), Decimal("60.00")))
    cash = _plan(_view(1), _hand("HAND1", "SETL1", fee="30.00", fund="0.00", acct="0.00"))
    assert (cash.action, cash.refd_type, cash.parts) == ("mp_refund_as_booked", "CASH",
                                                         (Decimal("30.00"), Decimal("0"), Decimal("0")))


def test_a_hand_refund_of_another_amount_is_left_to_people() -> None:
    assert _plan(_view(1), _hand("HAND1", "SETL1", fee="12.00", fund="0.00", acct="0.00")).action == "manual"


def test_the_repair_is_nothing_once_the_platform_lists_the_refund_or_his_dropped_it() -> None:
    refund = {"appRefdSn": "HAND1", "refStatus": "SUCC", "refdType": "ALL"}
    assert _plan(_view(1, stas="9", meaning="refunded", refunds=[refund]), _hand("HAND1", "SETL1")).action == "none"
    assert _plan(_view(1), None).action == "none"
    assert _plan(None, _hand("HAND1", "SETL1")).action == "manual"
    assert _plan(_view(1, stas="7", meaning="revoked"), _hand("HAND1", "SETL1")).action == "manual"
