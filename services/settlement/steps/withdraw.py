"""2205 门诊费用明细信息撤销 / 2302 住院费用明细撤销: lines taken back from the platform, for one of four purposes
(:class:`~yibao.settlement.state.Withdrawal`): ``redo`` (an outpatient round revoked to net a reversal, then uploaded
again), ``reorder`` (lines HIS charged after a settlement request were on the platform: revoked so that only this
settlement's lines are settled), ``refund`` (the refunded settlement's lines), ``unwind`` (everything: the visit is
being cancelled).

Lost answer (catalog): 5204 — none of the lines left on the platform means the revocation took effect. A refusal
saying the platform holds nothing to revoke (the catalog's wording ``nothing_to_revoke``) counts as done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.settlement import hemodialysis
from yibao.settlement.lines import LineBook
from yibao.settlement.results import unwind_answer
from yibao.settlement.state import RefundRequest, SettlementState, SettleRequest, UnwindRequest, Withdrawal
from yibao.settlement.steps.common import detail_rows, lookup_5204, reject_refused, who

__all__ = ["withdrawal_call"]

#: whether an err_msg says the platform holds nothing to revoke (the catalog's wording, per province)
NothingToRevoke = Callable[[str], bool]


def _withdrawn(st: SettlementState, w: Withdrawal, fx: Effects) -> None:
    """What a done 2205/2302 means, by purpose."""
    if w.purpose in ("redo", "reorder"):  # revoked to be netted / put in HIS order, and uploaded again
        st.lines.set_status(w.sns, "pending", upload_msgid=None, only_from=("uploaded",))
    else:
        sns = set(w.sns)
        released = [x for x in st.lines.all() if x.feedetl_sn in sns or (w.purpose == "unwind" and x.status == "pending")]
        st.lines.set_status(w.sns, "withdrawn", setl_id=None, only_from=("uploaded", "settled"))
        hemodialysis.release_sheet(st, released)
    request = next((r for r in st.requests if r.id == w.request_id and r.phase == "withdrawing"), None)
    if isinstance(request, RefundRequest):
        request.phase = "refunded"
    elif isinstance(request, UnwindRequest):
        st.closing = True
        unwind_answer(fx, request)
    st.withdrawal = None


def withdrawal_call(st: SettlementState, w: Withdrawal, nothing_to_revoke: NothingToRevoke) -> Call[SettlementState]:
    data = {**who(st), "chrg_bchno": w.code} if w.infno == "2205" else {"feedetl_sn": w.code, **who(st)}
    sns = set(w.sns)

    def current(s: SettlementState) -> bool:
        return s.withdrawal is not None and s.withdrawal.no == w.no

    def on_ok(s: SettlementState, reply: Reply, fx: Effects) -> None:
        if current(s):
            _withdrawn(s, w, fx)

    def on_refused(s: SettlementState, refusal: Refusal, fx: Effects) -> None:
        if not current(s):
            return
        if refusal.reason_code == "rejected" and nothing_to_revoke(refusal.text):
            _withdrawn(s, w, fx)  # the platform holds none of them: as good as done
            return
        request = next((r for r in s.requests if r.id == w.request_id and r.phase == "withdrawing"), None)
        if w.purpose == "reorder":  # the platform keeps lines it would settle with the request: it is refused
            settle = next((r for r in s.requests if isinstance(r, SettleRequest) and r.id == w.request_id
                           and r.phase == "waiting"), None)
            if settle is not None:
                reject_refused(fx, s, settle, w.infno, refusal)
        elif w.purpose == "redo":  # the reversal cannot be netted: report it and leave it aside
            book = LineBook(s.lines.all(), merged=s.merged, refused=s.refused)
            for r in book.reversals_of_uploaded():
                s.refused[r.feedetl_sn] = f"{w.infno} refused: {refusal.text}"[:300]
        elif isinstance(request, RefundRequest):  # refunded, but its lines stay on the platform unsettled
            s.lines.set_status(w.sns, "uploaded", setl_id=None, only_from=("settled",))
            request.phase = "refunded"
            request.reason = f"{w.infno} after the refund refused: {refusal.text}"
        elif isinstance(request, UnwindRequest):
            unwind_answer(fx, request, refused=f"{w.infno} refused: {refusal.text}")
        s.withdrawal = None

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        held = {str(r.get("feedetl_sn")) for r in detail_rows(output)}
        return {} if not (held & sns) else None

    return Call(f"{w.infno}:w{w.no}", w.infno, {"data": data}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_5204(st, found), psn_no=st.person.psn_no, insuplc_admdvs=st.person.insuplc_admdvs)
