"""The settlement chain: fee details (2204/2301), pre-settlement and settlement (2206→2207, 2303→2304), refunds
(2208→2205, 2305), and the answers to registration's unwind and discharge requests — decided from a visit's state
(its lines included), one action at a time.

:meth:`SettlementChain.next_action` is a pure decision, in this order:

1. **work already decided** — an upload batch, a withdrawal (2205/2302), a request whose platform call was chosen
   (2207/2304 after the pre-settlement, 5203 confirmations, 2208/2305): always first, so a lost answer or a crash
   finds the very same call again and the engine resolves it before anything else;
2. **lines** — while the visit may take details (registered; outpatient: 2203 done; inpatient: before 2402;
   not being cancelled): net reversal lines locally, revoke an outpatient round whose line was reversed, freeze
   the next batch of ≤ ``detail_batch_size`` lines;
3. **requests**, strictly in HIS order (``occurred_at``: HIS's own time, carried by registration's requests too)
   — settle (prerequisites, then the uploaded lines must add up to the HIS total: wait, with a deadline), refund
   (waits for the settlement it names; that settlement must be active; inpatient latest first), unwind and
   discharge (registration's, answered from what settlement holds, after ``order_window``). A request that waits
   holds back every request behind it — an unwind never overtakes an earlier settlement or refund — except a
   final settlement waiting for the stay's reopening, whose own discharge must pass it.

Charge lines may arrive after the 2402 (another CDC table, or charged late), or be refused by the platform because
registration sent the 2402 without settlement's confirmation (after its ``discharge_wait``) while their 2301 was on
its way: those are not refused lines — they wait, pending, like late ones (and nothing more goes up until
registration's ``discharged`` arrives). A final settlement whose total they complete asks registration to reopen
the stay (``reopen_requested``: 2405 → the lines go up with 2301 → 2402 again) and settles once registration's own
2402 ended the reopening (a final settlement goes only to the discharge in force: see
:meth:`SettlementChain._discharge_in_force`); if registration cannot, the request is rejected with its reason.
Rollback order is enforced here and by the platform; a request that would skip a step is refused with reason code
``out_of_order``.

What each call sends and what its answer changes lives in its family's module under :mod:`yibao.settlement.steps`.
"""

from __future__ import annotations

import datetime as _dt
import logging
from decimal import Decimal
from typing import Any

from yibao.chains.model import Action, Call, Change, Effects, Idle, Park, Wait
from yibao.core import money
from yibao.settlement import hemodialysis
from yibao.settlement.config import ChainConfig
from yibao.settlement.lines import LineBook
from yibao.settlement.results import SERVICE, emit_fact, emit_result, count_final, reject, unwind_answer
from yibao.settlement.state import (
    AnyRequest,
    DischargeRequest,
    Parked,
    RefundRequest,
    SettlementState,
    SettleRequest,
    UnwindRequest,
    Withdrawal,
)
from yibao.settlement.steps import details, refund, settle, withdraw
from yibao.settlement.store import SettlementStore

__all__ = ["SettlementChain", "SERVICE", "book_of"]

log = logging.getLogger(__name__)


def book_of(st: SettlementState) -> LineBook:
    """The visit's lines as the decision reads them: netting, refusals, the batch in flight, HIS order."""
    times = [r.occurred_at for r in st.open_requests() if isinstance(r, SettleRequest)]
    # HIS order for lines: a line charged after an open settlement request is the next settlement's (the platform
    # settles every unsettled line of the visit at once)
    return LineBook(st.lines.all(), merged=st.merged, refused=st.refused,
                    frozen=st.upload.sns if st.upload else (), until=min(times) if times else None)


class SettlementChain:
    """The :class:`~yibao.chains.model.Chain` of ``yibao worker settlement``."""

    service = SERVICE
    store = SettlementStore()

    def __init__(self, config: ChainConfig, *, catalog: Any) -> None:
        self.config = config
        self.catalog = catalog

    def new_state(self, key: str, kind: str) -> SettlementState:
        st = SettlementState(kind="inpatient" if kind == "inpatient" else "outpatient")
        st.lines.visit_key = key
        return st

    # --- the decision ---------------------------------------------------------------------------------------------

    def next_action(self, st: SettlementState, now: _dt.datetime) -> Action:
        if st.hold is not None:
            return Park(st.hold.reason_code, st.hold.reason)
        book = book_of(st)
        decided = self._decided(st, book)
        if decided is not None:
            return decided
        lines = self._lines_action(st, book)
        if lines is not None:
            return lines
        waits: list[Wait] = []
        held = self._discharged_first(st, now)
        if isinstance(held, Change):
            return held
        if held is not None:
            waits.append(held)
        ending = self._reopening_discharge(st, now)
        if isinstance(ending, Change):
            return ending
        if ending is not None:
            waits.append(ending)
        for request in st.open_requests():
            if isinstance(request, SettleRequest):
                action = self._settle_action(st, book, request, now)
            elif isinstance(request, RefundRequest):
                action = self._refund_action(st, request, now)
            elif isinstance(request, DischargeRequest):
                action = self._discharge_action(request, now)
            else:
                action = self._unwind_action(st, book, request, now)
            if not isinstance(action, Wait):
                return action
            waits.append(action)
            if not _awaits_discharge(request):
                # HIS order: nothing overtakes a request still waiting for its turn — but a final settlement
                # waiting for its stay's reopening (or for the discharge the platform said it lacks) lets the
                # discharge that ends it pass (a 中途结算 does not: it must be made before that discharge)
                break
        if waits:
            untils = [w.until for w in waits if w.until is not None]
            reason = "; ".join(dict.fromkeys(w.reason for w in waits))
            return Wait(reason[:500], until=min(untils) if untils else None)
        return Idle()

    def _reopening_discharge(self, st: SettlementState, now: _dt.datetime) -> Action | None:
        """The discharge that ends a reopening registration is in the middle of (its 2405 is done: it waits for
        our answer before its 2402) is answered in its own right, whatever HIS request is queued ahead of the final
        settlement — registration serves that one only after this reopening (e.g. a 取消出院 it read after the
        reopening had started), so holding the answer back would hold both services until ``discharge_wait``."""
        reopening = {r.id for r in st.open_requests()
                     if isinstance(r, SettleRequest) and r.reopen == "asked" and r.mid_setl_flag == "0"}
        for r in st.open_requests():
            if isinstance(r, DischargeRequest) and r.phase == "waiting" and r.id in reopening:
                return self._discharge_action(r, now)
        return None

    def _decided(self, st: SettlementState, book: LineBook) -> Call[SettlementState] | None:
        if st.upload is not None:
            return details.upload_call(st, book, st.upload, stay_discharged=self._stay_discharged)
        if st.withdrawal is not None:
            return withdraw.withdrawal_call(st, st.withdrawal, self._nothing_to_revoke)
        r = st.in_flight()
        if isinstance(r, SettleRequest):
            if r.phase == "presettled":
                return settle.settle_call(self.config, st, r, not_discharged=self._not_discharged,
                                         stay_discharged=self._stay_discharged)
            return settle.confirm_settlement_call(self.config, st, r)
        if isinstance(r, RefundRequest):
            if r.phase == "cancelling":
                return refund.cancel_call(st, r)
            if r.phase == "confirming_refund":
                return refund.confirm_cancellation_call(st, r)
        return None

    def _nothing_to_revoke(self, text: str) -> bool:
        return bool(self.catalog.says("nothing_to_revoke", text))

    def _not_discharged(self, text: str) -> bool:
        return bool(self.catalog.says("not_discharged", text))

    def _stay_discharged(self, text: str) -> bool:
        return bool(self.catalog.says("stay_discharged", text))

    # --- lines ------------------------------------------------------------------------------------------------------

    def can_upload(self, st: SettlementState) -> bool:
        """Whether the platform may take this visit's details now."""
        if st.self_pay or st.failed or st.cancelled or st.closing or st.hold is not None:
            return False
        if not (st.registered and st.person.mdtrt_id and st.person.psn_no):
            return False
        if st.kind == "outpatient":
            return st.visit_info_uploaded
        return not st.discharged and st.discharge_pending is None and st.platform_discharged_at is None

    def _discharged_first(self, st: SettlementState, now: _dt.datetime) -> Action | None:
        """The platform refused a 2301 because it holds the stay discharged, and registration's ``discharged`` has
        not reached us yet: wait for it (the lines then wait for the stay's reopening) — up to ``prerequisite_wait``,
        after which the refusal stands (the lines are refused, HIS is told). None: no such refusal."""
        at = st.platform_discharged_at
        if at is None or st.discharged:
            return None
        deadline = at + self.config.prerequisite_wait
        if now < deadline:
            return Wait("the platform refused charge lines (2301) because it holds the stay discharged: waiting for "
                        "registration's discharge (2402), then the stay is reopened for them", until=deadline)
        return Change("the 2301 refusal for a discharged stay stands", _discharge_refusal_stands)

    def _lines_action(self, st: SettlementState, book: LineBook) -> Change[SettlementState] | None:
        if not self.can_upload(st):
            return None
        if book.nettable():
            return Change("net reversal lines", _net_reversals)
        if st.kind == "outpatient" and book.reversals_of_uploaded():
            return Change("revoke the round to net a reversal", self._decide_redo)
        if book.uploadable(st.kind):
            return details.freeze_batch(self.config, book_of)
        return None

    def _decide_redo(self, st: SettlementState, fx: Effects) -> None:
        book = book_of(st)
        uploaded = [line.feedetl_sn for line in book.on_platform_unsettled()]
        if uploaded and book.reversals_of_uploaded():
            st.withdrawal = Withdrawal(no=st.next_no(), infno="2205", purpose="redo",
                                       code=st.chrg_bchno(self.config.outpatient_bchno_prefix), sns=uploaded)

    def _take_back(self, request: SettleRequest) -> Change[SettlementState]:
        """Lines HIS charged after this request went up before it arrived (another CDC table): the platform would
        settle them too — take the round back (2205/2302) and upload only this settlement's lines."""
        def apply(st: SettlementState, fx: Effects) -> None:
            book = book_of(st)
            if st.withdrawal is not None or not book.later_than(request.occurred_at):
                return
            uploaded = [line.feedetl_sn for line in book.on_platform_unsettled()]
            if st.kind == "outpatient":
                code, infno = st.chrg_bchno(self.config.outpatient_bchno_prefix), "2205"
            else:
                code, infno = "0000", "2302"
            st.withdrawal = Withdrawal(no=st.next_no(), infno=infno, purpose="reorder", code=code, sns=uploaded,
                                       request_id=request.id)

        return Change(f"take back later lines:{request.tag}", apply)

    # --- settle requests --------------------------------------------------------------------------------------------

    @staticmethod
    def _reject(request: SettleRequest | RefundRequest, reason_code: str, reason: str) -> Change[SettlementState]:
        def apply(st: SettlementState, fx: Effects) -> None:
            r = next((x for x in st.requests if x.kind == request.kind and x.message_id == request.message_id), None)
            if r is not None and r.phase == "waiting":
                reject(fx, st, r, reason_code=reason_code, reason=reason)  # type: ignore[arg-type]

        return Change(f"reject:{request.tag}", apply)

    @staticmethod
    def _prerequisite(st: SettlementState, r: SettleRequest) -> str | None:
        if not (st.registered and st.person.mdtrt_id and st.person.psn_no):
            return "the visit is not registered with 医保 yet (no mdtrt_id)"
        if st.kind == "outpatient" and not st.visit_info_uploaded:
            return "the visit information (2203) is not uploaded yet"
        if st.kind == "inpatient" and r.mid_setl_flag == "0" and not st.discharged:
            return "the patient is not discharged (2402) yet; a settlement before discharge needs mid_setl_flag=1"
        if st.kind == "inpatient" and r.mid_setl_flag == "0" and st.discharge_unwinding:
            return "registration is cancelling the discharge (2405) to send what comes before it; the final " \
                   "settlement follows the discharge sent again"
        return None

    def _settle_action(self, st: SettlementState, book: LineBook, r: SettleRequest, now: _dt.datetime) -> Action:
        cfg = self.config
        if st.self_pay:
            return self._reject(r, "self_pay", "self-pay visit: no 医保 settlement")
        if st.failed:
            return self._reject(r, "registration_failed", f"registration failed: {st.failed}")
        if st.cancelled:
            return self._reject(r, "visit_cancelled", f"the visit was cancelled ({st.cancelled}): nothing to settle")
        if st.closing:
            return self._reject(r, "visit_cancelled", "the visit is being cancelled: its details were withdrawn")
        sheet = None
        if r.sheet_of:
            if st.kind != "outpatient":
                return self._reject(r, "invalid_request", "a 血透 sheet is settled at an outpatient visit")
            sheet = st.sheets.get(r.sheet_of)
            if sheet is None:  # the store reads the account when a driver takes the visit
                return Wait(f"the 血透 account {r.sheet_of} is read first", until=now)
            refusal = hemodialysis.account_refusal(sheet)
            if refusal:
                return self._reject(r, "invalid_request", refusal)
        if st.kind == "inpatient" and r.mid_setl_flag == "1" and st.discharged:
            if st.endtime is not None and r.occurred_at < st.endtime:
                # HIS asked it while the patient was in the ward; the discharge overtook it (another CDC table)
                return self._reopen(r, now, "the 中途结算 was asked before the discharge (2402) that overtook it")
            return self._reject(r, "out_of_order", "中途结算 (mid_setl_flag=1) only while admitted: the patient is "
                                                   "discharged (2402); settle with mid_setl_flag=0")
        if st.kind == "inpatient" and r.mid_setl_flag == "1" and r.discharged_on_platform_at is not None:
            # the platform refused it for a discharged stay that settlement has not heard of: registration's 2402
            # overtook it; registration's discharged comes next (the branch above then reopens the stay for it)
            deadline = r.discharged_on_platform_at + cfg.prerequisite_wait
            why = (f"the platform holds the stay discharged ({r.discharged_on_platform_reason or 'no reason given'})"
                   ": registration's discharge (2402) overtook this 中途结算")
            if now >= deadline:
                return self._reject(r, "out_of_order", f"{why}, and registration reported no discharge within "
                                                       f"{cfg.prerequisite_wait.total_seconds():g} s")
            return Wait(f"{why}: waiting for registration's discharge, then the stay is reopened for it",
                        until=deadline)
        missing = self._prerequisite(st, r)
        if missing:
            deadline = r.received_at + cfg.prerequisite_wait
            if now >= deadline:
                return self._reject(r, "not_ready", f"{missing} after {cfg.prerequisite_wait.total_seconds():g} s")
            return Wait(missing, until=deadline)
        if st.kind == "inpatient" and r.mid_setl_flag == "0":
            held = self._discharge_in_force(r, now)
            if held is not None:
                return held
        if not (r.mdtrt_cert_no or st.person.mdtrt_cert_no):
            return self._reject(r, "invalid_request", "no mdtrt_cert_no (就诊凭证) for the settlement: neither the "
                                                      "request nor the registration carries one")
        if sheet is not None and sheet.pending:
            return Change(f"claim the 血透 sheet:{r.tag}", _claim(r.sheet_of or ""))
        if book.later_than(r.occurred_at) and self.can_upload(st):
            return self._take_back(r)
        lines = book.on_platform_unsettled()
        total = book.unsettled_total()
        his_total = money.money(r.medfee_sumamt)
        if lines and total == his_total:
            return settle.presettle_call(cfg, st, r, lines, total, not_discharged=self._not_discharged,
                                         stay_discharged=self._stay_discharged)
        if his_total <= 0 and not lines:
            return self._reject(r, "nothing_to_settle", f"HIS total {his_total}: nothing to settle")
        refused = book.refused_lines()
        if refused:
            first = st.refused.get(refused[0].feedetl_sn, "")
            return self._reject(r, "details_rejected",
                                f"{len(refused)} charge lines were refused by the platform ({first}); "
                                f"HIS total {his_total}, uploaded {total}")
        reopen = self._reopen_action(st, book, r, total, his_total, now)
        if reopen is not None:
            return reopen
        deadline = r.received_at + cfg.lines_wait
        if now >= deadline:
            pending = book.with_status("pending")
            received = money.money(total + sum((book.net_amount(x) for x in pending), Decimal("0")))
            reason = f"charge lines missing: HIS total {his_total}, received {received}"
            if st.kind == "inpatient" and st.discharged and pending:
                reason += (f"; {len(pending)} lines arrived after the discharge (2402): cancel the discharge (2405) "
                           "to upload them")
            return self._reject(r, "lines_missing", reason)
        until = deadline
        if r.sheet_of:  # look for sheet lines still arriving on the account (the store reads it again then)
            until = min(deadline, now + cfg.sheet_poll)
        return Wait(f"waiting for charge lines: HIS total {his_total}, uploaded {total}", until=until)

    def _discharge_in_force(self, r: SettleRequest, now: _dt.datetime) -> Action | None:
        """A final settlement goes only to a stay the platform holds discharged by the discharge now in force: not
        while the reopening it asked for has not ended with registration's own 2402 (registration's 2405 would
        still come, between our 2303 and 2304), nor after the platform answered that the stay is not discharged,
        until registration says it is discharged again. None: nothing holds it."""
        if r.reopen == "asked":
            return self._reopen(r, now, "the stay is being reopened for charge lines that arrived after the "
                                        "discharge (2405 → 2301 → 2402 again)")
        if r.not_discharged_at is not None:
            wait = self.config.prerequisite_wait
            deadline = r.not_discharged_at + wait
            why = f"the platform holds the stay not discharged ({r.not_discharged_reason or 'no reason given'})"
            if now >= deadline:
                return self._reject(r, "not_ready", f"{why}; no discharge (2402) followed within "
                                                    f"{wait.total_seconds():g} s")
            return Wait(f"{why}: the final settlement follows the discharge (2402) again", until=deadline)
        return None

    def _reopen_action(self, st: SettlementState, book: LineBook, r: SettleRequest, total: Decimal,
                       his_total: Decimal, now: _dt.datetime) -> Action | None:
        """A final inpatient settlement whose lines are all here, some of them after the 2402: the stay must be
        reopened for them (2405 → 2301 → 2402, registration's calls), then it settles. None: not this case."""
        if st.kind != "inpatient" or r.mid_setl_flag != "0" or not st.discharged:
            return None
        late = book.uploadable(st.kind)
        if not late:
            return None
        arrived = [x for x in book.with_status("pending") if x.feedetl_sn not in book.refused]
        if money.money(total + sum((x.amount for x in arrived), Decimal("0"))) != his_total:
            return None  # not all here yet: wait for the lines (deadline lines_wait) as usual
        first = [x for x in late if x.feedetl_sn in st.discharge_refused]
        why = [f"{len(first)} charge lines were refused (2301) because the stay was discharged (2402) before they "
               "went up"] if first else []
        if len(late) > len(first):
            why.append(f"{len(late) - len(first)} charge lines arrived after the discharge (2402)")
        return self._reopen(r, now, "; ".join(why))

    def _reopen(self, r: SettleRequest, now: _dt.datetime, why: str) -> Action:
        """Ask registration to reopen the discharged stay (2405, then 2402 again after this request's needs) and
        wait for it; rejected with registration's reason if it cannot."""
        if r.reopen in (None, "done"):  # "done": more lines came after the discharge sent again
            return Change(f"reopen:{r.tag}:{r.reopens}", _ask_reopen(r, why))
        code = "out_of_order" if r.mid_setl_flag == "1" else "lines_after_discharge"
        if r.reopen == "failed":
            return self._reject(r, code, f"{why}, and the stay could not be reopened (2405): {r.reopen_reason}")
        deadline = r.received_at + self.config.prerequisite_wait
        if now >= deadline:
            return self._reject(r, code, f"{why}; reopening the stay (2405) did not finish within "
                                         f"{self.config.prerequisite_wait.total_seconds():g} s")
        return Wait(f"registration reopens the stay: {why}", until=deadline)

    # --- refund requests --------------------------------------------------------------------------------------------

    def _refund_action(self, st: SettlementState, r: RefundRequest, now: _dt.datetime) -> Action:
        target = st.settlement(r.setl_id) if r.setl_id else None
        if target is None and r.settlement_request_id:
            target = st.settlement_of_request(r.settlement_request_id)
        named = f"setl_id {r.setl_id}" if r.setl_id else f"settlement request {r.settlement_request_id}"
        if target is None:
            if st.self_pay:
                return self._reject(r, "self_pay", "self-pay visit: no 医保 settlement to refund")
            asked = [x for x in st.requests if isinstance(x, SettleRequest) and x.id == r.settlement_request_id]
            if any(x.open for x in asked):
                return Wait(f"the refund waits for {named} to finish")
            if asked and asked[-1].phase == "rejected":
                return self._reject(r, "no_settlement", f"{named} was not settled ({asked[-1].reason})")
            deadline = r.received_at + self.config.prerequisite_wait
            if now >= deadline:
                return self._reject(r, "no_settlement", f"no settlement of {named} at this visit")
            return Wait(f"the refund waits for {named}", until=deadline)
        if target.status != "active":
            return self._reject(r, "already_refunded",
                                f"settlement {target.setl_id} is already refunded (cancellation {target.cancel_setl_id})")
        if st.kind == "inpatient":
            active = st.active_settlements()
            if active and active[-1].setl_id != target.setl_id:
                return self._reject(r, "out_of_order", f"rollback order: refund the later settlement "
                                                       f"{active[-1].setl_id} first (2305, latest first)")
            if target.mid_setl_flag == "1" and st.discharged:
                return self._reject(r, "out_of_order", "rollback order: a 中途结算 is refunded only after the "
                                                       "discharge is cancelled (2405)")
        setl_id = target.setl_id

        def apply(s: SettlementState, fx: Effects) -> None:
            x = next((q for q in s.requests if q.kind == "refund" and q.message_id == r.message_id), None)
            if isinstance(x, RefundRequest) and x.phase == "waiting" and s.in_flight() is None:
                x.phase, x.target_setl_id = "cancelling", setl_id

        return Change(f"refund:{r.tag}", apply)

    # --- registration's requests: discharge, unwind -----------------------------------------------------------------

    def _in_turn(self, r: UnwindRequest | DischargeRequest, now: _dt.datetime) -> Wait | None:
        """Registration's requests close something: answered once registration asked (an ``expected`` one holds its
        place in HIS order until then) and ``order_window`` has passed since, so that HIS events committed before
        them on other tables (their own CDC topics) are queued ahead first."""
        what = "discharge" if isinstance(r, DischargeRequest) else f"cancellation ({r.target})"
        if r.phase == "expected":
            return Wait(f"the HIS {what} comes first: waiting for registration to get to it")
        if not r.his_read:
            # registration read it on the HIS events before settlement did: what HIS committed before it is still
            # on its way here (settlement's backlog) — answering now would let a settlement or refund request HIS
            # made before the cancellation arrive after the visit was closed
            until = r.received_at + self.config.prerequisite_wait
            if now < until:
                return Wait(f"registration asked about the HIS {what} before settlement read it from the HIS events: "
                            "waiting for it, so that what HIS did before it is queued first", until=until)
        ready_at = r.received_at + self.config.order_window
        if now < ready_at:
            return Wait(f"{r.kind} answered once earlier HIS events had time to arrive", until=ready_at)
        return None

    def _discharge_action(self, r: DischargeRequest, now: _dt.datetime) -> Action:
        """Every line that arrived is uploaded by now (lines come before requests): registration may send 2402."""
        early = self._in_turn(r, now)
        if early is not None:
            return early
        message_id = r.message_id

        def apply(s: SettlementState, fx: Effects) -> None:
            x = next((q for q in s.requests if q.kind == "discharge" and q.message_id == message_id), None)
            if isinstance(x, DischargeRequest) and x.phase == "waiting":
                _answer_discharge(s, fx, x)

        return Change(f"discharge:{r.tag}", apply)

    def _unwind_action(self, st: SettlementState, book: LineBook, r: UnwindRequest, now: _dt.datetime) -> Action:
        early = self._in_turn(r, now)
        if early is not None:
            return early
        # HIS refunds a settlement and voids (or settles) its charges before it cancels the visit: while they stand,
        # the HIS requests doing that are still on their way (other CDC tables) — wait for them, up to
        # prerequisite_wait, then answer from what stands
        deadline = r.received_at + self.config.prerequisite_wait
        active = st.active_settlements()
        if r.target == "discharge":
            finals = [x.setl_id for x in active if x.mid_setl_flag == "0"]
            if finals and now < deadline:
                return Wait(f"the final settlement {', '.join(finals)} is active: the cancellation of the discharge "
                            "waits for its refund", until=deadline)
            if finals:
                return _answer(r, f"out_of_order: the final settlement {', '.join(finals)} is active: "
                                  "refund it (2305) before cancelling the discharge")
            return _answer(r, None, closing=False)
        refund_infno = "2208" if st.kind == "outpatient" else "2305"
        if active and now < deadline:
            return Wait(f"settlement {', '.join(x.setl_id for x in active)} is active: the cancellation waits for "
                        f"its refund ({refund_infno})", until=deadline)
        if active:
            return _answer(r, f"out_of_order: settlement {', '.join(x.setl_id for x in active)} is active: "
                              f"refund it ({refund_infno}) first")
        if not r.self_pay and now < deadline:
            charged = [x for x in book.with_status("pending", "uploaded") if x.feedetl_sn not in book.refused]
            if money.money(sum((x.amount for x in charged), Decimal("0"))) != 0:
                return Wait("the visit's charges are neither settled nor voided: the cancellation waits for the HIS "
                            "settlement and refund requests before it", until=deadline)
        if r.target == "admission" and st.discharged:
            return _answer(r, "out_of_order: the patient is discharged: cancel the discharge (2405) first")
        uploaded = [line.feedetl_sn for line in book.on_platform_unsettled()]
        if not uploaded or not st.person.mdtrt_id:
            return _answer(r, None, closing=True)
        infno = "2205" if st.kind == "outpatient" else "2302"

        def apply(s: SettlementState, fx: Effects) -> None:
            x = next((q for q in s.requests if q.kind == "unwind" and q.message_id == r.message_id), None)
            if isinstance(x, UnwindRequest) and x.phase == "waiting" and s.withdrawal is None:
                x.phase = "withdrawing"
                s.withdrawal = Withdrawal(no=s.next_no(), infno=infno, purpose="unwind", code="0000", sns=uploaded,
                                          request_id=x.id)

        return Change(f"unwind:{r.tag}", apply)

    # --- parking ----------------------------------------------------------------------------------------------------

    def on_parked(self, st: SettlementState, fx: Effects, reason_code: str, reason: str) -> None:
        st.parked = Parked(reason_code=reason_code, reason=reason[:2000])
        st.hold = None  # parked now: a replay means "look again"
        r: AnyRequest | None = st.in_flight() or next(
            (x for x in st.open_requests() if not isinstance(x, (UnwindRequest, DischargeRequest))), None)
        for x in st.open_requests():  # registration must not wait for a parked visit to discharge the patient
            if isinstance(x, DischargeRequest) and x.phase == "waiting":
                _answer_discharge(st, fx, x, note=f"settlement is parked ({reason_code}): charge lines may be missing "
                                                  "on the platform")
        request_id = r.id if r is not None else None
        emit_result(fx, st, kind="parked", request_id=request_id, id_parts=(fx.version, reason_code),
                    reason_code=reason_code, reason=reason[:1000])
        if isinstance(r, (SettleRequest, RefundRequest)):
            count_final(fx, r, "parked")


# --- local changes ------------------------------------------------------------------------------------------------


def _net_reversals(st: SettlementState, fx: Effects) -> None:
    """Net pending reversals into their originals that are not on the platform (2204 takes no negative line)."""
    book = book_of(st)
    for reversal, original in book.nettable():
        st.lines.set_status([reversal.feedetl_sn], "withdrawn", only_from=("pending",))
        if original is None:
            continue
        st.merged[reversal.feedetl_sn] = original.feedetl_sn
        book.merged[reversal.feedetl_sn] = original.feedetl_sn
        if book.net(original)[0] == 0:  # nothing left of it: it never goes up
            st.lines.set_status([original.feedetl_sn], "withdrawn", only_from=("pending",))
            st.refused.pop(original.feedetl_sn, None)


def _discharge_refusal_stands(st: SettlementState, fx: Effects) -> None:
    """No discharge followed a 2301 refused for a discharged stay: the refusal is taken as it stands — its lines
    are refused (HIS is told) and the upload of the others goes on."""
    if st.platform_discharged_at is None or st.discharged:
        return
    st.platform_discharged_at = None
    pending = {line.feedetl_sn for line in st.lines.all() if line.status == "pending"}
    sns = [sn for sn in st.discharge_refused if sn in pending]
    if sns:
        text = st.discharge_refused[sns[0]]
        for sn in sns:
            st.refused[sn] = st.discharge_refused[sn]
        emit_result(fx, st, kind="rejected", request_id=None, id_parts=("details", "discharged", st.next_no()),
                    step_infno="2301", reason_code="details_rejected",
                    reason=f"fee details refused ({len(sns)} lines): {text}; no discharge (2402) of the stay "
                           "followed", detail={"feedetl_sns": sns})
    st.discharge_refused.clear()


def _claim(account: str) -> Any:
    def apply(st: SettlementState, fx: Effects) -> None:
        claimed = hemodialysis.claim_sheet(st, account)
        fx.after_commit(lambda: log.info("血透 sheet lines claimed", extra={"fields": {"lines": len(claimed)}}))

    return apply


def _ask_reopen(request: SettleRequest, why: str) -> Any:
    def apply(st: SettlementState, fx: Effects) -> None:
        r = next((x for x in st.requests if x.kind == "settle" and x.message_id == request.message_id), None)
        if not isinstance(r, SettleRequest) or r.phase != "waiting" or r.reopen in ("asked", "failed"):
            return
        r.reopen = "asked"
        r.discharged_on_platform_at = None  # the discharge that overtook it is known: the reopening answers it
        # a second ask (the first ended, more lines came) is a message of its own, not a copy the inbox drops
        parts = (r.message_id,) if r.reopens == 0 else (r.message_id, r.reopens)
        r.reopens += 1
        emit_fact(fx, kind="reopen_requested", request_id=r.id, id_parts=parts, occurred_at=r.occurred_at,
                  reason=f"settlement request {r.id}: {why}")

    return apply


def _awaits_discharge(request: AnyRequest) -> bool:
    """A final settlement waiting for a discharge that registration brings: its reopening, or the discharge the
    platform said the stay lacks."""
    return (isinstance(request, SettleRequest) and request.mid_setl_flag == "0"
            and (request.reopen == "asked" or request.not_discharged_at is not None))


def _answer_discharge(st: SettlementState, fx: Effects, x: DischargeRequest, note: str | None = None) -> None:
    x.phase = "answered"
    if st.kind == "inpatient" and not (st.self_pay or st.failed or st.cancelled):
        st.discharge_pending = x.id  # nothing goes up until registration says discharged (or not)
    refused = LineBook(st.lines.all(), refused=st.refused).refused_lines()
    if refused and not note:
        note = f"{len(refused)} charge lines were refused by the platform and are not on it"
    emit_fact(fx, kind="ready_for_discharge", request_id=x.id, id_parts=(x.message_id,), reason=note)


def _answer(r: UnwindRequest, refused: str | None, *, closing: bool = True) -> Change[SettlementState]:
    def apply(st: SettlementState, fx: Effects) -> None:
        x = next((q for q in st.requests if q.kind == "unwind" and q.message_id == r.message_id), None)
        if not isinstance(x, UnwindRequest) or x.phase != "waiting":
            return
        if refused is None and closing:
            st.closing = True
            hemodialysis.release_sheet(st, [line for line in st.lines.all() if line.status == "pending"])
        if refused is None and x.target == "discharge":
            st.discharge_unwinding = x.id
        unwind_answer(fx, x, refused=refused)

    return Change(f"answer:{r.tag}", apply)
