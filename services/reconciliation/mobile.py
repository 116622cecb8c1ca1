"""The daily mobile-pay reconciliation: orders paid on the platform but not in HIS, or the reverse — the mobile
单边账 — found beside 3201/3202, in classes of their own, and repaired with finance's approval.

A mobile-pay settlement is also a national settlement (6202 books one, ``hiDocSn``): 3201 counts it, and a mobile
单边账 also makes 3202 disagree — the national run leaves those to this one (:func:`is_mobile`).

**What is compared.** The orders the bridge made in the period (``mobile_lookback_days`` before it too): every
6201 and 6202 our call log holds (``platform_calls``, platform ``mobilepay`` / ``mobilepay-1.0``, written by this
deployment's mobile-pay service — reconciliation reads no other service's tables), each asked with **6301** for what the platform made of it; and HIS's side, the
ledger entries of the mobile-pay channels (``mobilepay-2.0`` / ``mobilepay-1.0``, kept apart in every report).

=========================  ==============================================  ========================================
class                      found when                                      repair (money-moving ones need approval)
=========================  ==============================================  ========================================
mp_paid_not_in_his         the platform settled the order (its hiDocSn);   ``mp_refund``: the patient gets the money
                           HIS has no such settlement                      back — 6203 ALL, or (``mobile_refund_via``
                                                                           2208, where the province says so) the
                                                                           counter's 2208 so the patient need not
                                                                           scan again, then 6203 CASH for the cash
                                                                           part — and HIS books both the settlement
                                                                           and its refund (the ledgers then agree,
                                                                           3201 included); ``mp_book`` when the
                                                                           platform refunded it already
mp_in_his_not_paid         HIS holds a mobile settlement no order of the   ``void``: HIS gets the compensating
                           platform holds as paid                          ``refunded``
mp_amount_mismatch         both hold it, the amounts differ                ``correct``: HIS takes the platform's
mp_refund_not_in_his       the platform refunded (SUCC), HIS never booked  ``mp_adopt_refund``: HIS books it
                           that refund
mp_refund_not_on_platform  HIS booked a refund the platform does not list  manual
                           (a refund the bridge sent: 6203 / 8804)
mp_refund_only_in_his      HIS booked a refund of a mobile-pay order (any  ``mp_refund_as_booked``: the platform
                           channel: the window's, by hand) that no 6203 /  refunds what HIS booked (6203 ALL, HI
                           8804 of the bridge stands behind, and 6301      or CASH — the parts HIS refunded, which
                           still holds the order paid                      must be whole parts), stored before it
                                                                           is sent; then HIS's hand-booked refund
                                                                           is voided and the platform's refund
                                                                           booked in its place (HIS told of both).
                                                                           Approve only when the patient was not
                                                                           paid back by hand: else reject (manual)
mp_cash_refund_only_in    HIS booked a refund (any channel, by hand) of   ``mp_cash_refund_as_booked``: WeChat
_his                       a WeChat CASH_ONLY order (no 医保 order: no      Pay refunds the cash HIS booked (8804,
                           6301 can tell), no 8804 of the bridge stands    its out_refund_no stored before it is
                           behind it, WeChat's 查询订单 (8803) still holds  sent; a lost answer is looked up by
                           the cash part paid and no bill of the period    退款查询 8805), then HIS's hand refund is
                           lists it                                        voided and WeChat's refund booked in its
                                                                           place. Approve only when the patient
                                                                           was not paid back by hand
mp_cash_not_in_his         WeChat Pay's daily bill (8806) shows a cash     manual: refund it in WeChat Pay (8804)
                           part collected for an order HIS holds no        or book it in HIS, by hand
                           settlement of
mp_cash_mismatch           the bill's cash part differs from the cash HIS  manual
                           booked for that order
mp_wechat_refund_not_in    the bill shows a cash refund (its 商户退款单号)   ``mp_adopt_wechat_refund``: HIS books
_his                       HIS holds no refund of                          the cash refund WeChat Pay made (8805
                                                                           confirms it first)
mp_wechat_refund_not_on    HIS booked a refund the bridge sent to WeChat   ``mp_wechat_refund``: WeChat Pay
_wechat                    Pay (8804, our call log), the bill lists none   refunds the patient's cash part (8804,
                                                                           the same out_refund_no) — when 8805
                                                                           knows no such refund; manual when it
                                                                           ended otherwise
mp_wechat_refund_mismatch  the bill's refund and HIS's differ in cash      manual
=========================  ==============================================  ========================================

**WeChat Pay's bill.** When WeChat channels are enabled (``YIBAO_WECHAT_*`` configured), each day of the period's
bill is downloaded (8806 下载账单) and its payments (type PAY) are compared with HIS's ledger: an order with an
insurance part by the settlement 6301 names (the bill's 医保订单号 = payOrdId), a CASH_ONLY order by its
out_trade_no (the setl_id HIS got). Its refunds (type REFUND) are compared by their 商户退款单号 (out_refund_no:
the bridge's refund id, which HIS's refund carries as its msgid) with HIS's refunds; the other way round, every
refund the bridge sent to WeChat Pay (8804 in this deployment's call log) that HIS booked in the period must be on
the period's bills. A bill without a 商户退款单号 column compares no refunds.

**Refunds booked by hand in HIS.** HIS's ledger holds every refund HIS was told of, whatever its channel: a
refund whose original settlement is a mobile-pay one is read with the mobile ledger (:func:`mobile_entries`), and
one booked in the period whose id (setl_id / msgid) is neither a refund the platform lists for the order nor a
refund the bridge ever sent (6203 appRefdSn, 8804 out_refund_no in this deployment's call log:
:func:`refunds_sent`) is ``mp_refund_only_in_his`` — also when the order itself was paid before the period (its
6301 is asked all the same: :func:`order_ref_by_settlement`). A hand refund of a WeChat CASH_ONLY order (a settlement
the ledger keeps as ``cash``: no 医保 order, 6301 knows nothing of it) is asked of WeChat Pay instead — 查询订单 (8803)
by its out_trade_no, and the period's bills — and is ``mp_cash_refund_only_in_his`` while WeChat still holds the
cash part paid and lists no such refund (:func:`cash_only_hand_refunds`, :func:`classify_cash_only_refunds`).

A refund is stored (its appRefdSn, ``repair_msgid``) before it is sent; the platform treats appRefdSn as the
refund's identity, so an attempt after a lost answer asks 6301 and never refunds twice.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from yibao.core import clock
from yibao.core.db.schema import platform_calls, recon_ledger
from yibao.core.deployment import Deployment
from yibao.core.errors import ReconciliationError
from yibao.core.money import ZERO, money
from yibao.core.results import HisResult, SettlementSplit, stable_id
from yibao.envelope.errors import BusinessRejection, PlatformError

from . import metrics, writeback
from .classify import Difference
from .ledger import entry_by_setl_id, insert_entry, LedgerEntry
from .ledger import void_entry as _void_entry
from .ledger import correct_entry as _correct_entry
from .runs import DifferenceRecord, difference, update_difference
from .truth import PlatformEntry, query_entry

__all__ = ["MOBILE_CLASSES", "OrderRef", "MobileView", "MobileDeps", "is_mobile", "orders_of_period", "order_ref",
           "mobile_entries", "classify_orders", "views_of", "plan_mobile", "plan_mobile_difference",
           "apply_mobile_difference", "refund_sn", "BillRow", "parse_bill", "classify_bill", "bills_of",
           "SentRefund", "wechat_refunds_sent", "classify_bill_refunds", "refunds_sent", "order_ref_by_settlement",
           "hand_refunds_of_period", "cash_only_hand_refunds", "classify_cash_only_refunds", "wechat_orders_of"]

log = logging.getLogger(__name__)

MOBILE_CLASSES: tuple[str, ...] = ("mp_paid_not_in_his", "mp_in_his_not_paid", "mp_amount_mismatch",
                                   "mp_refund_not_in_his", "mp_refund_not_on_platform", "mp_cash_not_in_his",
                                   "mp_cash_mismatch", "mp_wechat_refund_not_in_his",
                                   "mp_wechat_refund_not_on_wechat", "mp_wechat_refund_mismatch",
                                   "mp_refund_only_in_his", "mp_cash_refund_only_in_his")
#: what 6301's ordStas means (the same table as the mobile-pay service's, YIBAO_MP_ORD_STAS)
PAID_MEANINGS = frozenset({"settled", "refunded"})
#: the mobile-pay service's name (its calls, scoped by the deployment, are the orders reconciled here)
MOBILEPAY_SERVICE = "mobilepay"


def is_mobile(channel: str | None) -> bool:
    return bool(channel) and str(channel).startswith("mobilepay")


def version_of_platform(platform: str) -> str:
    return "1.0" if platform.endswith("-1.0") else "2.0"


@dataclass(frozen=True)
class OrderRef:
    """An order the bridge made (from its call log): enough to ask 6301."""

    pay_ord_id: str
    pay_token: str
    visit_key: str | None
    version: str
    med_org_ord: str | None = None
    insu_code: str | None = None  #: the patient's 参保地 (6201's insuCode): 5203 needs it


@dataclass
class MobileView:
    """6301's answer about one order, as reconciliation reads it."""

    pay_ord_id: str
    meaning: str | None
    ord_stas: str
    fee: Decimal | None
    cash: Decimal | None
    acct: Decimal | None
    fund: Decimal | None
    hi_doc_sn: str | None
    hi_rgst_sn: str | None
    psn_no: str | None
    refunds: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, output: dict[str, Any], meaning: Any) -> MobileView:
        def amount(key: str) -> Decimal | None:
            value = output.get(key)
            return None if value in (None, "") else money(Decimal(str(value)))

        return cls(pay_ord_id=str(output.get("payOrdId") or ""), meaning=meaning(output.get("ordStas")),
                   ord_stas=str(output.get("ordStas") or ""), fee=amount("feeSumamt"), cash=amount("ownPayAmt"),
                   acct=amount("psnAcctPay"), fund=amount("fundPay"), hi_doc_sn=output.get("hiDocSn") or None,
                   hi_rgst_sn=output.get("hiRgstSn") or None, psn_no=output.get("psnNo") or None,
                   refunds=[r for r in output.get("refdList") or [] if isinstance(r, dict)])

    def succeeded_refunds(self) -> list[dict[str, Any]]:
        return [r for r in self.refunds if str(r.get("refStatus")) == "SUCC"]

    def refundable(self) -> tuple[Decimal, Decimal, Decimal]:
        cash, acct, fund = self.cash or ZERO, self.acct or ZERO, self.fund or ZERO
        for r in self.succeeded_refunds():
            cash -= money(Decimal(str(r.get("cashRefdAmt") or "0")))
            acct -= money(Decimal(str(r.get("psnAcctRefdAmt") or "0")))
            fund -= money(Decimal(str(r.get("fundRefdAmt") or "0")))
        return money(cash), money(acct), money(fund)


# --- the orders of a period, from the call log -------------------------------------------------------------------


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _data(value: dict[str, Any]) -> dict[str, Any]:
    """A logged input's business fields (the call log holds them bare or under ``data``)."""
    inner = value.get("data")
    return inner if isinstance(inner, dict) else value


def _ours(conn: Connection) -> Any:
    """The mobile-pay calls of this deployment: those its mobile-pay service made (``platform_calls.service`` is the
    deployment's scoped name of the service, as ``chain_visits.service``), never another deployment's sharing the
    database."""
    c = platform_calls.c
    return and_(c.service == Deployment.of(conn).scoped(MOBILEPAY_SERVICE),
                or_(c.platform == "mobilepay", c.platform.like("mobilepay-%")))


def orders_of_period(conn: Connection, start: _dt.datetime, end: _dt.datetime) -> list[OrderRef]:
    """Every order this deployment's mobile-pay calls name between ``start`` and ``end``: 6201 answers (payOrdId,
    payToken) and 6202/6203/6301/6401 inputs (payOrdId, payToken) — whatever their outcome."""
    c = platform_calls.c
    rows = conn.execute(select(c.infno, c.platform, c.visit_key, c.input_masked, c.output_masked, c.outcome)
                        .where(_ours(conn), c.started_at >= start, c.started_at < end)
                        .order_by(c.started_at, c.id)).all()
    found: dict[str, OrderRef] = {}
    for infno, platform, visit_key, input_text, output_text, outcome in rows:
        data_in = _data(_json(input_text))
        if infno == "6201":
            out = _json(output_text)
            pay_ord_id, token = out.get("payOrdId"), out.get("payToken")
            med_org_ord, insu = data_in.get("medOrgOrd"), data_in.get("insuCode")
        else:
            pay_ord_id, token, med_org_ord, insu = data_in.get("payOrdId"), data_in.get("payToken"), None, None
        if not pay_ord_id or not token:
            continue
        known = found.get(str(pay_ord_id))
        if known is None:
            found[str(pay_ord_id)] = OrderRef(str(pay_ord_id), str(token), visit_key, version_of_platform(platform),
                                              med_org_ord, insu)
        elif insu and not known.insu_code:
            found[str(pay_ord_id)] = replace(known, insu_code=insu, med_org_ord=med_org_ord or known.med_org_ord)
    return list(found.values())


def order_ref(conn: Connection, pay_ord_id: str) -> OrderRef | None:
    """One order by its payOrdId, from any call that names it."""
    c = platform_calls.c
    rows = conn.execute(select(c.infno, c.platform, c.visit_key, c.input_masked, c.output_masked)
                        .where(_ours(conn),
                               or_(c.output_masked.like(f"%{pay_ord_id}%"), c.input_masked.like(f"%{pay_ord_id}%")))
                        .order_by(c.id)).all()
    ref: OrderRef | None = None
    for infno, platform, visit_key, input_text, output_text in rows:
        out, data_in = _json(output_text), _data(_json(input_text))
        for source in (out, data_in):
            if source.get("payOrdId") == pay_ord_id and source.get("payToken") and ref is None:
                ref = OrderRef(pay_ord_id, str(source["payToken"]), visit_key, version_of_platform(platform),
                               data_in.get("medOrgOrd"), data_in.get("insuCode"))
        if ref is not None and infno == "6201" and data_in.get("insuCode"):
            ref = replace(ref, insu_code=data_in.get("insuCode"), med_org_ord=data_in.get("medOrgOrd"))
    return ref


def mobile_entries(conn: Connection) -> list[LedgerEntry]:
    """Every mobile-pay ledger entry (booked, and cash-only refunds), of any day — and every refund HIS booked of a
    mobile-pay settlement whatever its channel (a refund booked at the window, by hand, names the mobile
    settlement as its orig_setl_id but no mobile channel)."""
    from .ledger import _entry  # the row reader

    c = recon_ledger.c
    mobile_settlements = select(c.setl_id).where(c.channel.like("mobilepay%"), c.refd_setl_flag == "0")
    rows = conn.execute(select(recon_ledger).where(
        c.status.in_(("booked", "cash")),
        or_(c.channel.like("mobilepay%"), and_(c.refd_setl_flag == "1", c.orig_setl_id.in_(mobile_settlements)))))
    return [_entry(r) for r in rows]


def refunds_sent(conn: Connection) -> set[str]:
    """Every refund id the bridge sent for a mobile-pay order: 6203's appRefdSn and 8804's out_refund_no in this
    deployment's call log (the service's and reconciliation's repairs alike), whatever their outcome."""
    c = platform_calls.c
    scoped = Deployment.of(conn).scoped
    services = {scoped(MOBILEPAY_SERVICE), scoped("reconciliation"), "reconciliation"}
    rows = conn.execute(select(c.infno, c.input_masked).where(c.infno.in_(("6203", "8804")),
                                                             c.service.in_(sorted(services)))).all()
    out: set[str] = set()
    for infno, text in rows:
        data = _data(_json(text))
        sn = data.get("appRefdSn") if infno == "6203" else data.get("out_refund_no")
        if sn:
            out.add(str(sn))
    return out


def order_ref_by_settlement(conn: Connection, entry: LedgerEntry) -> OrderRef | None:
    """The order behind HIS's mobile settlement ``entry``: its payOrdId from the result HIS got (the settlement's
    msgid is the 6202's, whose input names the order), for an order paid before the period's call log."""
    if not entry.msgid:
        return None
    c = platform_calls.c
    row = conn.execute(select(c.input_masked).where(_ours(conn), c.msgid == entry.msgid, c.infno == "6202")
                       .limit(1)).first()
    pay_ord_id = _data(_json(row[0])).get("payOrdId") if row is not None else None
    return order_ref(conn, str(pay_ord_id)) if pay_ord_id else None


def hand_refunds_of_period(entries: Sequence[LedgerEntry], sent: set[str], *, date_from: _dt.date,
                           date_to: _dt.date) -> list[LedgerEntry]:
    """HIS's refunds of mobile settlements booked in the period that no refund of the bridge stands behind."""
    settlements = {e.setl_id for e in entries if e.refd_setl_flag == "0" and is_mobile(e.channel)}
    out = []
    for e in entries:
        if e.refd_setl_flag != "1" or e.orig_setl_id not in settlements or e.source == "repair":
            continue
        if not date_from <= clock.as_shanghai(e.setl_time).date() <= date_to:
            continue
        if e.setl_id in sent or (e.msgid and e.msgid in sent):
            continue
        out.append(e)
    return out


def cash_only_hand_refunds(entries: Sequence[LedgerEntry], sent: set[str], *, date_from: _dt.date,
                           date_to: _dt.date) -> list[tuple[LedgerEntry, LedgerEntry]]:
    """HIS's hand-booked refunds of the period (:func:`hand_refunds_of_period`) of a WeChat CASH_ONLY order — a
    mobile settlement the ledger keeps as cash-only (no 医保 order: 6301 knows nothing of it; its setl_id is WeChat's
    out_trade_no) — each with that settlement."""
    cash_only = {e.setl_id: e for e in entries if e.refd_setl_flag == "0" and e.status == "cash" and is_mobile(e.channel)}
    return [(e, cash_only[e.orig_setl_id]) for e in hand_refunds_of_period(entries, sent, date_from=date_from,
                                                                            date_to=date_to)
            if e.orig_setl_id in cash_only]


#: WeChat's 查询订单 (8803) ``self_pay_status`` of an order whose cash part is paid and not (wholly) refunded
WECHAT_SELF_PAID = "SELF_PAY_SUCCESS"


def classify_cash_only_refunds(pairs: Sequence[tuple[LedgerEntry, LedgerEntry]],
                               orders: Mapping[str, Mapping[str, Any] | None],
                               bill: Sequence[BillRow] = ()) -> list[Difference]:
    """``mp_cash_refund_only_in_his``: a hand-booked HIS refund of a WeChat CASH_ONLY order (``pairs``: refund,
    settlement) that WeChat Pay does not know — its 查询订单 (``orders``: 8803 by out_trade_no, None when WeChat
    knows no such order) still holds the cash part paid (SELF_PAY_SUCCESS) and no REFUND line of the ``bill``
    carries the refund's id. An order WeChat knows as refunded (SELF_PAY_REFUND: refunded in WeChat Pay itself, the
    bill's classes look at that) or does not know at all is not this class."""
    billed = {r.refund_no for r in bill if r.kind == "REFUND" and r.refund_no}
    out: list[Difference] = []
    for refund, order in pairs:
        trade = order.setl_id
        wechat = orders.get(trade)
        if wechat is None or str(wechat.get("self_pay_status") or "") != WECHAT_SELF_PAID:
            continue
        if refund.setl_id in billed or (refund.msgid and refund.msgid in billed):
            continue
        collected = _fen(wechat.get("wechat_pay_cash_fee"))
        diff = _diff("mp_cash_refund_only_in_his", None, None, setl_id=refund.setl_id, local=refund, refd_flag="1",
                     memo=f"WeChat order {trade} (CASH_ONLY, {collected} collected): HIS booked refund "
                          f"{refund.setl_id} ({refund.channel}, {-money(refund.psn_cash_pay)} cash back) with no "
                          f"8804 behind it; WeChat Pay still holds the order paid ({WECHAT_SELF_PAID})")
        out.append(replace(diff, msgid=trade[:40], channel=order.channel,
                           his_visit_id=refund.his_visit_id or order.his_visit_id, plat_medfee_sumamt=collected,
                           plat_fund_pay_sumamt=ZERO, plat_acct_pay=ZERO))
    return out


async def wechat_orders_of(wechat: Any, trades: Sequence[str], *, timeout_s: float) -> dict[str, dict[str, Any] | None]:
    """WeChat's 查询订单 (8803) of each out_trade_no; None for an order WeChat Pay does not know."""
    out: dict[str, dict[str, Any] | None] = {}
    for trade in dict.fromkeys(trades):
        try:
            reply = await asyncio.wait_for(wechat.call("8803", {"data": {"out_trade_no": trade}}), timeout_s)
        except BusinessRejection as exc:
            if any(code in str(exc.err_msg) for code in _NOT_FOUND):
                out[trade] = None
                continue
            raise ReconciliationError(f"8803 of WeChat order {trade} refused: {exc.err_msg}") from None
        output = getattr(reply, "output", reply)
        out[trade] = dict(output) if isinstance(output, Mapping) else {}
    return out


#: how WeChat Pay says it knows no such order or refund
_NOT_FOUND = ("RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST", "NOT_FOUND")


# --- classifying ---------------------------------------------------------------------------------------------------


def _diff(cls: str, ref: OrderRef | None, view: MobileView | None, *, setl_id: str, memo: str,
          local: LedgerEntry | None = None, refd_flag: str = "0") -> Difference:
    return Difference(
        diff_class=cls, row_code="mp", clr_type="11", setl_optins=local.setl_optins if local is not None else "",
        setl_id=setl_id[:30], mdtrt_id=(view.hi_rgst_sn if view else None) or (local.mdtrt_id if local else None),
        psn_no=(view.psn_no if view else None) or (local.psn_no if local else None),
        msgid=ref.pay_ord_id if ref is not None else (view.pay_ord_id if view else None), refd_setl_flag=refd_flag,
        memo=memo[:500], channel=local.channel if local is not None else f"mobilepay-{ref.version if ref else '2.0'}",
        his_visit_id=(local.his_visit_id if local else None) or (ref.visit_key if ref else None),
        his_medfee_sumamt=local.medfee_sumamt if local else None,
        his_fund_pay_sumamt=local.fund_pay_sumamt if local else None, his_acct_pay=local.acct_pay if local else None,
        plat_medfee_sumamt=view.fee if view else None, plat_fund_pay_sumamt=view.fund if view else None,
        plat_acct_pay=view.acct if view else None)


def classify_orders(refs: Sequence[OrderRef], views: dict[str, MobileView], entries: Sequence[LedgerEntry],
                    *, date_from: _dt.date, date_to: _dt.date, sent: set[str] | None = None) -> list[Difference]:
    """The mobile 单边账 and mismatches of the period (see the module docstring). ``sent``: the refund ids the
    bridge sent (:func:`refunds_sent`); a refund HIS booked in the period that is none of them and that the
    platform does not list is ``mp_refund_only_in_his`` (without ``sent``, every such refund is
    ``mp_refund_not_on_platform``, as before)."""
    hand = {e.setl_id for e in hand_refunds_of_period(entries, sent, date_from=date_from, date_to=date_to)} \
        if sent is not None else set()
    by_setl = {e.setl_id: e for e in entries}
    refunds_of: dict[str, list[LedgerEntry]] = {}
    for e in entries:
        if e.refd_setl_flag == "1" and e.orig_setl_id:
            refunds_of.setdefault(e.orig_setl_id, []).append(e)
    out: list[Difference] = []
    platform_settlements: set[str] = set()
    reported: set[str] = set()
    for ref in refs:
        view = views.get(ref.pay_ord_id)
        if view is None or view.meaning not in PAID_MEANINGS or not view.hi_doc_sn:
            continue
        platform_settlements.add(view.hi_doc_sn)
        local = by_setl.get(view.hi_doc_sn)
        if local is None:
            out.append(_diff("mp_paid_not_in_his", ref, view, setl_id=view.hi_doc_sn,
                             memo=f"order {ref.pay_ord_id} ({ref.med_org_ord or '?'}) paid on the platform "
                                  f"(ordStas {view.ord_stas}); HIS was never told"))
            continue
        if (view.fee, view.fund, view.acct) != (local.medfee_sumamt, local.fund_pay_sumamt, local.acct_pay):
            out.append(_diff("mp_amount_mismatch", ref, view, setl_id=view.hi_doc_sn, local=local,
                             memo=f"order {ref.pay_ord_id}: HIS {local.medfee_sumamt}/{local.fund_pay_sumamt}/"
                                  f"{local.acct_pay}, platform {view.fee}/{view.fund}/{view.acct}"))
        booked_refunds = {e.setl_id: e for e in refunds_of.get(view.hi_doc_sn, [])}
        platform_refunds: set[str] = set()
        for r in view.succeeded_refunds():
            key = str(r.get("hiDocSn") or r.get("appRefdSn") or "")
            platform_refunds.add(key)
            if key and key not in booked_refunds:
                out.append(_diff("mp_refund_not_in_his", ref, view, setl_id=key, local=local, refd_flag="1",
                                 memo=f"order {ref.pay_ord_id}: refund {r.get('appRefdSn') or r.get('via') or '?'} "
                                      f"({r.get('refdType')}) succeeded on the platform"))
        for key, e in booked_refunds.items():
            if key in platform_refunds or (e.msgid and e.msgid in platform_refunds):
                continue
            if key in hand:
                if key in reported:
                    continue
                reported.add(key)
                out.append(_diff("mp_refund_only_in_his", ref, view, setl_id=key, local=e, refd_flag="1",
                                 memo=f"order {ref.pay_ord_id}: HIS booked refund {key} ({e.channel}) with no 6203 / "
                                      f"8804 behind it; the platform still holds the order {view.meaning}"))
                continue
            out.append(_diff("mp_refund_not_on_platform", ref, view, setl_id=key, local=e, refd_flag="1",
                             memo=f"order {ref.pay_ord_id}: HIS booked refund {key}, the platform lists none"))
    start, end = date_from, date_to
    for e in entries:
        day = clock.as_shanghai(e.setl_time).date()
        if e.refd_setl_flag != "0" or e.status != "booked" or not start <= day <= end:
            continue
        if e.setl_id not in platform_settlements:
            out.append(_diff("mp_in_his_not_paid", None, None, setl_id=e.setl_id, local=e,
                             memo="HIS holds this mobile-pay settlement; no order of the period is paid with it"))
    return out


# --- WeChat Pay's daily bill ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillRow:
    """One trade of WeChat Pay's daily bill (8806)."""

    day: str
    out_trade_no: str
    kind: str  #: PAY or REFUND
    mix_pay_type: str
    cash: Decimal  #: yuan (a refund's: the cash refunded)
    pay_ord_id: str | None  #: 医保订单号: the mobile-pay order of the insurance part (none for CASH_ONLY)
    refund_no: str | None = None  #: 商户退款单号 of a REFUND line (out_refund_no: the bridge's refund id)


#: the bill's columns, by the names its header gives them (WeChat prefixes values with a backtick: stripped)
_BILL_COLUMNS = {"out_trade_no": "商户订单号", "kind": "类型", "mix_pay_type": "混合支付类型", "cash": "现金金额(分)",
                 "pay_ord_id": "医保订单号", "time": "交易时间"}
#: columns a bill may lack (then what they feed is not compared)
_BILL_OPTIONAL = {"refund_no": "商户退款单号"}


def parse_bill(text: str, day: str) -> list[BillRow]:
    """The bill's trades; a bill whose header lacks a column this needs is an error naming it."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip().lstrip("`") for h in lines[0].split(",")]
    where: dict[str, int] = {}
    for key, name in _BILL_COLUMNS.items():
        if name not in header:
            raise ReconciliationError(f"WeChat bill of {day}: no column {name} in its header")
        where[key] = header.index(name)
    for key, name in _BILL_OPTIONAL.items():
        if name in header:
            where[key] = header.index(name)
    out: list[BillRow] = []
    for n, line in enumerate(lines[1:], start=2):
        cells = [c.strip().lstrip("`") for c in line.split(",")]
        if len(cells) < len(header):
            raise ReconciliationError(f"WeChat bill of {day}, line {n}: {len(cells)} columns, {len(header)} expected")
        try:
            cash = money(Decimal(int(cells[where["cash"]])) / 100)
        except (ValueError, ArithmeticError):
            raise ReconciliationError(f"WeChat bill of {day}, line {n}: {_BILL_COLUMNS['cash']} is not fen") from None
        out.append(BillRow(day=day, out_trade_no=cells[where["out_trade_no"]], kind=cells[where["kind"]].upper(),
                           mix_pay_type=cells[where["mix_pay_type"]], cash=cash,
                           pay_ord_id=cells[where["pay_ord_id"]] or None,
                           refund_no=(cells[where["refund_no"]] or None) if "refund_no" in where else None))
    return out


async def bills_of(wechat: Any, date_from: _dt.date, date_to: _dt.date) -> list[BillRow]:
    """Every day's bill of the period (8806)."""
    rows: list[BillRow] = []
    day = date_from
    while day <= date_to:
        text = clock.format_date(day)
        reply = await wechat.call("8806", {"data": {"bill_date": text}})
        output = getattr(reply, "output", reply)
        rows.extend(parse_bill(str((output or {}).get("bill") or ""), text))
        day += _dt.timedelta(days=1)
    return rows


def classify_bill(rows: Sequence[BillRow], views: dict[str, MobileView], entries: Sequence[LedgerEntry],
                  sent: Mapping[str, SentRefund] | None = None, *, date_from: _dt.date | None = None,
                  date_to: _dt.date | None = None) -> list[Difference]:
    """The bill's payments against HIS's ledger (mp_cash_not_in_his, mp_cash_mismatch) and its refunds against
    HIS's refunds (:func:`classify_bill_refunds`)."""
    by_setl = {e.setl_id: e for e in entries if e.refd_setl_flag == "0"}
    out: list[Difference] = classify_bill_refunds(rows, entries, sent or {}, date_from=date_from, date_to=date_to)
    for row in rows:
        if row.kind != "PAY":
            continue
        view = views.get(row.pay_ord_id) if row.pay_ord_id else None
        setl_id = (view.hi_doc_sn if view is not None else None) if row.pay_ord_id else row.out_trade_no
        local = by_setl.get(setl_id) if setl_id else None
        ref = OrderRef(row.pay_ord_id, "", None, "2.0") if row.pay_ord_id else None
        what = f"WeChat order {row.out_trade_no} ({row.mix_pay_type}"
        what += f", payOrdId {row.pay_ord_id})" if row.pay_ord_id else ")"
        if local is None:
            out.append(replace(_diff("mp_cash_not_in_his", ref, view, setl_id=row.out_trade_no,
                                     memo=f"{what}: WeChat collected {row.cash} on {row.day}; HIS holds no "
                                          "settlement of this order"), msgid=row.out_trade_no[:40]))
        elif money(local.psn_cash_pay) != row.cash:
            out.append(replace(_diff("mp_cash_mismatch", ref, view, setl_id=row.out_trade_no, local=local,
                                     memo=f"{what}: WeChat collected {row.cash}, HIS booked {local.psn_cash_pay} "
                                          f"cash (settlement {local.setl_id})"), msgid=row.out_trade_no[:40]))
    return out


@dataclass(frozen=True)
class SentRefund:
    """A refund of a cash part the bridge asked WeChat Pay for (8804, from the call log)."""

    out_refund_no: str
    out_trade_no: str
    cash: Decimal  #: yuan


def wechat_refunds_sent(conn: Connection, start: _dt.datetime, end: _dt.datetime) -> dict[str, SentRefund]:
    """Every refund this deployment's mobile-pay service asked WeChat Pay for (8804) between ``start`` and ``end``,
    by out_refund_no — whatever the answer (HIS booking one the bill lacks is what is looked for)."""
    c = platform_calls.c
    rows = conn.execute(select(c.input_masked).where(c.service == Deployment.of(conn).scoped(MOBILEPAY_SERVICE),
                                                     c.platform == "wechat", c.infno == "8804",
                                                     c.started_at >= start, c.started_at < end)
                        .order_by(c.id)).scalars()
    out: dict[str, SentRefund] = {}
    for text in rows:
        data = _data(_json(text))
        sn, trade = data.get("out_refund_no"), data.get("out_trade_no")
        amount = data.get("amount") if isinstance(data.get("amount"), dict) else {}
        try:
            cash = money(Decimal(int(amount.get("refund") or 0)) / 100)
        except (ValueError, TypeError, ArithmeticError):
            continue
        if sn and trade:
            out[str(sn)] = SentRefund(str(sn), str(trade), cash)
    return out


def _his_refunds(entries: Sequence[LedgerEntry]) -> dict[str, LedgerEntry]:
    """HIS's mobile refunds by what a WeChat refund is known by: its msgid (the bridge's refund id = out_refund_no),
    and its setl_id (a cash-only refund's)."""
    found: dict[str, LedgerEntry] = {}
    for e in entries:
        if e.refd_setl_flag != "1":
            continue
        if e.msgid:
            found.setdefault(e.msgid, e)
        found.setdefault(e.setl_id, e)
    return found


def classify_bill_refunds(rows: Sequence[BillRow], entries: Sequence[LedgerEntry], sent: Mapping[str, SentRefund],
                          *, date_from: _dt.date | None = None, date_to: _dt.date | None = None) -> list[Difference]:
    """The bill's refunds against HIS's: a cash refund WeChat Pay made that HIS never booked
    (mp_wechat_refund_not_in_his), one booked with another cash amount (mp_wechat_refund_mismatch), and a refund the
    bridge sent to WeChat Pay that HIS booked in the period but no bill lists (mp_wechat_refund_not_on_wechat)."""
    his = _his_refunds(entries)
    billed: dict[str, Decimal] = {}
    out: list[Difference] = []
    for row in rows:
        if row.kind != "REFUND" or not row.refund_no:
            continue
        billed[row.refund_no] = money(billed.get(row.refund_no, ZERO) + row.cash)
        ref = OrderRef(row.pay_ord_id, "", None, "2.0") if row.pay_ord_id else None
        local = his.get(row.refund_no)
        what = f"WeChat refund {row.refund_no} of order {row.out_trade_no} ({row.mix_pay_type or '?'})"
        if local is None:
            out.append(replace(_diff("mp_wechat_refund_not_in_his", ref, None, setl_id=row.refund_no, refd_flag="1",
                                     memo=f"{what}: WeChat Pay refunded {row.cash} on {row.day}; HIS booked no such "
                                          "refund"), msgid=row.out_trade_no[:40]))
        elif money(-local.psn_cash_pay) != row.cash:
            out.append(replace(_diff("mp_wechat_refund_mismatch", ref, None, setl_id=row.refund_no, local=local,
                                     refd_flag="1",
                                     memo=f"{what}: WeChat Pay refunded {row.cash}, HIS booked {-local.psn_cash_pay} "
                                          f"cash back (refund {local.setl_id})"), msgid=row.out_trade_no[:40]))
    for sn, refund in sent.items():
        local = his.get(sn)
        if sn in billed or local is None:
            continue
        day = clock.as_shanghai(local.setl_time).date()
        if (date_from is not None and day < date_from) or (date_to is not None and day > date_to):
            continue
        out.append(replace(_diff("mp_wechat_refund_not_on_wechat", None, None, setl_id=sn, local=local,
                                 refd_flag="1",
                                 memo=f"HIS booked refund {sn} of WeChat order {refund.out_trade_no} "
                                      f"({-local.psn_cash_pay} cash back); WeChat Pay's bill lists no such refund"),
                           msgid=refund.out_trade_no[:40]))
    return out


# --- repairs ---------------------------------------------------------------------------------------------------


def refund_sn(diff: DifferenceRecord, kind: str = "ALL") -> str:
    """The appRefdSn of a repair's refund: derived from the difference, so a second attempt is the same refund."""
    return "RC" + stable_id("recon-mobile-refund", diff.run_id, diff.id, kind)[:18].upper()


@dataclass(frozen=True)
class MobilePlan:
    action: str  # none | manual | mp_refund | mp_book | void | correct | mp_adopt_refund | mp_adopt_wechat_refund
    #              | mp_wechat_refund | mp_refund_as_booked | mp_cash_refund_as_booked
    reason: str
    amount: Decimal | None = None
    view: MobileView | None = None
    entry: PlatformEntry | None = None  #: the national settlement (5203)
    cancellation: PlatformEntry | None = None
    original: LedgerEntry | None = None  #: HIS's settlement of the order a WeChat refund belongs to
    refd_type: str | None = None  #: mp_refund_as_booked: the 6203 refdType that refunds what HIS booked
    parts: tuple[Decimal, Decimal, Decimal] | None = None  #: mp_refund_as_booked: (cash, account, fund)
    cash_total: Decimal | None = None  #: mp_cash_refund_as_booked: the cash WeChat Pay collected for the order


class MobileDeps:
    """What mobile repairs need besides the national repairs' deps: the mobile-pay client, how it reads ordStas
    and how the province refunds a 单边账."""

    def __init__(self, client: Any, meaning: Any, *, refund_via: str = "6203", org_codg: str = "",
                 wechat: Any = None) -> None:
        self.client = client
        self.meaning = meaning
        self.refund_via = refund_via
        self.org_codg = org_codg
        self.wechat = wechat  #: WeChat Pay's client (8806, the daily bill) when WeChat channels are enabled

    async def view(self, ref: OrderRef) -> MobileView:
        reply = await self.client.call("6301", {"data": {"payOrdId": ref.pay_ord_id, "payToken": ref.pay_token,
                                                         "orgCodg": self.org_codg}, "version": ref.version},
                                       visit_key=ref.visit_key)
        output = getattr(reply, "output", reply)
        return MobileView.of(output if isinstance(output, dict) else {}, self.meaning)


async def views_of(mobile: MobileDeps, refs: Sequence[OrderRef], *, timeout_s: float,
                   concurrency: int = 8) -> dict[str, MobileView]:
    """6301 of every order, a few at a time; an order the platform cannot be asked about now fails the run."""
    gate = asyncio.Semaphore(concurrency)

    async def one(ref: OrderRef) -> tuple[str, MobileView]:
        async with gate:
            return ref.pay_ord_id, await asyncio.wait_for(mobile.view(ref), timeout_s)

    pairs = await asyncio.gather(*(one(r) for r in refs))
    return dict(pairs)


async def _truth(deps: Any, mobile: MobileDeps, diff: DifferenceRecord) -> tuple[MobileView | None, OrderRef | None]:
    if not diff.msgid:
        return None, None
    ref = await deps.db(lambda conn: order_ref(conn, diff.msgid))
    if ref is None:
        return None, None
    return await deps.platform(mobile.view(ref)), ref


async def _entry(deps: Any, view: MobileView, setl_id: str, ref: OrderRef | None) -> PlatformEntry | None:
    if not (view.psn_no and view.hi_rgst_sn):
        raise ReconciliationError("6301 does not name the settlement's person and visit: 5203 cannot be asked")
    if ref is None or not ref.insu_code:
        raise ReconciliationError("the order's 参保地 is unknown (no 6201 in our call log): 5203 cannot be asked")
    return await deps.platform(query_entry(deps.client, setl_id=setl_id, mdtrt_id=view.hi_rgst_sn,
                                           psn_no=view.psn_no, insuplc_admdvs=ref.insu_code,
                                           markers=deps.absent_markers))


async def plan_mobile(deps: Any, diff: DifferenceRecord) -> MobilePlan:
    mobile: MobileDeps = deps.mobile
    if mobile is None:
        return MobilePlan("manual", "mobile pay is not configured in reconciliation (YIBAO_MP_*)")
    if diff.diff_class == "mp_cash_refund_only_in_his":  # a CASH_ONLY order: WeChat Pay is the only platform
        return await _plan_cash_as_booked(deps, mobile, diff)
    view, ref = await _truth(deps, mobile, diff)
    local = await deps.db(lambda conn: entry_by_setl_id(conn, diff.setl_id))
    if local is not None and local.status not in ("booked", "cash"):
        local = None
    cls = diff.diff_class
    if cls in WECHAT_REFUND_CLASSES:
        return await _plan_wechat_refund(deps, mobile, diff)
    if cls == "mp_cash_not_in_his":
        return MobilePlan("manual", "WeChat Pay collected this cash part and HIS holds no settlement of the order: "
                                    "refund it in WeChat Pay (申请退款) or book it in HIS", view=view)
    if cls == "mp_cash_mismatch":
        return MobilePlan("manual", "the cash WeChat Pay collected differs from the cash HIS booked: check the order "
                                    "with WeChat Pay's merchant platform", view=view)
    if cls == "mp_paid_not_in_his":
        if local is not None:
            return MobilePlan("none", "HIS booked the settlement since")
        if view is None or view.meaning not in PAID_MEANINGS:
            return MobilePlan("none", "the platform no longer holds the order as paid")
        entry = await _entry(deps, view, view.hi_doc_sn or diff.setl_id, ref)
        if entry is None:
            return MobilePlan("manual", "6301 shows the order paid, but 5203 has no such settlement", view=view)
        cash, acct, fund = view.refundable()
        if cash + acct + fund == ZERO:
            return MobilePlan("mp_book", "the platform refunded it already: HIS books the settlement and its refunds",
                              amount=money(view.fee or ZERO), view=view, entry=entry)
        return MobilePlan("mp_refund", f"paid on the platform, HIS never told: refund the patient "
                                       f"({'2208 at the counter' if mobile.refund_via == '2208' else '6203'}) and "
                                       "book both in HIS", amount=money(cash + acct + fund), view=view, entry=entry)
    if cls == "mp_refund_only_in_his":
        return _plan_as_booked(diff, view, local)
    if cls == "mp_in_his_not_paid":
        if local is None:
            return MobilePlan("manual", "the entry is no longer in the hospital ledger")
        return MobilePlan("void", "no platform order is paid with this settlement: void it in HIS",
                          amount=abs(money(local.medfee_sumamt)), view=view)
    if view is None:
        return MobilePlan("manual", "the order cannot be found in our call log: handle by hand")
    if cls == "mp_amount_mismatch":
        if local is None:
            return MobilePlan("manual", "the entry is no longer in the hospital ledger")
        entry = await _entry(deps, view, diff.setl_id, ref)
        if entry is None:
            return MobilePlan("manual", "5203 has no such settlement")
        if (entry.medfee_sumamt, entry.fund_pay_sumamt, entry.acct_pay) == (
                local.medfee_sumamt, local.fund_pay_sumamt, local.acct_pay):
            return MobilePlan("none", "the amounts agree by now", entry=entry)
        return MobilePlan("correct", "HIS takes the platform's amounts", view=view, entry=entry,
                          amount=max(abs(entry.medfee_sumamt - local.medfee_sumamt),
                                     abs(entry.fund_pay_sumamt - local.fund_pay_sumamt)))
    if cls == "mp_refund_not_in_his":
        if local is not None:
            return MobilePlan("none", "HIS booked the refund since")
        refund = next((r for r in view.succeeded_refunds() if str(r.get("hiDocSn") or r.get("appRefdSn")) ==
                       diff.setl_id), None)
        if refund is None:
            return MobilePlan("none", "the platform no longer lists the refund")
        amount = money(sum((Decimal(str(refund.get(k) or "0")) for k in ("cashRefdAmt", "psnAcctRefdAmt",
                                                                          "fundRefdAmt")), ZERO))
        cancellation = None
        if refund.get("hiDocSn"):
            cancellation = await _entry(deps, view, str(refund["hiDocSn"]), ref)
        return MobilePlan("mp_adopt_refund", f"the platform refunded ({refund.get('refdType')}): HIS books it",
                          amount=amount, view=view, cancellation=cancellation)
    return MobilePlan("manual", "HIS booked a refund the platform does not list: check with the platform", view=view)


def _plan_as_booked(diff: DifferenceRecord, view: MobileView | None, local: LedgerEntry | None) -> MobilePlan:
    """mp_refund_only_in_his: the platform refunds what HIS booked by hand — whole parts only (6203 refunds the
    cash part, the insurance part or both): a refund of another amount is left to people."""
    if local is None or local.refd_setl_flag != "1":
        return MobilePlan("none", "HIS no longer holds the refund")
    if view is None:
        return MobilePlan("manual", "the order cannot be found in our call log: handle by hand")
    listed = {str(r.get(k) or "") for r in view.succeeded_refunds() for k in ("appRefdSn", "hiDocSn")}
    if local.setl_id in listed or (local.msgid and local.msgid in listed):
        return MobilePlan("none", "the platform lists the refund now", view=view)
    if view.meaning not in PAID_MEANINGS:
        return MobilePlan("manual", f"the platform holds the order {view.meaning or view.ord_stas}: handle by hand",
                          view=view)
    booked = (money(abs(local.psn_cash_pay)), money(abs(local.acct_pay)), money(abs(local.fund_pay_sumamt)))
    cash, acct, fund = view.refundable()
    if booked == (cash, acct, fund) and cash + acct + fund > ZERO:
        kind, parts = "ALL", (cash, acct, fund)
    elif booked == (ZERO, acct, fund) and acct + fund > ZERO:
        kind, parts = "HI", (ZERO, acct, fund)
    elif booked == (cash, ZERO, ZERO) and cash > ZERO:
        kind, parts = "CASH", (cash, ZERO, ZERO)
    else:
        return MobilePlan("manual", f"HIS booked a refund of cash {booked[0]}, account {booked[1]}, fund {booked[2]}; "
                                    f"the platform can refund whole parts only (cash {cash}, account {acct}, fund "
                                    f"{fund} left): handle by hand", view=view)
    total = money(sum(parts, ZERO))
    return MobilePlan("mp_refund_as_booked", f"HIS booked this refund by hand, the platform still holds the order "
                                             f"paid: refund {total} on the platform (6203 {kind}) and book the "
                                             "platform's refund in HIS in place of the hand-booked one — approve only "
                                             "if the patient was not paid back by hand", amount=total, view=view,
                      refd_type=kind, parts=parts)


async def _plan_cash_as_booked(deps: Any, mobile: MobileDeps, diff: DifferenceRecord) -> MobilePlan:
    """mp_cash_refund_only_in_his: WeChat Pay refunds the cash HIS booked by hand for a CASH_ONLY order — asked
    again (8803) now: an order WeChat no longer holds paid, or a refund of more than it collected, is people's."""
    if mobile.wechat is None:
        return MobilePlan("manual", "WeChat Pay is not configured in reconciliation (YIBAO_WECHAT_*): handle by hand")

    def read(conn: Connection) -> tuple[LedgerEntry | None, LedgerEntry | None]:
        hand = entry_by_setl_id(conn, diff.setl_id)
        if hand is None or hand.refd_setl_flag != "1" or hand.status not in ("booked", "cash"):
            return None, None
        return hand, entry_by_setl_id(conn, hand.orig_setl_id or "")

    hand, original = await deps.db(read)
    if hand is None:
        return MobilePlan("none", "HIS no longer holds the refund")
    trade = (original.setl_id if original is not None else None) or diff.msgid or ""
    orders = await deps.platform(wechat_orders_of(mobile.wechat, [trade], timeout_s=deps.timeout_s))
    order = orders.get(trade)
    if order is None:
        return MobilePlan("manual", f"WeChat Pay knows no order {trade} (8803): handle by hand", original=original)
    status = str(order.get("self_pay_status") or "")
    if status != WECHAT_SELF_PAID:
        return MobilePlan("manual", f"WeChat Pay holds order {trade} {status or 'without a status'}, not paid: a "
                                    "refund HIS's hand refund does not name may have been made in WeChat Pay — match "
                                    "them by hand", original=original)
    cash, collected = money(-hand.psn_cash_pay), _fen(order.get("wechat_pay_cash_fee"))
    if hand.fund_pay_sumamt or hand.acct_pay or cash <= ZERO or cash > collected:
        return MobilePlan("manual", f"HIS booked a refund of cash {cash} (fund {-hand.fund_pay_sumamt}, account "
                                    f"{-hand.acct_pay}); WeChat Pay collected {collected} cash: handle by hand",
                          original=original)
    return MobilePlan("mp_cash_refund_as_booked", f"HIS booked this refund of WeChat order {trade} (CASH_ONLY) by "
                                                    f"hand, WeChat Pay still holds it paid: refund {cash} in WeChat Pay "
                                                    "(申请退款 8804) and book WeChat's refund in HIS in place of the "
                                                    "hand-booked one — approve only if the patient was not paid back "
                                                    "by hand", amount=cash, original=original, cash_total=collected)


#: the classes of WeChat Pay's refunds (the daily bill against HIS's refunds)
WECHAT_REFUND_CLASSES = frozenset({"mp_wechat_refund_not_in_his", "mp_wechat_refund_not_on_wechat",
                                   "mp_wechat_refund_mismatch"})


def his_refund(conn: Connection, sn: str) -> LedgerEntry | None:
    """HIS's mobile refund known by a WeChat refund's out_refund_no (its msgid, or a cash-only refund's setl_id)."""
    from .ledger import _entry  # the row reader

    c = recon_ledger.c
    row = conn.execute(select(recon_ledger).where(c.channel.like("mobilepay%"), c.refd_setl_flag == "1",
                                                  c.status.in_(("booked", "cash")),
                                                  or_(c.msgid == sn, c.setl_id == sn)).limit(1)).first()
    return None if row is None else _entry(row)


async def _wechat_refund_truth(deps: Any, mobile: MobileDeps, sn: str) -> dict[str, Any] | None:
    """WeChat Pay's refund ``sn`` (8805), or None when it knows no such refund."""
    try:
        reply = await deps.platform(mobile.wechat.call("8805", {"data": {"out_refund_no": sn}}))
    except BusinessRejection as exc:
        if any(code in str(exc.err_msg) for code in _NOT_FOUND):
            return None
        raise ReconciliationError(f"8805 of refund {sn} refused: {exc.err_msg}") from None
    output = getattr(reply, "output", reply)
    return output if isinstance(output, dict) else {}


def _fen(value: Any) -> Decimal:
    return money(Decimal(int(value or 0)) / 100)


async def _order_settlement(deps: Any, mobile: MobileDeps, out_trade_no: str) -> LedgerEntry | None:
    """HIS's settlement of a WeChat order: a CASH_ONLY order's is named by its out_trade_no, a mixed one's by the
    national settlement of its insurance part (8803 names the mobile-pay order, 6301 its hiDocSn)."""
    own = await deps.db(lambda conn: entry_by_setl_id(conn, out_trade_no))
    if own is not None:
        return own
    try:
        reply = await deps.platform(mobile.wechat.call("8803", {"data": {"out_trade_no": out_trade_no}}))
    except BusinessRejection:
        return None
    pay_ord_id = str((getattr(reply, "output", reply) or {}).get("pay_order_id") or "")
    ref = await deps.db(lambda conn: order_ref(conn, pay_ord_id)) if pay_ord_id else None
    if ref is None:
        return None
    view = await deps.platform(mobile.view(ref))
    return await deps.db(lambda conn: entry_by_setl_id(conn, view.hi_doc_sn)) if view.hi_doc_sn else None


async def _plan_wechat_refund(deps: Any, mobile: MobileDeps, diff: DifferenceRecord) -> MobilePlan:
    cls, sn = diff.diff_class, diff.setl_id
    if cls == "mp_wechat_refund_mismatch":
        return MobilePlan("manual", "WeChat Pay refunded another cash amount than HIS booked: check the refund with "
                                    "WeChat Pay's merchant platform")
    if mobile.wechat is None:
        return MobilePlan("manual", "WeChat Pay is not configured in reconciliation (YIBAO_WECHAT_*): handle by hand")
    local = await deps.db(lambda conn: his_refund(conn, sn))
    truth = await _wechat_refund_truth(deps, mobile, sn)
    status = str((truth or {}).get("status") or "")
    if status == "PROCESSING":
        raise ReconciliationError(f"WeChat Pay's refund {sn} is still PROCESSING")
    if cls == "mp_wechat_refund_not_in_his":
        if local is not None:
            return MobilePlan("none", "HIS booked the refund since")
        if truth is None or status != "SUCCESS":
            return MobilePlan("none", f"WeChat Pay no longer lists the refund as made ({status or 'unknown to 8805'})")
        cash = _fen((truth.get("amount") or {}).get("refund"))
        original = await _order_settlement(deps, mobile, str(truth.get("out_trade_no") or diff.msgid or ""))
        if original is None:
            return MobilePlan("manual", "HIS holds no settlement of this order either: WeChat Pay took and returned the "
                                        "cash on its own; book both in HIS or neither, by hand")
        return MobilePlan("mp_adopt_wechat_refund", f"WeChat Pay refunded {cash} cash (8805 SUCCESS): HIS books the "
                                                    "refund", amount=cash, original=original)
    # mp_wechat_refund_not_on_wechat
    if local is None:
        return MobilePlan("none", "HIS no longer holds the refund")
    if status == "SUCCESS":
        return MobilePlan("none", "WeChat Pay lists the refund now (8805 SUCCESS)")
    if truth is not None:
        return MobilePlan("manual", f"WeChat Pay's refund ended {status or '?'}: handle it in WeChat Pay's merchant "
                                    "platform (异常退款)")
    cash = money(-local.psn_cash_pay)
    return MobilePlan("mp_wechat_refund", f"HIS booked this refund; WeChat Pay never paid {cash} back: refund the "
                                          "patient's cash part (8804, the same out_refund_no)", amount=cash)


async def _refund_on_wechat(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, plan: MobilePlan) -> str:
    """The approved WeChat refund HIS already booked: 8804 with HIS's refund id as out_refund_no (WeChat Pay takes
    the same out_refund_no again as the same refund), stored before it is sent."""
    sn, out_trade_no = diff.setl_id, diff.msgid or ""
    if not await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"},
                                                         status="applying", repair_msgid=sn,
                                                         outcome=f"WeChat refund {sn} being sent")):
        return diff.status
    try:
        order = await deps.platform(mobile.wechat.call("8803", {"data": {"out_trade_no": out_trade_no}}))
        total = int((getattr(order, "output", order) or {}).get("wechat_pay_cash_fee") or 0)
        cash = plan.amount or ZERO
        reply = await deps.platform(mobile.wechat.call("8804", {"data": {
            "out_trade_no": out_trade_no, "out_refund_no": sn, "reason": "医保移动支付 对账退款",
            "amount": {"refund": int(money(cash) * 100), "total": total, "currency": "CNY"}}}))
        status = str((getattr(reply, "output", reply) or {}).get("status") or "")
    except BusinessRejection as exc:
        reason = f"WeChat refund refused: {exc.err_msg}; handle by hand"[:500]
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, status="manual",
                                                     outcome=reason))
        return "manual"
    if status != "SUCCESS":
        reason = f"WeChat refund {sn} answered {status or '?'}: 8805 is asked at the next attempt"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, outcome=reason))
        return "applying"
    done = await deps.db(lambda conn: update_difference(
        conn, diff.id, expect={"applying"}, status="repaired", resolved_at=clock.now(),
        outcome=f"WeChat Pay refunded {money(cash)} (8804 SUCCESS); HIS had booked it"))
    return "repaired" if done else diff.status


async def _wechat_refund_as_booked(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, plan: MobilePlan) -> str:
    """The approved WeChat refund of a hand-booked HIS refund of a CASH_ONLY order: its out_refund_no (derived from
    the difference) stored before 8804 is sent — WeChat Pay takes the same out_refund_no again as the same refund,
    and a lost answer is looked up by 8805 at the next attempt — then HIS's books re-keyed."""
    assert plan.amount is not None and plan.original is not None
    sn, trade = refund_sn(diff, "WX_AS_BOOKED"), plan.original.setl_id
    if not await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"},
                                                         status="applying", repair_msgid=sn,
                                                         outcome=f"WeChat refund {sn} being sent")):
        return diff.status
    try:
        reply = await deps.platform(mobile.wechat.call("8804", {"data": {
            "out_trade_no": trade, "out_refund_no": sn, "reason": "医保移动支付 对账退款 (HIS 手工退费)",
            "amount": {"refund": int(money(plan.amount) * 100), "total": int(money(plan.cash_total or plan.amount) * 100),
                       "currency": "CNY"}}}, visit_key=diff.his_visit_id))
    except (PlatformError, asyncio.TimeoutError) as exc:
        return await _refund_not_done(deps, diff, exc, lookup="8805")
    output = getattr(reply, "output", reply) or {}
    if str(output.get("status") or "") != "SUCCESS":
        reason = f"WeChat refund {sn} answered {output.get('status') or '?'}: 8805 is asked at the next attempt"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, outcome=reason))
        return "applying"
    return await _rekey_cash_hand_refund(deps, diff, sn, output)


async def _resume_wechat_as_booked(deps: Any, mobile: MobileDeps, diff: DifferenceRecord) -> str | None:
    """An ``applying`` WeChat refund of a hand-booked refund whose answer was lost: 8805 (退款查询) says what became
    of it — SUCCESS: HIS's books re-keyed; PROCESSING: still ``applying``; unknown to WeChat Pay: None (planned and
    sent again, the same out_refund_no); closed or abnormal: people's."""
    sn = diff.repair_msgid or ""
    truth = await _wechat_refund_truth(deps, mobile, sn) if sn else None
    if truth is None:
        return None
    status = str(truth.get("status") or "")
    if status == "SUCCESS":
        return await _rekey_cash_hand_refund(deps, diff, sn, truth)
    if status == "PROCESSING":
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"},
                                                     outcome=f"WeChat refund {sn} is PROCESSING (8805): asked again "
                                                             "at the next attempt"))
        return "applying"
    reason = f"WeChat refund {sn} ended {status or '?'} (8805): handle it in WeChat Pay's merchant platform (异常退款)"
    await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, status="manual", outcome=reason))
    return "manual"


async def _rekey_cash_hand_refund(deps: Any, diff: DifferenceRecord, sn: str, refund: Mapping[str, Any]) -> str:
    """WeChat Pay refunded (``sn`` SUCCESS): in one transaction HIS's hand-booked refund of the CASH_ONLY order is
    voided (HIS told: the settlement stands again) and WeChat's refund booked in its place (HIS told: refunded, cash
    only, ``sn`` as its id — the bill's 商户退款单号) — so HIS, the bill and the next run see WeChat's refund once."""
    cash = _fen((refund.get("amount") or {}).get("refund"))
    return await _replace_hand_refund(
        deps, diff, f"refunded {cash} in WeChat Pay (8804 {sn} SUCCESS); HIS's hand-booked refund replaced by WeChat's",
        {"cashRefdAmt": str(cash), "appRefdSn": sn, "refdType": "CASH"}, None, "wechat_as_booked")


def _status(deps: Any, diff: DifferenceRecord, plan: MobilePlan) -> str:
    if plan.action == "none":
        return "resolved"
    if plan.action == "manual":
        return "manual"
    return "pending_approval" if deps.policy.needs_approval(diff.diff_class, plan.action, plan.amount) else "approved"


def _amounts(plan: MobilePlan) -> dict[str, Any]:
    v = plan.view
    return {} if v is None else {"plat_medfee_sumamt": v.fee, "plat_fund_pay_sumamt": v.fund, "plat_acct_pay": v.acct}


async def plan_mobile_difference(deps: Any, diff: DifferenceRecord) -> str:
    """Decide and record the repair of an ``open`` mobile difference; its new status."""
    try:
        plan = await plan_mobile(deps, diff)
    except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
        reason = f"truth unknown (6301/5203): {type(exc).__name__}: {exc}"[:500]
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"open"}, outcome=reason))
        metrics.REPAIRS.labels(diff.diff_class, "unplanned", "failed").inc()
        return "open"
    status = _status(deps, diff, plan)
    now = clock.now()
    values: dict[str, Any] = dict(action=plan.action, amount=plan.amount, needs_approval=status == "pending_approval",
                                  status=status, outcome=plan.reason, **_amounts(plan))
    if status == "approved":
        values.update(approved_by="auto", approved_at=now, approval_reason="within the automatic approval policy")
    if status == "resolved":
        values["resolved_at"] = now
    if plan.entry is not None and not diff.setl_optins:
        values["setl_optins"] = plan.entry.clr_optins
    await deps.db(lambda conn: update_difference(conn, diff.id, expect={"open"}, **values))
    metrics.REPAIRS.labels(diff.diff_class, plan.action, status).inc()
    return status


# --- applying --------------------------------------------------------------------------------------------------


def _send(deps: Any, conn: Connection, result: HisResult) -> None:
    from .repairs import _send as send

    send(conn, result, deps.prefix)


def _mobile_detail(diff: DifferenceRecord, **extra: Any) -> dict[str, Any]:
    return {"channel": diff.channel, "pay_ord_id": diff.msgid, **{k: v for k, v in extra.items() if v is not None}}


def _book(deps: Any, conn: Connection, diff: DifferenceRecord, result: HisResult, entry: LedgerEntry) -> None:
    entry = replace(entry, channel=diff.channel)
    if insert_entry(conn, entry):
        _send(deps, conn, result)


def _book_settlement(deps: Any, conn: Connection, diff: DifferenceRecord, entry: PlatformEntry) -> None:
    visit = diff.his_visit_id or "?"
    result = writeback.adopted(entry, his_visit_id=visit, run_id=diff.run_id, difference_id=diff.id)
    result = result.model_copy(update={"detail": {**(result.detail or {}), **_mobile_detail(diff)}})
    _book(deps, conn, diff, result, writeback.ledger_entry_of(entry, his_visit_id=visit, message_id=result.message_id))


def _book_refund(deps: Any, conn: Connection, diff: DifferenceRecord, original: PlatformEntry | LedgerEntry | None,
                 refund: dict[str, Any], cancellation: PlatformEntry | None, tag: str) -> None:
    """HIS books one platform refund: the national cancellation (ALL, HI, a 2208), or the cash part (CASH)."""
    visit = diff.his_visit_id or "?"
    message_id = writeback.repair_message_id(diff.run_id, diff.id, f"mp_refund:{tag}")
    if cancellation is not None:
        split = writeback.split_of(cancellation.split or cancellation.amounts())
        if split.medfee_sumamt > 0:
            split = writeback.negated(split)
        kept: dict[str, Any] = {}
        if str(refund.get("refdType")) == "HI":  # the insurance part back, the patient's cash part kept (as the
            # mobile-pay service tells HIS of its own HI refunds): the national cancellation negates the whole split
            kept["cash_kept"] = str(money(abs(split.psn_cash_pay) - Decimal(str(refund.get("cashRefdAmt") or "0"))))
        result = HisResult(message_id=message_id, his_visit_id=visit, visit_kind="outpatient", kind="refunded",
                           service=writeback.SERVICE, reason_code=writeback.REPAIR_REASON, msgid=cancellation.msgid,
                           psn_no=cancellation.psn_no, insutype=cancellation.insutype or None,
                           insuplc_admdvs=cancellation.clr_optins or None, mdtrt_id=cancellation.mdtrt_id,
                           setl_id=cancellation.setl_id, orig_setl_id=diff.setl_id if diff.diff_class ==
                           "mp_paid_not_in_his" else (original.setl_id if original is not None else None),
                           setl_time=cancellation.setl_time, clr_type="11", clr_optins=cancellation.clr_optins,
                           refd_setl_flag="1", split=split, reason="a mobile-pay refund booked by reconciliation",
                           detail={"repair": "mp_refund", "run_id": diff.run_id, "difference_id": diff.id, **kept,
                                   **_mobile_detail(diff, refd_type=refund.get("refdType"),
                                                    refund_sn=refund.get("appRefdSn"), via=refund.get("via"))})
        entry = writeback.ledger_entry_of(cancellation, his_visit_id=visit, message_id=message_id,
                                          orig_setl_id=result.orig_setl_id)
        _book(deps, conn, diff, result, entry)
        return
    cash = money(Decimal(str(refund.get("cashRefdAmt") or "0")))
    if cash == ZERO:
        return
    zero = Decimal("0.00")
    sn = str(refund.get("appRefdSn") or tag)[:30]
    optins = getattr(original, "clr_optins", None) or getattr(original, "setl_optins", None) or diff.setl_optins
    result = HisResult(message_id=message_id, his_visit_id=visit, visit_kind="outpatient", kind="refunded",
                       service=writeback.SERVICE, reason_code=writeback.REPAIR_REASON, msgid=sn,
                       psn_no=getattr(original, "psn_no", None), insutype=getattr(original, "insutype", None) or None,
                       insuplc_admdvs=optins or None, setl_id=sn,
                       orig_setl_id=getattr(original, "setl_id", None), setl_time=clock.now(), clr_type="11",
                       clr_optins=optins or None, refd_setl_flag="1",
                       split=SettlementSplit(medfee_sumamt=zero, fund_pay_sumamt=zero, psn_part_amt=-cash,
                                             acct_pay=zero, psn_cash_pay=-cash),
                       reason="a mobile-pay cash refund booked by reconciliation",
                       detail={"repair": "mp_refund", "run_id": diff.run_id, "difference_id": diff.id,
                               "cash_only": True, **_mobile_detail(diff, refd_type="CASH", refund_sn=sn)})
    entry = LedgerEntry(setl_id=sn, his_visit_id=visit, visit_kind="outpatient", channel=diff.channel,
                        insutype=result.insutype or "", clr_type="11", setl_optins=optins or "", refd_setl_flag="1",
                        setl_time=clock.now(), medfee_sumamt=zero, fund_pay_sumamt=zero, acct_pay=zero,
                        psn_cash_pay=-cash, mdtrt_id=getattr(original, "mdtrt_id", None), psn_no=result.psn_no,
                        orig_setl_id=result.orig_setl_id, msgid=sn, status="cash", producer=writeback.SERVICE,
                        message_id=message_id, source="repair")
    _book(deps, conn, diff, result, entry)


async def _refund_on_platform(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, plan: MobilePlan) -> str:
    """The approved refund of a 单边账: stored before sending, idempotent by appRefdSn, then booked in HIS."""
    assert plan.view is not None and plan.entry is not None
    view, entry = plan.view, plan.entry
    sn = refund_sn(diff)
    if not await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"},
                                                         status="applying", repair_msgid=sn,
                                                         outcome=f"refund {sn} being sent")):
        return diff.status
    ref = await deps.db(lambda conn: order_ref(conn, diff.msgid or ""))
    assert ref is not None
    cash, acct, fund = view.refundable()
    try:
        if mobile.refund_via == "2208" and (acct or fund):
            await deps.platform(deps.client.call("2208", {"data": {"psn_no": entry.psn_no, "setl_id": entry.setl_id,
                                                                   "mdtrt_id": entry.mdtrt_id}},
                                                 insuplc_admdvs=entry.clr_optins or None, visit_key=ref.visit_key))
            kinds = [("CASH", cash, ZERO, ZERO)] if cash else []
        else:
            kinds = [("ALL", cash, acct, fund)]
        for kind, c, a, f in kinds:
            await _refund_6203(deps, mobile, ref, sn if kind == "ALL" else refund_sn(diff, kind), kind, (c, a, f))
    except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
        return await _refund_not_done(deps, diff, exc)
    return await _book_all(deps, mobile, diff, ref)


async def _refund_6203(deps: Any, mobile: MobileDeps, ref: Any, sn: str, kind: str,
                       parts: tuple[Decimal, Decimal, Decimal]) -> None:
    """One 6203 of ``kind`` (cash, personal account, fund parts) under appRefdSn ``sn``; anything but SUCC raises."""
    c, a, f = parts
    reply = await deps.platform(mobile.client.call("6203", {"version": ref.version, "data": {
        "payOrdId": ref.pay_ord_id, "appRefdSn": sn, "appRefdTime": clock.format_compact(clock.now()),
        "totlRefdAmt": money(c + a + f), "cashRefdAmt": c, "psnAcctRefdAmt": a, "fundRefdAmt": f,
        "refdType": kind, "orgCodg": mobile.org_codg}}, visit_key=ref.visit_key))
    status = str((getattr(reply, "output", {}) or {}).get("refStatus") or "")
    if status != "SUCC":
        raise ReconciliationError(f"6203 {kind} answered refStatus {status or '?'}")


async def _refund_not_done(deps: Any, diff: DifferenceRecord, exc: BaseException, *, lookup: str = "6301") -> str:
    """A refund the platform refused goes to a person (``manual``); one not finished stays ``applying`` (``lookup``,
    6301 or WeChat's 8805, is asked at the next attempt)."""
    if isinstance(exc, BusinessRejection):
        reason = f"refund refused: {exc.err_msg}; handle by hand"[:500]
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, status="manual",
                                                     outcome=reason))
        return "manual"
    reason = f"refund not finished ({type(exc).__name__}: {exc}): {lookup} is asked at the next attempt"[:500]
    await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, outcome=reason))
    return "applying"


async def _refund_as_booked(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, plan: MobilePlan) -> str:
    """The approved refund of a hand-booked HIS refund: its appRefdSn stored before it is sent (the platform treats
    it as the refund's identity: an attempt after a lost answer is the same refund), then HIS's books re-keyed."""
    assert plan.parts is not None and plan.refd_type is not None
    sn = refund_sn(diff, "AS_BOOKED")
    if not await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"},
                                                         status="applying", repair_msgid=sn,
                                                         outcome=f"refund {sn} being sent")):
        return diff.status
    ref = await deps.db(lambda conn: order_ref(conn, diff.msgid or ""))
    if ref is None:
        raise ReconciliationError("the order is no longer in our call log")
    try:
        await _refund_6203(deps, mobile, ref, sn, plan.refd_type, plan.parts)
    except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
        return await _refund_not_done(deps, diff, exc)
    return await _rekey_hand_refund(deps, mobile, diff, ref, sn)


def _void_refund(conn: Connection, setl_id: str) -> bool:
    """Take HIS's hand-booked refund out of the ledger (booked, or cash-only); True when it was there."""
    c = recon_ledger.c
    return conn.execute(recon_ledger.update().where(c.setl_id == setl_id, c.refd_setl_flag == "1",
                                                    c.status.in_(("booked", "cash")))
                        .values(status="voided", updated_at=clock.now())).rowcount == 1


async def _rekey_hand_refund(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, ref: OrderRef, sn: str) -> str:
    """The platform refunded (``sn`` SUCC): in one transaction HIS's hand-booked refund is voided (HIS told: the
    settlement stands again) and the platform's refund booked in its place (HIS told: refunded, with the platform's
    cancellation) — so HIS, 3201/3202 and the mobile reconciliation all see the platform's refund once."""
    view = await deps.platform(mobile.view(ref))
    refund = next((r for r in view.succeeded_refunds() if str(r.get("appRefdSn")) == sn), None)
    if refund is None:
        raise ReconciliationError(f"6301 does not list refund {sn} as succeeded")
    cancellation = await _entry(deps, view, str(refund["hiDocSn"]), ref) if refund.get("hiDocSn") else None
    return await _replace_hand_refund(
        deps, diff, f"refunded on the platform ({refund.get('refdType')} {sn}); HIS's hand-booked refund replaced by "
                    "the platform's", refund, cancellation, "as_booked")


async def _replace_hand_refund(deps: Any, diff: DifferenceRecord, outcome: str, refund: dict[str, Any],
                               cancellation: PlatformEntry | None, how: str) -> str:
    """In one transaction: the difference repaired (``outcome``), HIS's hand-booked refund voided (HIS told: the
    settlement stands again) and the refund that was made — the platform's 6203, or WeChat Pay's 8804 — booked in its
    place (HIS told: refunded). A difference another run finished meanwhile is left as it is."""

    def finish(conn: Connection) -> str:
        hand = entry_by_setl_id(conn, diff.setl_id)
        original = entry_by_setl_id(conn, hand.orig_setl_id or "") if hand is not None else None
        if not update_difference(conn, diff.id, expect={"approved", "applying"}, status="repaired",
                                 resolved_at=clock.now(), outcome=outcome):
            return diff.status
        if hand is not None and _void_refund(conn, hand.setl_id):
            _send(deps, conn, writeback.voided(hand, run_id=diff.run_id, difference_id=diff.id))
        of_order = replace(diff, channel=original.channel if original is not None else diff.channel,
                           his_visit_id=diff.his_visit_id or (original.his_visit_id if original else None))
        _book_refund(deps, conn, of_order, original, refund, cancellation, how)
        return "repaired"

    return await deps.db(finish)


async def _book_all(deps: Any, mobile: MobileDeps, diff: DifferenceRecord, ref: OrderRef) -> str:
    """HIS books the platform's settlement and every refund of it (what the platform holds now)."""
    view = await deps.platform(mobile.view(ref))
    entry = await _entry(deps, view, view.hi_doc_sn or diff.setl_id, ref)
    if entry is None:
        raise ReconciliationError("5203 has no such settlement")
    cancellations: dict[str, PlatformEntry | None] = {}
    for r in view.succeeded_refunds():
        if r.get("hiDocSn"):
            cancellations[str(r["hiDocSn"])] = await _entry(deps, view, str(r["hiDocSn"]), ref)

    def finish(conn: Connection) -> str:
        if not update_difference(conn, diff.id, expect={"approved", "applying"}, status="repaired",
                                 outcome="refunded on the platform and booked in HIS (settlement and refund)",
                                 resolved_at=clock.now()):
            return diff.status
        _book_settlement(deps, conn, diff, entry)
        for i, r in enumerate(view.succeeded_refunds()):
            _book_refund(deps, conn, diff, entry, r, cancellations.get(str(r.get("hiDocSn") or "")), f"{i}")
        return "repaired"

    return await deps.db(finish)


async def apply_mobile_difference(deps: Any, difference_id: int) -> str:
    """Apply the repair of an ``approved`` (or ``applying``) mobile difference; its new status."""
    diff = await deps.db(lambda conn: difference(conn, difference_id))
    if diff is None or diff.status not in ("approved", "applying"):
        return diff.status if diff is not None else "missing"
    mobile: MobileDeps | None = deps.mobile
    try:
        if diff.status == "applying" and diff.action == "mp_cash_refund_as_booked" and mobile is not None \
                and mobile.wechat is not None:
            resumed = await _resume_wechat_as_booked(deps, mobile, diff)
            if resumed is not None:
                metrics.REPAIRS.labels(diff.diff_class, diff.action, resumed).inc()
                return resumed
        if diff.status == "applying" and diff.action == "mp_refund_as_booked" and mobile is not None:
            ref = await deps.db(lambda conn: order_ref(conn, diff.msgid or ""))
            view = await deps.platform(mobile.view(ref)) if ref is not None else None
            if ref is not None and view is not None and any(str(r.get("appRefdSn")) == diff.repair_msgid
                                                            for r in view.succeeded_refunds()):
                status = await _rekey_hand_refund(deps, mobile, diff, ref, diff.repair_msgid or "")
                metrics.REPAIRS.labels(diff.diff_class, diff.action, status).inc()
                return status
        if diff.status == "applying" and diff.action == "mp_refund" and mobile is not None:
            ref = await deps.db(lambda conn: order_ref(conn, diff.msgid or ""))
            view = await deps.platform(mobile.view(ref)) if ref is not None else None
            if ref is not None and view is not None and any(str(r.get("appRefdSn")) == diff.repair_msgid
                                                            for r in view.succeeded_refunds()):
                status = await _book_all(deps, mobile, diff, ref)  # the refund took effect: book it
                metrics.REPAIRS.labels(diff.diff_class, "mp_refund", status).inc()
                return status
        plan = await plan_mobile(deps, diff)
    except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
        reason = f"not applied: truth unknown ({type(exc).__name__}); will be tried again"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={diff.status}, outcome=reason))
        return diff.status
    if plan.action == "none":
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"},
                                                     status="resolved", outcome=plan.reason, resolved_at=clock.now()))
        return "resolved"
    if plan.action != diff.action:
        status = "manual" if plan.action == "manual" else "pending_approval"
        reason = f"the platform changed since the approval ({diff.action} → {plan.action}): {plan.reason}"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"}, status=status,
                                                     action=plan.action, amount=plan.amount,
                                                     needs_approval=status == "pending_approval", outcome=reason))
        return status
    assert mobile is not None
    try:
        if plan.action == "mp_refund":
            status = await _refund_on_platform(deps, mobile, diff, plan)
        elif plan.action == "mp_wechat_refund":
            status = await _refund_on_wechat(deps, mobile, diff, plan)
        elif plan.action == "mp_refund_as_booked":
            status = await _refund_as_booked(deps, mobile, diff, plan)
        elif plan.action == "mp_cash_refund_as_booked":
            status = await _wechat_refund_as_booked(deps, mobile, diff, plan)
        elif plan.action == "mp_book":
            ref = await deps.db(lambda conn: order_ref(conn, diff.msgid or ""))
            assert ref is not None
            status = await _book_all(deps, mobile, diff, ref)
        else:
            status = await deps.db(lambda conn: _apply_in_db(deps, diff, plan, conn))
    except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
        reason = f"not applied ({type(exc).__name__}: {exc}); will be tried again"[:500]
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved", "applying"}, outcome=reason))
        return diff.status
    metrics.REPAIRS.labels(diff.diff_class, plan.action, status).inc()
    log.info("mobile repair applied", extra={"fields": {"run_id": diff.run_id, "difference_id": diff.id,
                                                        "class": diff.diff_class, "action": plan.action,
                                                        "status": status}})
    return status


def _apply_in_db(deps: Any, diff: DifferenceRecord, plan: MobilePlan, conn: Connection) -> str:
    expect = {"approved"}
    if plan.action == "mp_adopt_wechat_refund":
        if his_refund(conn, diff.setl_id) is not None:
            update_difference(conn, diff.id, expect=expect, status="resolved", outcome="booked since",
                              resolved_at=clock.now())
            return "resolved"
        if not update_difference(conn, diff.id, expect=expect, status="repaired", resolved_at=clock.now(),
                                 outcome="WeChat Pay's cash refund booked in HIS"):
            return diff.status
        original = plan.original
        assert original is not None
        of_order = replace(diff, his_visit_id=diff.his_visit_id or original.his_visit_id, channel=original.channel)
        _book_refund(deps, conn, of_order, original, {"cashRefdAmt": str(plan.amount or ZERO),
                                                      "appRefdSn": diff.setl_id, "refdType": "CASH"}, None, "wechat")
        return "repaired"
    local = entry_by_setl_id(conn, diff.setl_id)
    if plan.action == "mp_adopt_refund":
        if local is not None:
            update_difference(conn, diff.id, expect=expect, status="resolved", outcome="booked since",
                              resolved_at=clock.now())
            return "resolved"
        view = plan.view
        assert view is not None
        refund = next((r for r in view.succeeded_refunds() if str(r.get("hiDocSn") or r.get("appRefdSn")) ==
                       diff.setl_id), {})
        original = entry_by_setl_id(conn, view.hi_doc_sn or "")
        if not update_difference(conn, diff.id, expect=expect, status="repaired", outcome="refund booked in HIS",
                                 resolved_at=clock.now()):
            return diff.status
        _book_refund(deps, conn, diff, original, refund, plan.cancellation, "adopt")
        return "repaired"
    if local is None:
        update_difference(conn, diff.id, expect=expect, status="manual",
                          outcome="the hospital ledger entry changed since planning")
        return "manual"
    if plan.action == "void":
        result = writeback.voided(local, run_id=diff.run_id, difference_id=diff.id)
        if not update_difference(conn, diff.id, expect=expect, status="repaired", resolved_at=clock.now(),
                                 outcome="voided in HIS (no platform order is paid with it)"):
            return diff.status
        _void_entry(conn, local.setl_id)
        _send(deps, conn, result)
        return "repaired"
    if plan.action == "correct":
        assert plan.entry is not None
        result = writeback.corrected(local, plan.entry, run_id=diff.run_id, difference_id=diff.id)
        if not update_difference(conn, diff.id, expect=expect, status="repaired", resolved_at=clock.now(),
                                 outcome="HIS amounts corrected to the platform's"):
            return diff.status
        _correct_entry(conn, local, plan.entry.amounts(), plan.entry.split or None)
        _send(deps, conn, result)
        return "repaired"
    raise AssertionError(plan.action)
