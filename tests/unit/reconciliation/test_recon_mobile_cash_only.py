"""A refund booked by hand in HIS of a WeChat CASH_ONLY order (paid wholly in WeChat Pay: no 医保 order, nothing
6301 can tell): found by the mobile run with WeChat's 查询订单 and bill (mp_cash_refund_only_in_his), refunded in
WeChat Pay (申请退款) once finance approves, a lost answer looked up with 退款查询 — and the national run leaves every
difference of a mobile-paid settlement to the mobile run."""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from unit.reconciliation.recon_fakes import NOON, TODAY, PEntry, entry
from yibao.core import clock
from yibao.core.db.schema import recon_audit
from yibao.core.results import HisResult, SettlementSplit
from yibao.envelope.errors import BusinessRejection, UnknownOutcome
from yibao.reconciliation.approval import MONEY_MOVING_ACTIONS
from yibao.reconciliation.audit import Actor
from yibao.reconciliation.errors import ApprovalError
from yibao.reconciliation.ledger import LedgerEntry, entry_by_setl_id, record_result
from yibao.reconciliation.mobile import (MOBILE_CLASSES, BillRow, MobileDeps, cash_only_hand_refunds,
                                         classify_cash_only_refunds)
from yibao.reconciliation.models import RunRequest
from yibao.reconciliation.reconciler import Reconciler
from yibao.reconciliation.repairs import MOBILE_RUN, apply_difference
from yibao.reconciliation.runs import differences_of, update_difference

TRADE = "MPORDER1W"  # WeChat's out_trade_no of the CASH_ONLY order: the setl_id HIS got
ZERO = Decimal("0.00")
CLERK = Actor("clerk.li", "clerk", "cli", "test")
APPROVER = Actor("approver.wang", "approver", "cli", "test")


# --- stand-ins ------------------------------------------------------------------------------------------------------


class Reply:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output


class FakeWeChat:
    """WeChat Pay as reconciliation sees it: 查询订单 (8803), 申请退款 (8804), 退款查询 (8805), 下载账单 (8806) of one
    CASH_ONLY order; ``lose_refund_answer``: the next 8804 is done and its answer lost."""

    def __init__(self, *, cash_fen: int = 3300, paid_on: _dt.date = TODAY) -> None:
        self.cash_fen, self.paid_on = cash_fen, paid_on
        self.refunds: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lose_refund_answer = False
        self.refuse_refund: str | None = None

    def order(self) -> dict[str, Any]:
        refunded = sum(r["amount"]["refund"] for r in self.refunds.values())
        return {"out_trade_no": TRADE, "mix_pay_type": "CASH_ONLY", "mix_pay_status": "MIX_PAY_SUCCESS",
                "self_pay_status": "SELF_PAY_REFUND" if refunded >= self.cash_fen else "SELF_PAY_SUCCESS",
                "med_ins_pay_status": "NO_MED_INS_PAY", "wechat_pay_cash_fee": self.cash_fen,
                "total_fee": self.cash_fen}

    async def call(self, infno: str, input: Any, **kw: Any) -> Reply:  # noqa: A002
        data = dict(input.get("data") or {})
        self.calls.append((infno, data))
        if infno == "8803":
            if data["out_trade_no"] != TRADE:
                raise BusinessRejection("8803", "ORDER_NOT_EXIST: 订单不存在", infcode="ORDER_NOT_EXIST")
            return Reply(self.order())
        if infno == "8804":
            if self.refuse_refund:
                raise BusinessRejection("8804", self.refuse_refund, infcode="INVALID_REQUEST")
            sn = data["out_refund_no"]
            refund = self.refunds.setdefault(sn, {"out_refund_no": sn, "out_trade_no": data["out_trade_no"],
                                                  "status": "SUCCESS", "amount": dict(data["amount"])})
            if self.lose_refund_answer:
                self.lose_refund_answer = False
                raise UnknownOutcome("8804", "WX1", "the connection was reset")
            return Reply(refund)
        if infno == "8805":
            refund = self.refunds.get(data["out_refund_no"])
            if refund is None:
                raise BusinessRejection("8805", "RESOURCE_NOT_EXISTS: 退款单不存在", infcode="RESOURCE_NOT_EXISTS")
            return Reply(refund)
        if infno == "8806":
            return Reply({"bill": self.bill(data["bill_date"])})
        raise AssertionError(infno)

    def bill(self, day: str) -> str:
        lines = ["交易时间,商户订单号,医保自费混合订单号,类型,混合支付类型,现金金额(分),医保订单号,附加数据,商户退款单号"]
        if clock.format_date(self.paid_on) == day:
            lines.append(f"{day} 09:00:00,{TRADE},MIX1,PAY,CASH_ONLY,{self.cash_fen},,,")
        if clock.format_date(TODAY) == day:
            lines += [f"{day} 15:00:00,{TRADE},MIX1,REFUND,CASH_ONLY,{r['amount']['refund']},,,{sn}"
                      for sn, r in self.refunds.items()]
        return "\n".join(lines) + "\n"

    def count(self, infno: str) -> int:
        return sum(1 for n, _ in self.calls if n == infno)


class NoMobilePlatform:
    """The 医保 mobile-pay platform: a CASH_ONLY order never reaches it."""

    async def call(self, infno: str, input: Any, **kw: Any) -> Any:  # noqa: A002
        raise AssertionError(f"{infno} asked of the 医保 platform about a CASH_ONLY order")


# --- HIS's side -------------------------------------------------------------------------------------------------------


def _cash_only_settled(cash: str = "33.00", when: _dt.datetime = NOON) -> HisResult:
    """What the mobile-pay service tells HIS of a paid CASH_ONLY WeChat order (yibao.mobilepay.results)."""
    c = Decimal(cash)
    return HisResult(message_id="mp-settled-1", his_visit_id="V1", visit_kind="outpatient", kind="settled",
                     service="mobilepay", psn_no="P1", insutype="310", insuplc_admdvs="440100", setl_id=TRADE,
                     setl_time=when, clr_type="11", clr_optins="440100", refd_setl_flag="0",
                     split=SettlementSplit(medfee_sumamt=c, fund_pay_sumamt=ZERO, psn_part_amt=c, acct_pay=ZERO,
                                           psn_cash_pay=c),
                     detail={"channel": "mobilepay-2.0", "cash_only": True, "wechat_out_trade_no": TRADE,
                             "wechat_mix_pay_type": "CASH_ONLY"})


def _hand_refund(cash: str = "33.00", setl_id: str = "HANDCASH1", **kw: Any) -> HisResult:
    """HIS's window refunding the order by hand: it names the settlement, on the counter's channel, no 8804."""
    c = Decimal(cash)
    fields: dict[str, Any] = dict(
        message_id=f"hand-{setl_id}", his_visit_id="V1", visit_kind="outpatient", kind="refunded",
        service="his-window", setl_id=setl_id, orig_setl_id=TRADE, setl_time=NOON + _dt.timedelta(hours=2),
        clr_type="11", refd_setl_flag="1", split=SettlementSplit(medfee_sumamt=-c, fund_pay_sumamt=ZERO,
                                                                 psn_part_amt=-c, acct_pay=ZERO, psn_cash_pay=-c))
    fields.update(kw)
    return HisResult(**fields)


@pytest.fixture
def wechat() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def mobile_reconciler(engine, platform, make_settings, wechat) -> Reconciler:
    mobile = MobileDeps(NoMobilePlatform(), lambda stas: None, wechat=wechat)
    return Reconciler(engine, platform, make_settings(), default_optins="440100", mobile=mobile)


@pytest.fixture
def his(engine):
    def book(*results: HisResult) -> None:
        with engine.begin() as conn:
            for r in results:
                assert record_result(conn, r) == "processed"

    return book


MOBILE_RUN_TODAY = RunRequest.for_day(TODAY, scope="mobile", requested_by="clerk.li", trigger="cli")


def _mine(engine, run_id: str) -> list[Any]:
    with engine.connect() as conn:
        return [d for d in differences_of(conn, run_id) if d.diff_class == "mp_cash_refund_only_in_his"]


# --- the ledger ------------------------------------------------------------------------------------------------------


def test_a_refund_of_a_wechat_cash_only_settlement_is_kept_out_of_the_national_ledger(engine, his) -> None:
    his(_cash_only_settled(), _hand_refund(insutype=None, clr_optins=None))  # the window names no 医保 fields
    with engine.connect() as conn:
        settled, refund = entry_by_setl_id(conn, TRADE), entry_by_setl_id(conn, "HANDCASH1")
    assert (settled.status, refund.status) == ("cash", "cash")  # no national settlement: 3201/3202 never see it
    assert (refund.channel, refund.orig_setl_id, refund.psn_cash_pay) == ("national", TRADE, Decimal("-33.00"))


# --- classification (pure) ------------------------------------------------------------------------------------------


def _ledger(*, hand_msgid: str | None = None, source: str = "his_result") -> list[LedgerEntry]:
    settled = replace(entry(TRADE, "33.00", fund="0.00", acct="0.00", channel="mobilepay-2.0"), status="cash",
                      msgid=None)
    hand = replace(entry("HANDCASH1", "33.00", fund="0.00", acct="0.00", flag="1", orig=TRADE,
                         when=NOON + _dt.timedelta(hours=2)), status="cash", msgid=hand_msgid, source=source)
    return [settled, hand]


def _classified(orders: dict[str, Any], bill: list[BillRow] | None = None, *, sent: set[str] | None = None,
                entries: list[LedgerEntry] | None = None) -> list[tuple[str, str, str | None]]:
    pairs = cash_only_hand_refunds(entries or _ledger(), sent or set(), date_from=TODAY, date_to=TODAY)
    diffs = classify_cash_only_refunds(pairs, orders, bill or [])
    assert all(d.diff_class in MOBILE_CLASSES for d in diffs)
    return [(d.diff_class, d.setl_id, d.msgid) for d in diffs]


def test_a_hand_refund_of_a_wechat_cash_only_order_wechat_still_holds_paid_is_cash_refund_only_in_his() -> None:
    paid = {TRADE: FakeWeChat().order()}
    assert _classified(paid) == [("mp_cash_refund_only_in_his", "HANDCASH1", TRADE)]
    [diff] = classify_cash_only_refunds(cash_only_hand_refunds(_ledger(), set(), date_from=TODAY, date_to=TODAY),
                                        paid)
    assert (diff.channel, diff.his_visit_id, diff.refd_setl_flag) == ("mobilepay-2.0", "V-HANDCASH1", "1")
    assert (diff.his_medfee_sumamt, diff.plat_medfee_sumamt) == (Decimal("-33.00"), Decimal("33.00"))
    assert "still holds the order paid" in (diff.memo or "") and "national" in (diff.memo or "")


def test_a_cash_only_refund_wechat_knows_or_the_bridge_sent_is_not_a_hand_refund() -> None:
    refunded = dict(FakeWeChat().order(), self_pay_status="SELF_PAY_REFUND")
    assert _classified({TRADE: refunded}) == []  # refunded in WeChat Pay itself: the bill's classes see to it
    assert _classified({TRADE: None}) == []  # an order WeChat Pay does not know
    billed = [BillRow(clock.format_date(TODAY), TRADE, "REFUND", "CASH_ONLY", Decimal("33.00"), None, "HANDCASH1")]
    assert _classified({TRADE: FakeWeChat().order()}, billed) == []
    assert _classified({TRADE: FakeWeChat().order()}, sent={"HANDCASH1"}) == []  # the bridge's own 8804
    assert _classified({TRADE: FakeWeChat().order()}, entries=_ledger(source="repair")) == []


def test_a_hand_refund_of_a_mixed_order_is_not_a_cash_only_one() -> None:
    settled, hand = _ledger()
    mixed = replace(settled, status="booked")  # a 医保 settlement: mp_refund_only_in_his (6301) sees to it
    assert cash_only_hand_refunds([mixed, hand], set(), date_from=TODAY, date_to=TODAY) == []


# --- the run, the approval and the repair ------------------------------------------------------------------------------


async def test_a_hand_refund_of_a_wechat_cash_only_order_is_found_and_refunded_once_approved(
        mobile_reconciler, engine, his, wechat, sent_results) -> None:
    his(_cash_only_settled(), _hand_refund())
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    assert run.state == "differences_found"
    [diff] = _mine(engine, run.run_id)
    assert (diff.setl_id, diff.msgid, diff.action, diff.status, diff.amount) == (
        "HANDCASH1", TRADE, "mp_cash_refund_as_booked", "pending_approval", Decimal("33.00"))
    assert diff.action in MONEY_MOVING_ACTIONS and "not paid back by hand" in (diff.outcome or "")
    assert wechat.count("8804") == 0 and sent_results() == []  # nothing moves before finance approves

    done = await mobile_reconciler.approve(run.run_id, by="approver.wang", reason="not paid back at the window",
                                           ids=[diff.id], actor=APPROVER)
    assert done.state == "repaired_and_balanced"
    [after] = _mine(engine, run.run_id)
    assert (after.status, after.approved_by) == ("repaired", "approver.wang")
    [(_, refund)] = [c for c in wechat.calls if c[0] == "8804"]
    assert (refund["out_trade_no"], refund["out_refund_no"], refund["amount"]["refund"], refund["amount"]["total"]) == (
        TRADE, after.repair_msgid, 3300, 3300)
    with engine.connect() as conn:
        assert entry_by_setl_id(conn, "HANDCASH1").status == "voided"
        booked = entry_by_setl_id(conn, after.repair_msgid)
        audit = conn.execute(select(recon_audit.c.actor, recon_audit.c.role, recon_audit.c.action)
                             .where(recon_audit.c.run_id == run.run_id)).all()
    assert (booked.status, booked.orig_setl_id, booked.psn_cash_pay, booked.source) == (
        "cash", TRADE, Decimal("-33.00"), "repair")
    assert ("approver.wang", "approver", "approve") in [tuple(a) for a in audit]
    told = sent_results()
    assert [(r.kind, r.setl_id, (r.detail or {}).get("voided_setl_id")) for r in told] == [
        ("settled", TRADE, "HANDCASH1"), ("refunded", after.repair_msgid, None)]
    assert told[1].orig_setl_id == TRADE and told[1].split.psn_cash_pay == Decimal("-33.00")

    again = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)  # WeChat's bill lists the refund now
    assert again.state == "balanced", again.message
    assert wechat.count("8804") == 1


async def test_a_lost_answer_of_wechats_refund_is_looked_up_by_refund_query_and_never_sent_twice(
        mobile_reconciler, engine, his, wechat, sent_results) -> None:
    his(_cash_only_settled(), _hand_refund())
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    [diff] = _mine(engine, run.run_id)
    wechat.lose_refund_answer = True
    await mobile_reconciler.approve(run.run_id, by="approver.wang", reason="ok", ids=[diff.id], actor=APPROVER)
    [pending] = _mine(engine, run.run_id)
    assert pending.status == "applying" and "8805" in (pending.outcome or "")
    assert pending.repair_msgid in wechat.refunds  # stored before it was sent: the refund WeChat made
    with engine.connect() as conn:
        assert entry_by_setl_id(conn, "HANDCASH1").status == "cash"  # HIS untouched until WeChat's answer is known

    assert await apply_difference(mobile_reconciler.deps, diff.id) == "repaired"
    assert (wechat.count("8804"), wechat.count("8805")) == (1, 1)
    assert [r.kind for r in sent_results()] == ["settled", "refunded"]
    assert await apply_difference(mobile_reconciler.deps, diff.id) == "repaired"  # once done, done
    assert wechat.count("8804") == 1 and len(sent_results()) == 2


async def test_a_refund_wechat_never_received_is_sent_again_under_the_same_refund_id(
        mobile_reconciler, engine, his, wechat) -> None:
    his(_cash_only_settled(), _hand_refund())
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    [diff] = _mine(engine, run.run_id)
    sn = "RCNEVERARRIVED0001"
    with engine.begin() as conn:  # the 8804 was stored, then the worker died before WeChat Pay got it
        update_difference(conn, diff.id, expect={"pending_approval"}, status="applying", repair_msgid=sn)
    assert await apply_difference(mobile_reconciler.deps, diff.id) == "repaired"
    [(_, refund)] = [c for c in wechat.calls if c[0] == "8804"]
    [after] = _mine(engine, run.run_id)
    assert wechat.count("8805") == 1 and refund["out_refund_no"] == after.repair_msgid


async def test_a_refund_wechat_refuses_goes_to_people(mobile_reconciler, engine, his, wechat, sent_results) -> None:
    his(_cash_only_settled(), _hand_refund())
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    [diff] = _mine(engine, run.run_id)
    wechat.refuse_refund = "INVALID_REQUEST: 退款金额超过可退金额"
    await mobile_reconciler.approve(run.run_id, by="approver.wang", reason="ok", ids=[diff.id], actor=APPROVER)
    [after] = _mine(engine, run.run_id)
    assert after.status == "manual" and "退款金额超过可退金额" in (after.outcome or "")
    assert sent_results() == []


async def test_a_cash_only_hand_refund_of_more_than_wechat_collected_is_left_to_people(
        mobile_reconciler, engine, his, wechat) -> None:
    his(_cash_only_settled(), _hand_refund("40.00"))
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    [diff] = _mine(engine, run.run_id)
    assert (diff.action, diff.status) == ("manual", "manual") and "collected 33.00" in (diff.outcome or "")
    assert wechat.count("8804") == 0


async def test_an_order_refunded_in_wechat_since_the_run_is_not_refunded_again(
        mobile_reconciler, engine, his, wechat) -> None:
    his(_cash_only_settled(), _hand_refund())
    run = await mobile_reconciler.run(MOBILE_RUN_TODAY, actor=CLERK)
    [diff] = _mine(engine, run.run_id)
    wechat.refunds["CASHIER-1"] = {"out_refund_no": "CASHIER-1", "status": "SUCCESS",
                                   "amount": {"refund": 3300, "total": 3300}}  # the cashier, in WeChat Pay
    await mobile_reconciler.approve(run.run_id, by="approver.wang", reason="ok", ids=[diff.id], actor=APPROVER)
    [after] = _mine(engine, run.run_id)
    assert after.status == "manual" and "SELF_PAY_REFUND" in (after.outcome or "")
    assert wechat.count("8804") == 0


# --- the national run leaves a mobile-paid settlement to the mobile run ----------------------------------------------


async def test_the_national_run_leaves_a_mobile_paid_settlement_to_the_mobile_run(
        reconciler, platform, book, engine, sent_results) -> None:
    paid = entry("MPSETL1", "41.00", channel="mobilepay-2.0")  # paid through mobile pay: both sides hold it
    book(paid)
    platform.add(PEntry.of(paid))
    book(entry("HANDREF1", "41.00", flag="1", orig="MPSETL1", channel="national"))  # the counter's hand refund
    run = await reconciler.run(RunRequest.for_day(TODAY))
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
        assert entry_by_setl_id(conn, "HANDREF1").status == "booked"
    assert (diff.diff_class, diff.setl_id, diff.action, diff.status, diff.needs_approval) == (
        "his_only", "HANDREF1", MOBILE_RUN, "resolved", False)
    assert "mobile-pay reconciliation" in (diff.outcome or "") and "MPSETL1" in (diff.outcome or "")
    assert sent_results() == [] and platform.count("2601") == 0
    with pytest.raises(ApprovalError):  # nothing of the national run's to approve
        await reconciler.approve(run.run_id, by="finance-li", reason="void it")


async def test_a_national_refund_of_a_national_settlement_is_still_the_national_runs(reconciler, platform, book,
                                                                                   engine) -> None:
    paid = entry("NSETL1", "41.00")
    book(paid)
    platform.add(PEntry.of(paid))
    book(entry("NREF1", "41.00", flag="1", orig="NSETL1"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert (diff.setl_id, diff.action, diff.status) == ("NREF1", "void", "pending_approval")


async def test_an_approved_national_repair_of_a_mobile_paid_settlement_is_never_applied(
        reconciler, platform, book, engine, sent_results) -> None:
    paid = entry("MPSETL2", "41.00", channel="mobilepay-1.0")
    book(paid)
    platform.add(PEntry.of(paid))
    book(entry("HANDREF2", "41.00", flag="1", orig="MPSETL2"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    with engine.begin() as conn:  # as a run before this rule left it: a void approved
        [diff] = differences_of(conn, run.run_id)
        update_difference(conn, diff.id, expect={"resolved"}, status="approved", action="void", approved_by="x")
    assert await apply_difference(reconciler.deps, diff.id) == "resolved"
    with engine.connect() as conn:
        assert entry_by_setl_id(conn, "HANDREF2").status == "booked"
        [after] = differences_of(conn, run.run_id)
    assert after.action == MOBILE_RUN and sent_results() == []


def test_every_class_and_action_fits_the_differences_table() -> None:
    from yibao.core.db.schema import recon_differences

    assert all(len(c) <= recon_differences.c.diff_class.type.length for c in MOBILE_CLASSES)
    assert all(len(a) <= recon_differences.c.action.type.length for a in (*MONEY_MOVING_ACTIONS, MOBILE_RUN))


async def test_a_platform_entry_a_mobile_pay_refund_booked_is_left_to_the_mobile_run(
        reconciler, platform, engine, sent_results) -> None:
    from yibao.core.db.schema import platform_calls

    platform.add(PEntry.of(entry("MPCANCEL1", "41.00", flag="1", orig="MPSETL3", msgid="MSG-6203")))
    with engine.begin() as conn:  # the mobile run's own 6203, its answer still awaited: logged as reconciliation's
        conn.execute(platform_calls.insert().values(service="reconciliation", platform="mobilepay", infno="6203",
                                                    msgid="MSG-6203", visit_key="V-9", started_at=NOON,
                                                    outcome="unknown"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    with engine.connect() as conn:
        [diff] = differences_of(conn, run.run_id)
    assert (diff.diff_class, diff.action, diff.status) == ("platform_only", MOBILE_RUN, "resolved")
    assert sent_results() == [] and platform.count("2601") == 0


async def test_a_cash_only_entry_naming_no_clearing_institution_never_fails_the_national_run(
        reconciler, platform, book, his) -> None:
    both = entry("NSETL9", "12.00")
    book(both)
    platform.add(PEntry.of(both))
    his(_cash_only_settled(), _hand_refund(clr_optins=None, insuplc_admdvs=None, insutype=None))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    assert run.state == "balanced", run.message  # 3201 is asked nothing about the cash-only entries
    assert [i["data"]["setl_optins"] for n, i in platform.calls if n == "3201"] == ["440100"]
