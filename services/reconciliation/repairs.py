"""Planning and applying the repair of one difference, idempotently and never half-applied.

Planning (:func:`plan_difference`): ask the truth (5203; for a cancelled settlement also its cancellation; our
call log for the msgid's fate and HIS visit), decide the repair (:mod:`.plans`), judge it with the approval
policy, and record it on the difference: ``resolved`` (nothing to do), ``manual`` (HIS told with a ``parked``
result when its visit is known), ``approved`` (auto-approved) or ``pending_approval``. A truth that cannot be
read (the platform down) leaves the difference ``open`` with the reason; a later approval or run re-plans it.

Applying (:func:`apply_difference`), for ``approved`` and ``applying`` differences: the truth is asked again
and the repair re-planned — a platform that changed since the approval is never acted on blindly: the same
action is applied, ``none`` resolves the difference, another money-moving action goes back to
``pending_approval``.

* Database-only repairs (adopt, adopt_cancellation, void, correct) are one transaction: the status change
  (compare-and-set from ``approved``), the ledger change, the inbox mark of the HisResult and the HisResult in
  the outbox commit together or not at all.
* 冲正 (reverse) touches the platform: the 2601 msgid is stored with status ``applying`` *before* sending; an
  answer (or 已冲正) completes the repair in one transaction; an unknown outcome leaves it ``applying``, and
  the next attempt asks 5203 first (gone = done) before sending a new 2601.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection

from yibao.core import clock
from yibao.core.errors import YibaoError
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import enqueue
from yibao.core.privacy import mask_text
from yibao.core.results import HisResult
from yibao.core.topics import topic
from yibao.envelope.errors import BusinessRejection, PlatformError, UnknownOutcome

from . import metrics, writeback
from .approval import ApprovalPolicy
from .errors import RepairError
from .ledger import CONSUMER, LedgerEntry, entry_by_setl_id, insert_entry
from .ledger import correct_entry as _correct_entry
from .ledger import void_entry as _void_entry
from .mobile import MOBILE_CLASSES, apply_mobile_difference, is_mobile, plan_mobile_difference
from .plans import Plan, RepairContext, plan_repair
from .runs import DifferenceRecord, difference, update_difference
from .truth import PlatformEntry, call_for, query_entry

__all__ = ["RepairDeps", "plan_difference", "apply_difference", "mobile_paid", "MOBILE_RUN"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how far back the call log is searched for the message that booked a platform-only entry
CALL_LOG_DAYS = 62



class NoIdentity(RepairError):
    """The difference lacks psn_no or mdtrt_id: the platform cannot be asked about it."""

    code = "recon_no_identity"


class Platform(Protocol):
    async def call(self, infno: str, input: Any, **kw: Any) -> Any: ...  # noqa: A002
    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any: ...
    async def allocate_msgid(self) -> str: ...


@dataclass
class RepairDeps:
    db: Callable[[Callable[[Connection], Any]], Awaitable[Any]]
    client: Platform
    policy: ApprovalPolicy
    context: Callable[[], RepairContext]
    prefix: str = ""
    timeout_s: float = 120.0
    #: how the platform words "no such record" and "reversed already" (the catalog's wording lists)
    absent_markers: tuple[str, ...] = ()
    already_reversed_markers: tuple[str, ...] = ()
    #: the mobile-pay reconciliation's platform (yibao.reconciliation.mobile.MobileDeps); None: not configured
    mobile: Any = None

    async def platform(self, awaitable: Awaitable[T]) -> T:
        return await asyncio.wait_for(awaitable, self.timeout_s)


def _send(conn: Connection, result: HisResult, prefix: str) -> None:
    """The HisResult into the outbox, and into our own inbox so it is not booked again when it comes back."""
    first_time(conn, CONSUMER, result.message_id)
    enqueue(conn, producer=writeback.SERVICE, topic=topic("his_results", prefix), key=result.his_visit_id,
            value=result.to_json(), headers={"type": result.kind, "reason_code": result.reason_code or ""})


async def _truth(deps: RepairDeps, diff: DifferenceRecord, local: Any) -> tuple[PlatformEntry | None,
                                                                                  PlatformEntry | None]:
    mdtrt_id = diff.mdtrt_id or (local.mdtrt_id if local is not None else None)
    psn_no = diff.psn_no or (local.psn_no if local is not None else None)
    if not mdtrt_id or not psn_no:
        raise NoIdentity("psn_no or mdtrt_id unknown: 5203 cannot be asked")
    truth = await deps.platform(query_entry(deps.client, setl_id=diff.setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no,
                                            insuplc_admdvs=diff.setl_optins, markers=deps.absent_markers))
    cancellation = None
    if (diff.diff_class == "status_mismatch" and truth is not None and not truth.active
            and truth.cancel_setl_id):
        cancellation = await deps.platform(query_entry(
            deps.client, setl_id=truth.cancel_setl_id, mdtrt_id=mdtrt_id, psn_no=psn_no,
            insuplc_admdvs=diff.setl_optins, markers=deps.absent_markers))
    return truth, cancellation


#: the national run's "repair" of a difference of a mobile-paid settlement: none of its own — reported as the
#: mobile-pay reconciliation's (which finds and repairs it in its own classes), so it is never repaired twice
MOBILE_RUN = "mobile_run"
#: the mobile-pay platform's transactions: a platform entry one of them booked is a mobile-pay order's
MOBILE_INFNOS = frozenset({"6201", "6202", "6203", "6301", "6401"})


def mobile_paid(conn: Connection, local: LedgerEntry | None) -> LedgerEntry | None:
    """The mobile-pay settlement behind HIS's ledger entry ``local``: the entry itself when it is a mobile-pay one,
    or the settlement it refunds when that is (a refund booked by hand at the counter, on the national channel, of a
    settlement paid through mobile pay); None for everything else."""
    if local is None:
        return None
    if is_mobile(local.channel):
        return local
    if local.refd_setl_flag == "1" and local.orig_setl_id:
        original = entry_by_setl_id(conn, local.orig_setl_id)
        if original is not None and is_mobile(original.channel):
            return original
    return None


def _left_to_mobile(what: str, entry: PlatformEntry | None = None) -> Plan:
    return Plan(MOBILE_RUN, f"{what}: it belongs to the mobile-pay reconciliation, which finds and repairs it (run "
                            "it for this day); no national repair", entry=entry)


def _mobile_what(diff: DifferenceRecord, paid: LedgerEntry | None) -> str:
    if paid is not None and paid.setl_id != diff.setl_id:
        return (f"a refund HIS booked ({diff.channel}) of settlement {paid.setl_id}, paid through mobile pay "
                f"({paid.channel})")
    return f"a mobile-pay settlement ({paid.channel if paid is not None else diff.channel})"


async def _plan(deps: RepairDeps, diff: DifferenceRecord) -> tuple[Plan, Any]:
    def read(conn: Connection) -> tuple[LedgerEntry | None, LedgerEntry | None]:
        entry = entry_by_setl_id(conn, diff.setl_id)
        return entry, mobile_paid(conn, entry)

    entry, paid = await deps.db(read)
    local = entry if entry is not None and entry.status == "booked" else None
    if paid is not None or is_mobile(diff.channel):  # the mobile run's, whatever 5203 says
        try:  # the platform's amounts, for the report only
            truth, _ = await _truth(deps, diff, local)
        except (PlatformError, YibaoError, asyncio.TimeoutError):
            truth = None
        return _left_to_mobile(_mobile_what(diff, paid), truth), local
    truth, cancellation = await _truth(deps, diff, local)
    call = None
    if diff.diff_class == "platform_only":  # only there does the fate of our own call decide the repair
        msgid = diff.msgid or (truth.msgid if truth is not None else None)
        mdtrt_id = diff.mdtrt_id or (truth.mdtrt_id if truth is not None else None)
        since = clock.now() - _dt.timedelta(days=CALL_LOG_DAYS)
        call = await deps.db(lambda conn: call_for(conn, msgid=msgid, mdtrt_id=mdtrt_id, since=since))
    # a call's service is the deployment's scoped name (<topic prefix>mobilepay); a mobile-pay call made by the
    # mobile run's own repair (a 6203 whose answer it still awaits) is logged under reconciliation's name
    if call is not None and (call.service.endswith("mobilepay") or call.infno in MOBILE_INFNOS):
        return _left_to_mobile(f"the platform's entry of a mobile-pay order ({call.infno})", truth), local
    plan = plan_repair(diff, local=local, truth=truth, cancellation=cancellation, call=call, ctx=deps.context())
    return plan, local


def _platform_amounts(plan: Plan) -> dict[str, Decimal]:
    if plan.entry is None:
        return {}
    return {"plat_medfee_sumamt": plan.entry.medfee_sumamt, "plat_fund_pay_sumamt": plan.entry.fund_pay_sumamt,
            "plat_acct_pay": plan.entry.acct_pay}


def _status_for(deps: RepairDeps, diff: DifferenceRecord, plan: Plan) -> str:
    if plan.action in ("none", MOBILE_RUN):
        return "resolved"
    if plan.action == "manual":
        return "manual"
    return "pending_approval" if deps.policy.needs_approval(diff.diff_class, plan.action, plan.amount) \
        else "approved"


def _fail_reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "the platform did not answer in time"
    return mask_text(str(exc)) if isinstance(exc, YibaoError) else f"{type(exc).__name__}"


async def plan_difference(deps: RepairDeps, diff: DifferenceRecord) -> str:
    """Decide and record the repair of an ``open`` difference; its new status."""
    if diff.diff_class in MOBILE_CLASSES:
        return await plan_mobile_difference(deps, diff)
    try:
        plan, _local = await _plan(deps, diff)
    except NoIdentity as exc:
        plan = Plan("manual", f"{exc}: handle by hand")
    except (PlatformError, YibaoError, asyncio.TimeoutError) as exc:
        reason = f"truth unknown (5203): {_fail_reason(exc)}; planned again at the next approval or run"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"open"}, outcome=reason))
        metrics.REPAIRS.labels(diff.diff_class, "unplanned", "failed").inc()
        return "open"
    status = _status_for(deps, diff, plan)
    needs = status == "pending_approval"
    now = clock.now()
    run_id, diff_id, his_visit = diff.run_id, diff.id, diff.his_visit_id or plan.his_visit_id

    def record(conn: Connection) -> None:
        values: dict[str, Any] = dict(action=plan.action, amount=plan.amount, needs_approval=needs, status=status,
                                      outcome=plan.reason, **_platform_amounts(plan))
        if status == "approved":
            values.update(approved_by="auto", approved_at=now,
                          approval_reason="within the automatic approval policy")
        if status in ("resolved",):
            values["resolved_at"] = now
        if plan.his_visit_id and not diff.his_visit_id:
            values["his_visit_id"] = plan.his_visit_id
        if not update_difference(conn, diff_id, expect={"open"}, **values):
            return
        if status == "manual" and his_visit:
            _send(conn, writeback.manual_result(his_visit_id=his_visit, clr_type=diff.clr_type,
                                                setl_id=diff.setl_id, reason=plan.reason, run_id=run_id,
                                                difference_id=diff_id), deps.prefix)

    await deps.db(record)
    metrics.REPAIRS.labels(diff.diff_class, plan.action, status).inc()
    return status


# --- applying ----------------------------------------------------------------------------------------------


def _done(conn: Connection, diff: DifferenceRecord, outcome: str, *, expect: set[str]) -> bool:
    return update_difference(conn, diff.id, expect=expect, status="repaired", outcome=outcome,
                             resolved_at=clock.now())


def _apply_in_db(deps: RepairDeps, diff: DifferenceRecord, plan: Plan, conn: Connection) -> str:
    """The database-only repairs, in the caller's transaction. Returns the new status (unchanged: lost race)."""
    expect = {"approved"}
    if plan.action == "adopt":
        assert plan.entry is not None and plan.his_visit_id
        result = writeback.adopted(plan.entry, his_visit_id=plan.his_visit_id, run_id=diff.run_id,
                                   difference_id=diff.id)
        if not _done(conn, diff, f"booked in HIS for visit {plan.his_visit_id}", expect=expect):
            return diff.status
        if insert_entry(conn, writeback.ledger_entry_of(plan.entry, his_visit_id=plan.his_visit_id,
                                                        message_id=result.message_id)):
            _send(conn, result, deps.prefix)
        return "repaired"
    local = entry_by_setl_id(conn, diff.setl_id)
    if local is None or local.status != "booked":
        update_difference(conn, diff.id, expect=expect, status="manual",
                          outcome="the hospital ledger entry changed since planning")
        return "manual"
    if plan.action == "adopt_cancellation":
        assert plan.cancellation is not None
        result = writeback.cancellation_adopted(plan.cancellation, local, run_id=diff.run_id,
                                                difference_id=diff.id)
        if not _done(conn, diff, f"cancellation {plan.cancellation.setl_id} booked in HIS", expect=expect):
            return diff.status
        if insert_entry(conn, writeback.ledger_entry_of(plan.cancellation, his_visit_id=local.his_visit_id,
                                                        message_id=result.message_id, orig_setl_id=local.setl_id)):
            _send(conn, result, deps.prefix)
        return "repaired"
    if plan.action == "void":
        result = writeback.voided(local, run_id=diff.run_id, difference_id=diff.id)
        if not _done(conn, diff, "voided in HIS (the platform has no such entry)", expect=expect):
            return diff.status
        _void_entry(conn, local.setl_id)
        _send(conn, result, deps.prefix)
        return "repaired"
    if plan.action == "correct":
        assert plan.entry is not None
        result = writeback.corrected(local, plan.entry, run_id=diff.run_id, difference_id=diff.id)
        if not _done(conn, diff, "HIS amounts corrected to the platform's", expect=expect):
            return diff.status
        _correct_entry(conn, local, plan.entry.amounts(), plan.entry.split or None)
        _send(conn, result, deps.prefix)
        return "repaired"
    raise AssertionError(plan.action)


async def _reverse(deps: RepairDeps, diff: DifferenceRecord, plan: Plan) -> str:
    assert plan.entry is not None and plan.omsgid and plan.oinfno
    msgid = await deps.client.allocate_msgid()
    claimed = await deps.db(lambda conn: update_difference(
        conn, diff.id, expect={"approved", "applying"}, status="applying", repair_msgid=msgid,
        outcome=f"2601 sent (msgid {msgid})"))
    if not claimed:
        return diff.status
    try:
        await deps.platform(deps.client.reverse(plan.entry.psn_no, plan.omsgid, plan.oinfno,
                                                insuplc_admdvs=diff.setl_optins or None, msgid=msgid,
                                                visit_key=plan.his_visit_id))
        outcome = f"冲正 2601 done (msgid {msgid}) of {plan.oinfno} {plan.omsgid}"
    except BusinessRejection as exc:
        if any(m in (exc.err_msg or "").lower() for m in deps.already_reversed_markers):
            outcome = f"already reversed on the platform ({mask_text(exc.err_msg)})"
        else:
            reason = f"2601 refused: {mask_text(exc.err_msg)}; handle by hand"
            await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, status="manual",
                                                         outcome=reason))
            return "manual"
    except (UnknownOutcome, PlatformError, asyncio.TimeoutError) as exc:
        reason = f"2601 outcome unknown ({_fail_reason(exc)}): re-checked (5203) at the next attempt"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"applying"}, outcome=reason))
        return "applying"

    def finish(conn: Connection) -> str:
        if not update_difference(conn, diff.id, expect={"applying"}, status="repaired", outcome=outcome,
                                 resolved_at=clock.now()):
            return diff.status
        if plan.his_visit_id:
            _send(conn, writeback.reversed_result(his_visit_id=plan.his_visit_id, clr_type=diff.clr_type,
                                                  oinfno=plan.oinfno or "", omsgid=plan.omsgid or "",
                                                  mdtrt_id=plan.entry.mdtrt_id if plan.entry else None,
                                                  psn_no=plan.entry.psn_no if plan.entry else None,
                                                  run_id=diff.run_id, difference_id=diff.id), deps.prefix)
        return "repaired"

    return await deps.db(finish)


async def apply_difference(deps: RepairDeps, difference_id: int) -> str:
    """Apply the repair of an ``approved`` (or ``applying``) difference; its new status. Never raises for
    platform trouble: the difference keeps a status and an outcome saying what happened."""
    diff = await deps.db(lambda conn: difference(conn, difference_id))
    if diff is None or diff.status not in ("approved", "applying"):
        return diff.status if diff is not None else "missing"
    if diff.diff_class in MOBILE_CLASSES:
        return await apply_mobile_difference(deps, difference_id)
    try:
        plan, _local = await _plan(deps, diff)
    except (PlatformError, YibaoError, asyncio.TimeoutError) as exc:
        reason = f"not applied: truth unknown (5203): {_fail_reason(exc)}; will be tried again"
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={diff.status}, outcome=reason))
        metrics.REPAIRS.labels(diff.diff_class, diff.action or "unknown", "failed").inc()
        return diff.status
    if diff.status == "applying" and (plan.entry is None or plan.action == "none"):
        await deps.db(lambda conn: _done(conn, diff, "the reversal took effect (the entry is gone)",
                                         expect={"applying"}))
        metrics.REPAIRS.labels(diff.diff_class, "reverse", "repaired").inc()
        return "repaired"
    if plan.action in ("none", MOBILE_RUN):  # MOBILE_RUN: an approval of a national repair never applies to it
        await deps.db(lambda conn: update_difference(conn, diff.id, expect={"approved"}, status="resolved",
                                                     action=plan.action, outcome=plan.reason,
                                                     resolved_at=clock.now()))
        metrics.REPAIRS.labels(diff.diff_class, plan.action, "resolved").inc()
        return "resolved"
    if plan.action != diff.action:
        status = _status_for(deps, diff, plan)
        if status == "approved":
            status = "pending_approval"  # an approval was for another action: finance decides again
        if plan.action == "manual":
            status = "manual"
        reason = f"the platform changed since the approval ({diff.action} → {plan.action}): {plan.reason}"
        await deps.db(lambda conn: update_difference(
            conn, diff.id, expect={"approved", "applying"}, status=status, action=plan.action, amount=plan.amount,
            needs_approval=status == "pending_approval", outcome=reason, **_platform_amounts(plan)))
        metrics.REPAIRS.labels(diff.diff_class, plan.action, status).inc()
        return status
    if plan.action == "reverse":
        status = await _reverse(deps, diff, plan)
    else:
        status = await deps.db(lambda conn: _apply_in_db(deps, diff, plan, conn))
    metrics.REPAIRS.labels(diff.diff_class, plan.action, status).inc()
    log.info("repair applied", extra={"fields": {"run_id": diff.run_id, "difference_id": diff.id,
                                                 "class": diff.diff_class, "action": plan.action,
                                                 "status": status}})
    return status
