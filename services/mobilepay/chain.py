"""The mobile-pay chain: a visit's orders from the channel's request to the money — 6201 → 6202 → the platform's
callback or 6301, 6401 for what will not be paid, 6203 for refunds — decided from the visit's state, one action
at a time.

:meth:`MobilePayChain.next_action` is a pure decision, in this order:

1. **the visit's news** — the counter is settling the visit (its pending lines are the counter's; unpaid uploads
   are revoked), HIS reversed a fee (a pending line is gone; an order holding it is revoked, unless the patient
   already confirmed the payment), HIS cancelled the visit (退号: nothing more is paid);
2. **each order**, oldest first, by its phase:

   ========================  ===================================================================================
   requested                 accept it (claim the lines: pending, not another order's, the total the patient
                             saw) or refuse it with the reason — the settlement type is checked here: a visit HIS
                             registered as 自费 is never paid by 医保 (医保 → 自费 for one visit is allowed)
   new                       6201 once registration established the visit (psn_no, insutype); refused after
                             ``registration_wait_s`` without it
   uploaded                  6202 once the patient confirmed; revoked when withdrawn, when HIS reversed one of
                             its fees, or ``order_ttl_s`` after the upload
   paid                      a final callback settles it (verified; the amounts must add up to the order's
                             total); a callback without the final status, or none within ``callback_wait_s``:
                             confirming
   confirming                6301 (polled while the platform says "in payment")
   revoking                  6401
   wechat_*                  the cash part through WeChat Pay (steps/wechat.py)
   settled                   its refunds: each checked against what remains refundable, then 6203
   ========================  ===================================================================================

A call decided stays the order's next action until it is answered, so a lost answer or a crash finds the very
same call again, and the engine resolves it the way the mobile-pay catalog says (6301; nothing is reversible).
What each call sends and what its answer changes lives in its family's module under :mod:`yibao.mobilepay.steps`.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from yibao.chains.model import Action, Change, Effects, Idle, Park, Wait
from yibao.core.money import ZERO, money
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.results import SERVICE, emit_refund_refused, emit_result
from yibao.mobilepay.state import MobilePayState, Order, Parked
from yibao.mobilepay.steps import pay, refund, revoke, upload, wechat
from yibao.mobilepay.steps.common import end_order, settle_order, parse_time
from yibao.mobilepay.store import MobilePayStore

__all__ = ["MobilePayChain", "SERVICE"]


class MobilePayChain:
    """The :class:`~yibao.chains.model.Chain` of ``yibao worker mobilepay``."""

    service = SERVICE
    store = MobilePayStore()

    def __init__(self, config: ChainConfig, *, catalog: Any) -> None:
        self.config = config
        self.catalog = catalog

    def new_state(self, key: str, kind: str) -> MobilePayState:
        return MobilePayState()

    def on_parked(self, st: MobilePayState, fx: Effects, reason_code: str, reason: str) -> None:
        """A person must look: HIS is told of every order whose payment is in doubt (the patient confirmed it, the
        platform may have settled it) — the daily mobile reconciliation finds it if the platform did."""
        st.parked = Parked(reason_code=reason_code, reason=reason)
        st.hold = None
        for o in st.orders:
            if not o.final and (o.pay_requested or o.phase in ("paid", "confirming")):
                emit_result(fx, st, o, kind="parked", request_id=o.channel_order_id,
                            id_parts=("parked", fx.version), reason_code=reason_code,
                            reason=f"mobile-pay order {o.id}: {reason}"[:1000])

    # --- wording (the catalog's, never a phrase of ours) ---------------------------------------------------------

    def _says(self, name: str) -> Any:
        return lambda text: bool(self.catalog.says(name, text))

    # --- the decision -------------------------------------------------------------------------------------------

    def next_action(self, st: MobilePayState, now: _dt.datetime) -> Action:
        if st.hold is not None:
            return Park(st.hold.reason_code, st.hold.reason)
        news = self._news(st)
        if news is not None:
            return news
        waits: list[Wait] = []
        for order in st.orders:
            action = self._order_action(st, order, now)
            if action is None:
                continue
            if isinstance(action, Wait):
                waits.append(action)
                continue
            return action
        if waits:
            untils = [w.until for w in waits if w.until is not None]
            return Wait("; ".join(dict.fromkeys(w.reason for w in waits))[:500], until=min(untils) if untils else None)
        return Idle()

    # --- what happened to the visit ----------------------------------------------------------------------------

    def _news(self, st: MobilePayState) -> Change[MobilePayState] | None:
        if st.counter_applied < len(st.counter_requests):
            return Change("the counter settles the visit", _counter_claims)
        for line in st.lines.values():
            if line.reversed_by and line.status == "pending":
                return Change(f"reversed line {line.feedetl_sn}", _line_reversed(line.feedetl_sn))
        if st.cancelled and any(o.phase in ("requested", "new") or (o.phase == "uploaded" and not o.pay_requested)
                                for o in st.orders):
            return Change("the visit was cancelled", _visit_cancelled)
        return None

    # --- one order ----------------------------------------------------------------------------------------------

    def _order_action(self, st: MobilePayState, o: Order, now: _dt.datetime) -> Action | None:
        cfg = self.config
        phase = o.phase
        if phase == "requested":
            return Change(f"accept {o.id}", _accept(cfg, o.id))
        if phase == "new":
            return self._new(st, o, now)
        if phase == "uploaded":
            return self._uploaded(st, o, now)
        if phase in ("paid", "confirming"):
            final = self._final_callback(o)
            if final is not None:
                return Change(f"settle {o.id} from its callback", _settle_by_callback(cfg, o.id))
            if phase == "paid":
                if any(not cb.applied for cb in o.callbacks) or (o.confirm_at is not None and now >= o.confirm_at):
                    return Change(f"confirm {o.id}", _to_confirming(o.id))
                return Wait(f"order {o.id}: the platform's callback", until=o.confirm_at)
            if o.confirm_at is not None and now < o.confirm_at:
                return Wait(f"order {o.id}: 6301 again", until=o.confirm_at)
            return pay.confirm_call(cfg, st, o, not_found=self._says("not_found"))
        if phase == "revoking":
            if not o.pay_ord_id:
                return Change(f"withdraw {o.id}", _withdraw(o.id))
            return revoke.revoke_call(cfg, st, o, not_revocable=self._says("not_revocable"))
        if phase.startswith("wechat_"):
            return wechat.wechat_action(cfg, st, o, now)
        if phase == "settled":
            return self._refunds(st, o, now)
        return None

    def _new(self, st: MobilePayState, o: Order, now: _dt.datetime) -> Action:
        cfg, p = self.config, st.patient
        if o.cancel_requested:
            return Change(f"withdraw {o.id}", _withdraw(o.id))
        if o.pay_type == "self_pay":
            return Change(f"cash order {o.id}", wechat.cash_only(cfg, o.id))
        if p.failed:
            return Change(f"refuse {o.id}", _refuse(o.id, "registration_failed",
                                                    f"the visit could not be registered with 医保: {p.failed}"))
        if p.registered and p.self_pay:
            return Change(f"refuse {o.id}", _refuse(o.id, "self_pay_visit", "the visit is registered as 自费 with "
                                                    "the platform: 自费 → 医保 is never allowed for a visit"))
        if not (p.registered and p.psn_no and p.insutype):
            deadline = o.created_at + cfg.registration_wait
            if now >= deadline:
                return Change(f"refuse {o.id}", _refuse(o.id, "not_registered", "the visit was not registered "
                                                        "with 医保 in time (no psn_no from registration)"))
            return Wait(f"order {o.id}: the visit's registration with 医保", until=deadline)
        if o.wechat is None and cfg.wechat_enabled and o.channel_kind == "wechat":
            return Change(f"wechat order {o.id}", wechat.plan(cfg, o.id))
        return upload.upload_call(cfg, st, o, repeat_upload=self._says("repeat_upload"))

    def _uploaded(self, st: MobilePayState, o: Order, now: _dt.datetime) -> Action:
        final = self._final_callback(o)
        if final is not None:  # the 6202's answer was lost but the platform told us itself
            return Change(f"settle {o.id} from its callback", _settle_by_callback(self.config, o.id))
        if o.pay_requested:
            return pay.pay_call(self.config, st, o, not_payable=self._says("not_payable"))
        if o.cancel_requested:
            return Change(f"revoke {o.id}", _to_revoking(o.id, "withdrawn by the channel"))
        reversed_sns = [sn for sn in o.sns if st.lines[sn].reversed_by]
        if reversed_sns:
            return Change(f"revoke {o.id}", _to_revoking(o.id, f"HIS reversed fee {reversed_sns[0]}"))
        if o.expires_at is not None and now >= o.expires_at:
            return Change(f"revoke {o.id}", _to_revoking(o.id, "not paid in time (abandoned)"))
        return Wait(f"order {o.id}: the patient's confirmation", until=o.expires_at)

    def _final_callback(self, o: Order) -> Any:
        for cb in o.callbacks:
            if not cb.applied and self.config.meaning(cb.ord_stas) in ("settled", "refunded") \
                    and None not in (cb.fee_sumamt, cb.own_pay_amt, cb.psn_acct_pay, cb.fund_pay, cb.hi_doc_sn):
                return cb
        return None

    def _refunds(self, st: MobilePayState, o: Order, now: _dt.datetime) -> Action | None:
        for r in o.refunds:
            if r.phase == "asked":
                return Change(f"check refund {r.id}", _check_refund(o.id, r.id))
            if r.phase == "requested":
                return refund.refund_call(self.config, st, o, r)
            if r.phase == "wechat":
                return wechat.refund_action(self.config, st, o, r, now)
        return None


# --- local changes ------------------------------------------------------------------------------------------------


def _order(st: MobilePayState, order_id: str) -> Order:
    order = st.order(order_id)
    assert order is not None, order_id
    return order


def _accept(cfg: ChainConfig, order_id: str) -> Any:
    """Claim the order's lines, or refuse it with the reason the channel shows the patient."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase != "requested":
            return
        p = st.patient
        problem: tuple[str, str] | None = None
        if st.cancelled:
            problem = ("visit_cancelled", "the visit was cancelled (退号)")
        elif not st.known:
            problem = ("unknown_visit", "no such outpatient visit (HIS has not registered it, or not yet)")
        elif p.his_patient_id != o.his_patient_id:
            problem = ("wrong_patient", "the visit is not this patient's")
        elif o.pay_type == "insurance" and p.settle_choice == "self_pay":
            problem = ("self_pay_visit", "the visit was registered as 自费: 自费 → 医保 is never allowed for a visit")
        elif o.pay_type == "self_pay" and not (cfg.wechat_enabled and o.channel_kind == "wechat"):
            problem = ("cash_not_here", "a 自费 (cash) order is paid through WeChat Pay (CASH_ONLY) or at the counter")
        if problem is None:
            pending = {line.feedetl_sn: line for line in st.pending_lines()}
            wanted = o.asked_sns if o.asked_sns is not None else list(pending)
            missing = [sn for sn in wanted if sn not in pending]
            if missing:
                line = st.lines.get(missing[0])
                problem = ("line_not_pending", f"fee {missing[0]} is not pending"
                           + (f" ({line.status})" if line is not None else " (unknown)"))
            elif not wanted:
                problem = ("nothing_to_pay", "the visit has no pending fee")
            else:
                total = money(sum((pending[sn].amount for sn in wanted), ZERO))
                if o.asked_total is not None and money(o.asked_total) != total:
                    problem = ("total_changed", f"the fees add up to {total}, not {money(o.asked_total)}: show the "
                                                "patient the current fees")
                else:
                    o.sns, o.total = list(wanted), total
                    for sn in wanted:
                        pending[sn].status, pending[sn].order_id = "ordered", o.id
                    o.phase, o.updated_at = "new", fx.now
                    return
        code, reason = problem
        end_order(fx, st, o, "refused", reason=reason, reason_code=code)

    return apply


def _refuse(order_id: str, code: str, reason: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase == "new":
            end_order(fx, st, o, "refused", reason=reason, reason_code=code)

    return apply


def _withdraw(order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase in ("new", "revoking"):
            end_order(fx, st, o, "revoked", reason=o.revoke_reason or "withdrawn by the channel",
                      reason_code=o.reason_code or "withdrawn")

    return apply


def _to_revoking(order_id: str, reason: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase == "uploaded" and not o.pay_requested:
            o.phase, o.revoke_reason, o.updated_at = "revoking", reason, fx.now

    return apply


def _to_confirming(order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        if o.phase == "paid":
            for cb in o.callbacks:
                cb.applied = True
            o.phase, o.confirm_at, o.updated_at = "confirming", fx.now, fx.now

    return apply


def _settle_by_callback(cfg: ChainConfig, order_id: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        cb = next((c for c in o.callbacks if not c.applied and cfg.meaning(c.ord_stas) in ("settled", "refunded")), None)
        if cb is None or o.final:
            return
        o.ord_stas = cb.ord_stas
        settle_order(cfg, fx, st, o, fee=cb.fee_sumamt, cash=cb.own_pay_amt, acct=cb.psn_acct_pay, fund=cb.fund_pay,
                     hi_doc_sn=cb.hi_doc_sn, hi_rgst_sn=cb.hi_rgst_sn,
                     when=parse_time(cb.hi_chrg_time or cb.trace_time), by="callback")
        cb.applied = True

    return apply


def _check_refund(order_id: str, refund_id: str) -> Any:
    """A refund asked of a settled order: within what remains refundable, or refused with the reason."""

    def apply(st: MobilePayState, fx: Effects) -> None:
        o = _order(st, order_id)
        r = o.refund(refund_id)
        if r is None or r.phase != "asked":
            return
        others = [x for x in o.refunds if x.id != r.id and x.phase in ("requested", "wechat", "succeeded")]
        cash_done = money(sum((x.cash for x in others), ZERO))
        hi_done = any(x.acct or x.fund for x in others) or any(x.refd_type in ("ALL", "HI") for x in others)
        cash_left = money((o.own_pay_amt or ZERO) - cash_done)
        acct_left, fund_left = (ZERO, ZERO) if hi_done else (o.psn_acct_pay or ZERO, o.fund_pay or ZERO)
        if r.refd_type == "ALL":
            r.cash, r.acct, r.fund = cash_left, acct_left, fund_left
        elif r.refd_type == "CASH":
            r.cash, r.acct, r.fund = cash_left, ZERO, ZERO
        else:
            r.cash, r.acct, r.fund = ZERO, acct_left, fund_left
        if r.total == ZERO:
            r.phase, r.reason, r.done_at = "failed", f"nothing left to refund ({r.refd_type})", fx.now
            emit_refund_refused(fx, st, o, r)
            return
        if r.refd_type in ("ALL", "HI") and hi_done:
            r.phase, r.reason, r.done_at = "failed", "the insurance part is refunded already", fx.now
            emit_refund_refused(fx, st, o, r)
            return
        # the insurance part by 6203 first (its cash part excluded when WeChat collected the cash); a cash-only refund
        # of a WeChat order straight to WeChat Pay (8804)
        r.phase = "wechat" if (wechat.uses_wechat_cash(o) and not (r.acct or r.fund)) else "requested"
        o.updated_at = fx.now

    return apply


def _counter_claims(st: MobilePayState, fx: Effects) -> None:
    """HIS asked the counter to settle the visit: its pending lines are the counter's now; orders not yet paid are
    refused or revoked (an order the patient confirmed is paid: HIS hears of it, and must not settle it again)."""
    st.counter_applied = len(st.counter_requests)
    for line in st.lines.values():
        if line.status == "pending":
            line.status = "counter"
    for o in st.orders:
        if o.phase in ("requested", "new"):
            end_order(fx, st, o, "refused", reason="the counter is settling the visit", reason_code="counter")
        elif o.phase == "uploaded" and not o.pay_requested:
            o.phase, o.revoke_reason, o.updated_at = "revoking", "the counter is settling the visit", fx.now


def _line_reversed(sn: str) -> Any:
    def apply(st: MobilePayState, fx: Effects) -> None:
        line = st.lines[sn]
        if line.status == "pending":
            line.status = "reversed"

    return apply


def _visit_cancelled(st: MobilePayState, fx: Effects) -> None:
    for o in st.orders:
        if o.phase in ("requested", "new"):
            end_order(fx, st, o, "refused", reason="the visit was cancelled (退号)", reason_code="visit_cancelled")
        elif o.phase == "uploaded" and not o.pay_requested:
            o.phase, o.revoke_reason, o.updated_at = "revoking", "the visit was cancelled (退号)", fx.now


def refund_amounts(o: Order, refd_type: str) -> tuple[Decimal, Decimal, Decimal]:
    """(cash, account, fund) a refund of ``refd_type`` would return now (what the channel is shown)."""
    cash, acct, fund = o.refundable()
    if refd_type == "CASH":
        return cash, ZERO, ZERO
    if refd_type == "HI":
        return ZERO, acct, fund
    return cash, acct, fund

