"""2601 冲正: undo exactly what one earlier message did, found by its msgid (omsgid) and infno (oinfno).

Answers (err_msg texts are stable so a caller may branch on them):
- the original was never received → ``infcode -1``, "原交易不存在 … nothing was done";
- the original was received but refused → ``infcode -1``, "原交易未成功 … nothing was done";
- the transaction is not reversible (the catalog's ``reversible``, or settings.reversible_infnos) → ``infcode -1``,
  "不可冲正";
- already reversed → ``infcode -1``, "已冲正";
- otherwise the effect is undone (settlement erased, or cancellation erased and the settlement restored, with
  balances), ``infcode 0`` with output.data naming what was undone.
"""

from __future__ import annotations

from typing import Any

from yibao.core import clock

from .calls import Call, block, need
from .settlement import undo_cancellation, undo_settlement

__all__ = ["register", "NOT_FOUND", "NOT_DONE", "NOT_REVERSIBLE", "ALREADY_REVERSED"]

NOT_FOUND = "原交易不存在 (omsgid not received): nothing was done"
NOT_DONE = "原交易未成功 (the original was refused): nothing was done"
NOT_REVERSIBLE = "不可冲正: this transaction is not reversible by 2601"
ALREADY_REVERSED = "已冲正: the original message was already reversed"


def h2601(call: Call) -> dict[str, Any]:
    data = block(call, "data")
    psn_no = need(call, data, "psn_no")
    omsgid = need(call, data, "omsgid")
    oinfno = need(call, data, "oinfno")
    ledger = call.platform.ledger
    original = ledger.messages.get(omsgid)
    if original is None or original.fixmedins_code != call.fixmedins_code or original is call.record:
        raise call.refuse(NOT_FOUND)
    if original.infno != oinfno:
        raise call.refuse("data.oinfno: not the transaction of omsgid")
    if not call.platform.reversible(oinfno):
        raise call.refuse(NOT_REVERSIBLE)
    if original.infcode != 0:
        raise call.refuse(NOT_DONE)
    if original.reversed_by:
        raise call.refuse(ALREADY_REVERSED)
    effect = original.effect
    target = ledger.settlements.get(str(effect.get("setl_id", "")))
    if target is None:
        raise call.refuse(NOT_DONE)
    if target.psn_no != psn_no:
        raise call.refuse("data.psn_no: not the person of the original message")
    if effect.get("kind") == "settlement":
        what = undo_settlement(call, target)
    elif effect.get("kind") == "cancellation":
        what = undo_cancellation(call, target)
    else:  # pragma: no cover - reversible infnos only ever book these two
        raise call.refuse(NOT_REVERSIBLE)
    original.reversed_by = call.msgid
    ledger.reversals.append({
        "msgid": call.msgid, "omsgid": omsgid, "oinfno": oinfno, "setl_id": target.setl_id,
        "time": clock.format_datetime(call.now), "undone": what,
    })
    call.record.effect = {"kind": "reversal", "omsgid": omsgid, "setl_id": target.setl_id}
    return {"data": {"omsgid": omsgid, "oinfno": oinfno, "setl_id": target.setl_id, "rvs_rslt": "1", "memo": what}}


def register(handlers: dict[str, Any]) -> None:
    handlers["2601"] = h2601
