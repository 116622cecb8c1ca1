"""What settlement tells others: HisResults (to HIS), SettlementFacts (to registration), and the chain metrics.

Every message id is stable (:func:`yibao.core.results.stable_id` of the service, the visit, the request and what
happened), so a unit of work replayed after a crash emits the same ids and the consumers' inboxes drop the copy.

The split of a settlement is read from the platform's ``setlinfo`` (2206/2207/2303/2304, or 5203 when a lost
answer was recovered by query) and checked before anyone is told: a split that does not add up is never passed
on — the visit is parked for a person instead.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.chains import metrics
from yibao.chains.model import Effects
from yibao.core import clock, money
from yibao.core.results import HisResult, SettlementFact, SettlementSplit, stable_id
from yibao.settlement.state import RefundRequest, SettlementState, SettleRequest, UnwindRequest

__all__ = ["SERVICE", "emit_result", "emit_fact", "reject", "unwind_answer", "count_final", "split_of",
           "split_problem", "negated", "setl_time_of", "SPLIT_FIELDS"]

SERVICE = "settlement"

#: the amounts of SettlementSplit, read from setlinfo
SPLIT_FIELDS: tuple[str, ...] = tuple(SettlementSplit.model_fields)

#: 5203 names some amounts differently from 2207 (psn_pay, cash_payamt — [medical] JS5203.cs via the catalog)
_ALIASES = {"psn_part_amt": ("psn_pay",), "psn_cash_pay": ("cash_payamt",)}


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):  # the client parses numbers with parse_float=Decimal; a float is a bug upstream
        value = repr(value)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def split_of(setlinfo: dict[str, Any]) -> dict[str, Decimal]:
    """The amounts of a setlinfo (money-quantized); missing ones are left out."""
    out: dict[str, Decimal] = {}
    for name in SPLIT_FIELDS:
        value = _amount(setlinfo.get(name))
        if value is None:
            for alias in _ALIASES.get(name, ()):
                value = _amount(setlinfo.get(alias))
                if value is not None:
                    break
        if value is not None:
            out[name] = money.money(value)
    return out


def split_problem(split: dict[str, Decimal], expected_total: Decimal | None) -> str | None:
    """Why a settlement's split cannot be trusted (None: it adds up)."""
    for name in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"):
        if name not in split:
            return f"setlinfo.{name} missing"
    medfee, fund, part = split["medfee_sumamt"], split["fund_pay_sumamt"], split["psn_part_amt"]
    if expected_total is not None and medfee != money.money(expected_total):
        return f"setlinfo.medfee_sumamt {medfee} differs from the settled lines' total {money.money(expected_total)}"
    hosp = split.get("hosp_part_amt", Decimal("0.00"))
    if fund + part != medfee and fund + part + hosp != medfee:
        return f"fund_pay_sumamt {fund} + psn_part_amt {part} ≠ medfee_sumamt {medfee}"
    if split["acct_pay"] + split["psn_cash_pay"] != part:
        return f"acct_pay {split['acct_pay']} + psn_cash_pay {split['psn_cash_pay']} ≠ psn_part_amt {part}"
    return None


def negated(split: dict[str, Decimal]) -> dict[str, Decimal]:
    """A cancellation's amounts as negative numbers (platforms answer them either way); balc is not an amount
    moved and keeps its sign."""
    sign = Decimal(-1) if split.get("medfee_sumamt", Decimal(0)) > 0 else Decimal(1)
    return {k: (v if k == "balc" else money.money(v * sign)) for k, v in split.items()}


def setl_time_of(setlinfo: dict[str, Any]) -> _dt.datetime | None:
    text = setlinfo.get("setl_time")
    if not text:
        return None
    try:
        return clock.parse_datetime(str(text))
    except (ValueError, TypeError):
        return None


# --- what settlement tells others ------------------------------------------------------------------------------------


def emit_result(fx: Effects, st: SettlementState, *, kind: str, request_id: str | None, id_parts: tuple = (),
                his_visit_id: str | None = None, visit_kind: str | None = None, **fields: Any) -> HisResult:
    """Queue a HisResult for HIS, with the person and platform visit this visit knows. A result about another
    visit (血透: the inpatient account, ``his_visit_id``) is keyed by that visit."""
    person = st.person
    base: dict[str, Any] = {"psn_no": person.psn_no, "insutype": person.insutype,
                            "insuplc_admdvs": person.insuplc_admdvs, "mdtrt_id": person.mdtrt_id}
    base.update(fields)
    result = HisResult(
        message_id=stable_id(SERVICE, fx.key, request_id, kind, *id_parts), his_visit_id=his_visit_id or fx.key,
        visit_kind=visit_kind or fx.kind, kind=kind, service=SERVICE, his_request_id=request_id,  # type: ignore[arg-type]
        **{k: v for k, v in base.items() if v is not None})
    fx.emit("his_results", result, key=result.his_visit_id)
    return result


def emit_fact(fx: Effects, *, kind: str, request_id: str | None = None, id_parts: tuple = (), **fields: Any) -> None:
    """Queue a SettlementFact for registration."""
    fx.emit("settlement_facts", SettlementFact(
        message_id=stable_id(SERVICE, fx.key, "fact", kind, request_id, *id_parts), his_visit_id=fx.key,
        visit_kind=fx.kind, kind=kind, his_request_id=request_id,  # type: ignore[arg-type]
        **{k: v for k, v in fields.items() if v is not None}))


def reject(fx: Effects, st: SettlementState, request: SettleRequest | RefundRequest, *, reason_code: str,
           reason: str, step_infno: str | None = None) -> None:
    """Answer a settlement or refund request with a rejection: HIS is told why."""
    request.phase, request.reason_code, request.reason = "rejected", reason_code, reason  # type: ignore[assignment]
    emit_result(fx, st, kind="rejected", request_id=request.id, id_parts=(request.message_id,),
                reason_code=reason_code, reason=reason[:1000], step_infno=step_infno)
    count_final(fx, request, "rejected")


def unwind_answer(fx: Effects, request: UnwindRequest, *, refused: str | None = None) -> None:
    """Answer registration's unwind request: ``unwound`` (go on with the rollback) or ``unwind_refused``."""
    request.phase = "refused" if refused else "unwound"
    request.reason = refused
    emit_fact(fx, kind="unwind_refused" if refused else "unwound", request_id=request.id,
              id_parts=(request.message_id,), reason=refused)


def count_final(fx: Effects, request: SettleRequest | RefundRequest, outcome: str) -> None:
    """Count a final outcome and time its request, once the unit of work committed."""
    kind, request_kind, since = fx.kind, request.kind, request.received_at

    def count() -> None:
        metrics.CHAIN_OUTCOMES.labels(SERVICE, kind, outcome).inc()
        seconds = (clock.now() - since).total_seconds()
        metrics.CHAIN_SECONDS.labels(SERVICE, kind, request_kind).observe(max(0.0, seconds))

    fx.after_commit(count)
