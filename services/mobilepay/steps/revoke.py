"""6401 费用明细上传撤销: an uploaded order that will not be paid is withdrawn — the patient did not confirm it in
time (``order_ttl_s``), the channel withdrew it, HIS reversed one of its fees or cancelled the visit, the counter
is settling its lines, or the platform refused the 6202.

* Lost answer (catalog): 6301 — revoked: adopted; still unpaid: sent again; **paid meanwhile** (the patient
  confirmed on the platform's side before the revocation arrived): the order is confirmed and settled like any
  payment — a payment is never lost by revoking it.
* Refused worded ``not_revocable`` (paid or closed meanwhile): confirmed by 6301 the same way.
* Revoked: the order ends (``revoked``, or ``failed`` when a refused 6202 was the cause), its lines pending again
  — those HIS reversed stay reversed.
"""

from __future__ import annotations

from typing import Any

from yibao.chains.model import Call, Effects, Refusal, Reply
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.state import MobilePayState, Order, Parked
from yibao.mobilepay.steps.common import end_order, envelope_input, lookup_6301, query_data, view_of

__all__ = ["revoke_call"]


def revoke_call(cfg: ChainConfig, st: MobilePayState, order: Order, *, not_revocable: Any) -> Call[MobilePayState]:
    order_id = order.id

    def current(s: MobilePayState) -> Order | None:
        o = s.order(order_id)
        return o if o is not None and o.phase == "revoking" else None

    def on_ok(s: MobilePayState, reply: Reply, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        view = view_of(reply.output) if reply.adopted else None
        if view is not None and cfg.meaning(view.ordStas) != "revoked":
            o.phase, o.confirm_at, o.updated_at = "confirming", fx.now, fx.now  # paid meanwhile: confirm it
            return
        failed = o.reason_code == "platform_rejected"
        end_order(fx, s, o, "failed" if failed else "revoked", reason=o.revoke_reason)

    def on_refused(s: MobilePayState, refusal: Refusal, fx: Effects) -> None:
        o = current(s)
        if o is None:
            return
        if not_revocable(refusal.text):
            o.phase, o.confirm_at, o.updated_at = "confirming", fx.now, fx.now
            return
        s.hold = Parked(reason_code="revocation_refused",
                        reason=f"order {o.id} (payOrdId {o.pay_ord_id}): 6401 refused: {refusal.text}")

    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        view = view_of(output)
        if view is None or cfg.meaning(view.ordStas) == "uploaded":
            return None  # not revoked (nor paid): send it again
        return output

    return Call(f"6401:{order.id}", "6401", envelope_input(order, query_data(cfg, order)), on_ok=on_ok,
                on_refused=on_refused, lookup=lookup_6301(cfg, order, found))
