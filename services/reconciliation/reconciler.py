"""A reconciliation run from start to end, and the approvals that finish it.

:meth:`Reconciler.submit` creates the run (``running`` with its days locked, or ``refused``);
:meth:`Reconciler.execute` does the work and always ends the run in a final state:

1. 3201 for every key (ledger keys plus configured ones, narrowed by the filters) with the ledger's totals;
2. all balanced → ``balanced``; else for each imbalanced clr_type × setl_optins: the detail file (9101), 3202,
   the result file (9102), parsed and classified. The differences of every group are stored together, after
   the last file was read — a run that fails half-way stores none (``failed``, with the reason);
3. each difference gets its repair planned (5203 …) and, when approved by the policy, applied;
4. when no difference is left open, 3201 again for the imbalanced keys (``recheck``): balanced →
   ``repaired_and_balanced``; otherwise ``differences_found`` with what is left (approvals, manual work).

:meth:`Reconciler.approve` records finance's approval (who, when, why) of pending repairs, applies them and
concludes the run again (so it can become ``repaired_and_balanced``); :meth:`Reconciler.reject` records a
refusal (the difference goes to manual handling). Reports are rewritten at every conclusion.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from yibao.core import clock
from yibao.core.errors import YibaoError
from yibao.core.privacy import mask_text
from yibao.envelope.errors import FileTransferError, PlatformError, UnknownOutcome

from . import audit, metrics
from .approval import ApprovalPolicy
from .audit import Actor
from .auth import check_four_eyes
from .classify import classify
from .detail_file import detail_columns, detail_filename, detail_format
from .errors import ApprovalError, ReconciliationError, RunBusy, RunNotFound
from .ledger import detail_zip, ledger_keys, ledger_totals, local_sides, optins_seen
from .models import RunRequest
from .plans import RepairContext
from .repairs import RepairDeps, apply_difference, plan_difference
from .reports import ReportFiles, RunReport, write_reports
from .result_file import ResultSummary, read_result_file, result_columns
from .mobile import (MobileDeps, bills_of, cash_only_hand_refunds, classify_bill, classify_cash_only_refunds,
                     classify_orders, hand_refunds_of_period, mobile_entries, order_ref, order_ref_by_settlement,
                     orders_of_period, refunds_sent, views_of, wechat_orders_of, wechat_refunds_sent)
from .runs import (
    MOBILE_SINGLE_SIDED,
    OPEN_STATUSES,
    RunRecord,
    create_run,
    differences_of,
    finish_run,
    get_run,
    new_run_id,
    release_days,
    save_differences,
    save_statement,
    set_progress,
    single_sided_open,
    statements_of,
    take_days,
    update_difference,
)
from .settings import ReconciliationSettings
from .statement import StatementKey, Totals, input_3201, keys_to_ask, period_bounds, statement_flags
from .truth import optins_of_calls

__all__ = ["Reconciler", "Platform", "PROGRESS_EVERY"]

#: a progress event every this many items of a step (plus one per step change and at the end)
PROGRESS_EVERY = 50

log = logging.getLogger(__name__)
T = TypeVar("T")


class Platform(Protocol):
    """What a run needs of :class:`yibao.envelope.client.NationalClient`."""

    async def call(self, infno: str, input: Any, **kw: Any) -> Any: ...  # noqa: A002
    async def upload(self, content: bytes, filename: str, **kw: Any) -> Any: ...
    async def download(self, file_qury_no: str, filename: str, **kw: Any) -> bytes: ...
    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any: ...
    async def allocate_msgid(self) -> str: ...


class _RunFailed(ReconciliationError):
    pass


@dataclass
class _Group:
    clr_type: str
    setl_optins: str


def _stmt(output: Any, infno: str) -> tuple[str, str | None]:
    info = output.get("stmtinfo") if isinstance(output, dict) else None
    if not isinstance(info, dict) or info.get("stmt_rslt") in (None, ""):
        raise _RunFailed(f"{infno} answer has no stmtinfo.stmt_rslt")
    return str(info["stmt_rslt"]), (str(info.get("stmt_rslt_dscr")) if info.get("stmt_rslt_dscr") else None)


class Reconciler:
    def __init__(self, engine: Engine, client: Platform, settings: ReconciliationSettings, *,
                 default_optins: str | None = None, catalog: Any = None,
                 on_commit: Callable[[], None] | None = None, mobile: MobileDeps | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.optins = list(settings.setl_optins) or ([default_optins] if default_optins else [])
        if catalog is None:
            from yibao.envelope.catalog import Catalog

            catalog = Catalog.load()
        self.catalog = catalog
        self.detail_columns = detail_columns(catalog)
        self.detail_format = detail_format(catalog)  # null or empty, final newline: the province's
        self.result_columns = result_columns(catalog)
        self.on_commit = on_commit
        self.policy = ApprovalPolicy.of(settings.auto_approve_classes, settings.auto_approve_max_amount)
        self.deps = RepairDeps(db=self.db, client=client, policy=self.policy, context=self._repair_context,
                               prefix=self.prefix, timeout_s=settings.platform_call_timeout_s,
                               absent_markers=catalog.wording("not_found"),
                               already_reversed_markers=catalog.wording("already_reversed"), mobile=mobile)
        self.mobile = mobile
        self.reversible = frozenset(settings.reversible_infnos if settings.reversible_infnos is not None
                                    else (t.infno for t in catalog if t.reversible))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_step: dict[str, str] = {}

    # --- plumbing ----------------------------------------------------------------------------------------

    async def db(self, fn: Callable[[Connection], T]) -> T:
        def unit() -> T:
            with self.engine.begin() as conn:
                return fn(conn)

        result = await asyncio.to_thread(unit)
        if self.on_commit is not None:
            self.on_commit()
        return result

    def _repair_context(self) -> RepairContext:
        return RepairContext(today=clock.today(), reversible_infnos=self.reversible,
                             same_day_only=self.settings.reversal_same_day_only)

    async def _platform(self, what: str, awaitable: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.settings.platform_call_timeout_s)
        except asyncio.TimeoutError:
            raise _RunFailed(f"{what} did not answer within {self.settings.platform_call_timeout_s:g} s") from None
        except UnknownOutcome as exc:
            raise _RunFailed(f"{what} never returned (outcome unknown, msgid {exc.msgid}): {exc.detail}") from None
        except FileTransferError as exc:
            raise _RunFailed(f"{what}: {mask_text(str(exc))}") from None
        except PlatformError as exc:
            raise _RunFailed(f"{what}: {mask_text(str(exc))}") from None

    async def _progress(self, run_id: str, step: str, done: int, total: int) -> None:
        """Heartbeat and progress in the run row; an event on the results topic when the step changes, every
        ``PROGRESS_EVERY`` items and at the end of a step (a day with thousands of differences stays readable)."""
        publish = (self._last_step.get(run_id) != step or done >= total or done % PROGRESS_EVERY == 0)
        self._last_step[run_id] = step
        await self.db(lambda conn: set_progress(conn, run_id, step=step, done=done, total=total,
                                                prefix=self.prefix, publish=publish))

    # --- runs ----------------------------------------------------------------------------------------------

    async def submit(self, request: RunRequest, *, run_id: str | None = None,
                     actor: Actor | None = None) -> RunRecord:
        """Create the run: ``running`` with its days locked, or ``refused``. Idempotent for a given run id.
        With ``actor``, the audit row of the trigger is written in the same transaction."""
        rid = run_id or new_run_id()

        def create(conn: Connection) -> tuple[RunRecord, bool]:
            run, created = create_run(conn, rid, request, stale_after_s=self.settings.run_stale_after_s,
                                      prefix=self.prefix)
            if actor is not None and created:
                audit.record(conn, actor, "trigger", "refused" if run.state == "refused" else "ok",
                             run_id=run.run_id, detail=f"{request.date_from}~{request.date_to}"
                             + (f" insutype {request.insutype}" if request.insutype else "")
                             + (f" clr_type {request.clr_type}" if request.clr_type else "")
                             + (f": {run.message}" if run.state == "refused" else ""))
            return run, created

        run, created = await self.db(create)
        if created and run.state == "refused":
            metrics.RUNS.labels("refused").inc()
            await self._reports(run.run_id)
        return run

    async def run(self, request: RunRequest, *, run_id: str | None = None, actor: Actor | None = None) -> RunRecord:
        """Submit and execute to the end (the CLI's way)."""
        run = await self.submit(request, run_id=run_id, actor=actor)
        if run.state != "running":
            return run
        return await self.execute(run.run_id)

    def start(self, request: RunRequest, *, run_id: str | None = None,
              actor: Actor | None = None) -> Awaitable[RunRecord]:
        """Submit now; execute in the background (the worker's way). Returns the submitted run."""

        async def go() -> RunRecord:
            run = await self.submit(request, run_id=run_id, actor=actor)
            if run.state == "running":
                task = asyncio.create_task(self.execute(run.run_id), name=f"recon-{run.run_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return run

        return go()

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def execute(self, run_id: str) -> RunRecord:
        run = await self.db(lambda conn: get_run(conn, run_id))
        if run is None:
            raise RunNotFound(f"no run {run_id}")
        if run.state != "running":
            return run
        try:
            return await self._execute(run)
        except Exception as exc:  # noqa: BLE001 - every run ends in a final state
            reason = mask_text(str(exc)) if isinstance(exc, YibaoError) else f"internal error: {type(exc).__name__}"
            if not isinstance(exc, YibaoError):
                log.exception("reconciliation run failed", extra={"fields": {"run_id": run_id}})
            recorded = await self.db(lambda conn: differences_of(conn, run_id))
            if not recorded:
                tail = "no difference was recorded and nothing was repaired; run it again once the cause is fixed"
            else:
                tail = ("the differences found and every repair applied so far are recorded on them; approve or "
                        "run again to finish")
            return await self._finish(run_id, "failed", f"failed: {reason}; {tail}")

    async def _statements(self, run: RunRecord, keys: Sequence[StatementKey], *, phase: str,
                          step_base: int = 0, total: int | None = None) -> list[StatementKey]:
        """3201 for the keys (each flag of the statement mode); the keys that did not balance."""
        flags = statement_flags(self.settings.statement_mode)
        totals = {flag: await self.db(lambda conn, f=flag: ledger_totals(conn, run.date_from, run.date_to, f))
                  for flag in flags}
        unbalanced: list[StatementKey] = []
        done = step_base
        total = total if total is not None else len(keys) * len(flags)
        for key in keys:
            balanced = True
            for flag in flags:
                sums = totals[flag].get(key, Totals())
                response = await self._platform(
                    f"3201 {key.label()}", self.client.call("3201", input_3201(key, sums, run.date_from, run.date_to,
                                                                              flag)))
                result, dscr = _stmt(getattr(response, "output", response), "3201")
                balanced = balanced and result == "0"
                await self.db(lambda conn, k=key, f=flag, s=sums, r=result, d=dscr: save_statement(
                    conn, run.run_id, phase=phase, key=k, refd_setl_flag=f, totals=s, stmt_rslt=r, stmt_rslt_dscr=d))
                done += 1
                await self._progress(run.run_id, f"3201 {phase}", done, total)
            if not balanced:
                unbalanced.append(key)
        return unbalanced

    async def _detail(self, run: RunRecord, group: _Group) -> ResultSummary:
        name = detail_filename(group.clr_type, group.setl_optins, run.date_from.isoformat(), run.date_to.isoformat())

        def build() -> Any:
            with self.engine.connect() as conn:
                return detail_zip(conn, run.date_from, run.date_to, clr_type=group.clr_type,
                                  setl_optins=group.setl_optins, filename=name, columns=self.detail_columns,
                                  fmt=self.detail_format)

        detail = await asyncio.to_thread(build)
        where = f"{group.clr_type}/{group.setl_optins}"
        uploaded = await self._platform(f"9101 upload of the detail file {where}",
                                        self.client.upload(detail.content, detail.filename))
        response = await self._platform(f"3202 {where}", self.client.call("3202", {"data": {
            "setl_optins": group.setl_optins, "file_qury_no": uploaded.file_qury_no,
            "stmt_begndate": clock.format_date(run.date_from), "stmt_enddate": clock.format_date(run.date_to),
            "medfee_sumamt": detail.medfee_sumamt, "fund_pay_sumamt": detail.fund_pay_sumamt,
            "cash_payamt": detail.cash_payamt, "fixmedins_setl_cnt": detail.count, "clr_type": group.clr_type,
            "refd_setl_flag": "",
        }}))
        output = getattr(response, "output", response)
        info = output.get("fileinfo") if isinstance(output, dict) else None
        if not isinstance(info, dict) or not info.get("file_qury_no"):
            raise _RunFailed(f"3202 {where}: the answer has no fileinfo.file_qury_no")
        data = await self._platform(f"9102 download of the 3202 result {where}", self.client.download(
            str(info["file_qury_no"]), str(info.get("filename") or "")))
        try:
            return await asyncio.to_thread(read_result_file, data, row_codes=self.settings.row_codes,
                                           columns=self.result_columns)
        except ReconciliationError as exc:
            raise _RunFailed(f"3202 result {where}: {exc}") from None

    async def _execute(self, run: RunRecord) -> RunRecord:
        if run.scope == "mobile":
            return await self._execute_mobile(run)
        s = self.settings
        known = await self.db(lambda conn: ledger_keys(conn, run.date_from, run.date_to))
        optins = set(self.optins) | await self.db(self._optins_hints(run))
        keys = keys_to_ask(known, insutypes=s.insutypes, clr_types=s.clr_types, setl_optins=sorted(optins),
                           insutype=run.insutype, clr_type=run.clr_type)
        if not keys:
            return await self._finish(run.run_id, "balanced", "nothing to reconcile: no statement key (the ledger "
                                      "is empty and no insutype/clr_type/setl_optins is configured)")
        unbalanced = await self._statements(run, keys, phase="initial")
        entries = sum(t.count for t in (await self.db(
            lambda conn: ledger_totals(conn, run.date_from, run.date_to))).values())
        if not unbalanced:
            what = "a period with no data: 0 entries on both sides" if entries == 0 else f"{entries} entries"
            return await self._finish(run.run_id, "balanced", f"balanced: 3201 agrees for {len(keys)} keys ({what})")
        groups = [_Group(c, o) for c, o in sorted({(k.clr_type, k.setl_optins) for k in unbalanced})]
        found = []
        for i, group in enumerate(groups, start=1):
            summary = await self._detail(run, group)
            diffs = await asyncio.to_thread(classify, summary.differences, self._lookup, clr_type=group.clr_type,
                                            setl_optins=group.setl_optins)
            found.extend(diffs)
            await self._progress(run.run_id, "3202", i, len(groups))
        await self.db(lambda conn: save_differences(conn, run.run_id, found))
        for d in found:
            metrics.DIFFERENCES.labels(d.diff_class).inc()
        await self._repair(run.run_id, plan=True, apply=s.apply_repairs_in_run)
        return await self._conclude(run.run_id, unbalanced)

    async def _execute_mobile(self, run: RunRecord) -> RunRecord:
        """The mobile-pay orders of the period against HIS's mobile ledger (yibao.reconciliation.mobile)."""
        if self.mobile is None:
            return await self._finish(run.run_id, "failed", "failed: mobile pay is not configured in reconciliation "
                                      "(YIBAO_MP_PRIVATE_KEY, YIBAO_MP_PLATFORM_PUBLIC_KEY …)")
        back = _dt.timedelta(days=max(0, self.settings.mobile_lookback_days))
        start, _ = period_bounds(run.date_from - back, run.date_from)
        _, end = period_bounds(run.date_to, run.date_to)
        refs = await self.db(lambda conn: orders_of_period(conn, start, end))
        await self._progress(run.run_id, "6301", 0, len(refs))
        try:
            views = await views_of(self.mobile, refs, timeout_s=self.settings.platform_call_timeout_s)
        except (PlatformError, asyncio.TimeoutError) as exc:
            raise _RunFailed(f"6301 of the period's orders: {type(exc).__name__}: {mask_text(str(exc))}") from None
        await self._progress(run.run_id, "6301", len(refs), len(refs))
        entries = await self.db(mobile_entries)
        sent = await self.db(refunds_sent)
        more, more_views = await self._hand_refund_orders(run, entries, sent, views)
        refs, views = [*refs, *more], {**views, **more_views}
        found = classify_orders(refs, views, entries, date_from=run.date_from, date_to=run.date_to, sent=sent)
        if self.mobile.wechat is not None:
            found += await self._wechat_bill(run, views, entries, start, end, hand_sent=sent)
        await self.db(lambda conn: save_differences(conn, run.run_id, found))
        for d in found:
            metrics.DIFFERENCES.labels(d.diff_class).inc()
        if not found:
            return await self._finish(run.run_id, "balanced", f"balanced: {len(refs)} mobile-pay orders agree with "
                                      "HIS")
        await self._repair(run.run_id, plan=True, apply=self.settings.apply_repairs_in_run)
        return await self._conclude(run.run_id)

    async def _hand_refund_orders(self, run: RunRecord, entries: Sequence[Any], sent: set[str],
                                  views: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """6301 of the orders behind HIS's hand-booked refunds of the period that were paid before the period's call
        log (yibao.reconciliation.mobile.mp_refund_only_in_his)."""
        assert self.mobile is not None
        hand = hand_refunds_of_period(entries, sent, date_from=run.date_from, date_to=run.date_to)
        settlements = {e.setl_id: e for e in entries if e.refd_setl_flag == "0"}
        known = {v.hi_doc_sn for v in views.values() if getattr(v, "hi_doc_sn", None)}
        originals = [settlements[e.orig_setl_id] for e in hand if e.orig_setl_id in settlements
                     and e.orig_setl_id not in known]
        refs = [ref for ref in [await self.db(lambda conn, o=o: order_ref_by_settlement(conn, o)) for o in originals]
                if ref is not None and ref.pay_ord_id not in views]
        refs = list({ref.pay_ord_id: ref for ref in refs}.values())
        try:
            return refs, (await views_of(self.mobile, refs, timeout_s=self.settings.platform_call_timeout_s)
                          if refs else {})
        except (PlatformError, asyncio.TimeoutError) as exc:
            raise _RunFailed(f"6301 of the orders of HIS's refunds: {type(exc).__name__}: {mask_text(str(exc))}") \
                from None

    async def _wechat_bill(self, run: RunRecord, views: dict[str, Any], entries: Sequence[Any],
                           start: _dt.datetime, end: _dt.datetime, *, hand_sent: set[str] | None = None) -> list[Any]:
        """WeChat Pay's bills of the period (8806) against HIS's ledger (yibao.reconciliation.mobile.classify_bill):
        payments and refunds; an order a bill names beyond the period's call log is asked with 6301 too, and the
        refunds the bridge sent to WeChat Pay from ``start`` (the lookback) to ``end`` are looked for on the bills.
        HIS's hand-booked refunds of WeChat CASH_ONLY orders (``hand_sent``: the refund ids the bridge sent, which
        are not hand-booked) are checked with WeChat's 查询订单 (8803): mp_cash_refund_only_in_his."""
        assert self.mobile is not None
        await self._progress(run.run_id, "8806", 0, 1)
        try:
            bill = await bills_of(self.mobile.wechat, run.date_from, run.date_to)
            missing = sorted({r.pay_ord_id for r in bill if r.pay_ord_id and r.pay_ord_id not in views})
            more = [ref for ref in [await self.db(lambda conn, p=p: order_ref(conn, p)) for p in missing]
                    if ref is not None]
            views = {**views, **await views_of(self.mobile, more, timeout_s=self.settings.platform_call_timeout_s)}
        except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
            raise _RunFailed(f"WeChat Pay's bill (8806): {type(exc).__name__}: {mask_text(str(exc))}") from None
        hand = cash_only_hand_refunds(entries, hand_sent if hand_sent is not None else set(),
                                      date_from=run.date_from, date_to=run.date_to)
        try:
            orders = await wechat_orders_of(self.mobile.wechat, [o.setl_id for _, o in hand],
                                            timeout_s=self.settings.platform_call_timeout_s) if hand else {}
        except (PlatformError, ReconciliationError, asyncio.TimeoutError) as exc:
            raise _RunFailed(f"WeChat Pay's 查询订单 (8803) of HIS's hand refunds: {type(exc).__name__}: "
                             f"{mask_text(str(exc))}") from None
        await self._progress(run.run_id, "8806", 1, 1)
        sent = await self.db(lambda conn: wechat_refunds_sent(conn, start, end))
        return [*classify_bill(bill, views, entries, sent, date_from=run.date_from, date_to=run.date_to),
                *classify_cash_only_refunds(hand, orders, bill)]

    def _optins_hints(self, run: RunRecord) -> Callable[[Connection], set[str]]:
        """清算经办机构 worth asking besides the period's ledger: the ledger's recent ones, our calls' answers."""

        def hints(conn: Connection) -> set[str]:
            since = run.date_from - _dt.timedelta(days=max(0, self.settings.optins_lookback_days))
            start, end = period_bounds(run.date_from, run.date_to)
            return optins_seen(conn, since, run.date_to) | optins_of_calls(conn, start, end)

        return hints

    def _lookup(self, setl_ids: Sequence[str]) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return local_sides(conn, setl_ids)

    async def _repair(self, run_id: str, *, plan: bool, apply: bool, ids: Iterable[int] | None = None) -> None:
        diffs = await self.db(lambda conn: differences_of(conn, run_id, ids=ids))
        if plan:
            todo = [d for d in diffs if d.status == "open"]
            for i, d in enumerate(todo, start=1):
                await plan_difference(self.deps, d)
                await self._progress(run_id, "plan repairs", i, len(todo))
        if apply:
            diffs = await self.db(lambda conn: differences_of(conn, run_id, statuses=("approved", "applying"),
                                                             ids=ids))
            for i, d in enumerate(diffs, start=1):
                await apply_difference(self.deps, d.id)
                await self._progress(run_id, "apply repairs", i, len(diffs))

    async def _conclude(self, run_id: str, unbalanced: Sequence[StatementKey] | None = None) -> RunRecord:
        run = await self.db(lambda conn: get_run(conn, run_id))
        assert run is not None
        diffs = await self.db(lambda conn: differences_of(conn, run_id))
        if unbalanced is None and run.scope != "mobile":
            statements = await self.db(lambda conn: statements_of(conn, run_id, "initial"))
            unbalanced = sorted({s.key for s in statements if not s.balanced})
        open_ = [d for d in diffs if d.status in OPEN_STATUSES]
        if open_:
            pending = sum(d.status == "pending_approval" for d in open_)
            manual = sum(d.status in ("manual", "rejected") for d in open_)
            other = len(open_) - pending - manual
            fixed = sum(d.status in ("repaired", "resolved") for d in diffs)
            parts = [f"{len(diffs)} differences", f"{fixed} repaired"]
            if pending:
                parts.append(f"{pending} await finance approval (yibao recon approve {run_id})")
            if manual:
                parts.append(f"{manual} for manual handling")
            if other:
                parts.append(f"{other} not yet repaired (platform unavailable; approve or run again)")
            return await self._finish(run_id, "differences_found", "; ".join(parts))
        if run.scope == "mobile":
            if not diffs:
                return await self._finish(run_id, "balanced", "balanced: the mobile-pay orders agree with HIS")
            return await self._finish(run_id, "repaired_and_balanced", f"{len(diffs)} mobile-pay differences "
                                      "repaired")
        keys = list(unbalanced or [])
        still = await self._statements(run, keys, phase="recheck")
        if still:
            labels = ", ".join(k.label() for k in still)
            if not diffs:
                message = (f"3201 does not balance for {labels}, but 3202 found no differing entry: the totals "
                           "differ at insutype level — check with the platform")
            else:
                message = f"{len(diffs)} differences repaired, but the 3201 re-check still does not balance " \
                          f"for {labels}"
            return await self._finish(run_id, "differences_found", message)
        return await self._finish(run_id, "repaired_and_balanced",
                                  f"{len(diffs)} differences repaired; the 3201 re-check balances for "
                                  f"{len(keys)} keys")

    async def _finish(self, run_id: str, state: str, message: str) -> RunRecord:
        diffs = await self.db(lambda conn: differences_of(conn, run_id))
        summary = {"differences": len(diffs),
                   "by_class": {c: sum(d.diff_class == c for d in diffs) for c in sorted({d.diff_class for d in diffs})},
                   "by_status": {s: sum(d.status == s for d in diffs) for s in sorted({d.status for d in diffs})}}
        # the reports first, showing the final state: whoever sees the state final finds its reports
        await self._reports(run_id, final={"state": state, "message": message, "summary": summary,
                                           "step": "done", "finished_at": clock.now()})
        run = await self.db(lambda conn: finish_run(conn, run_id, state=state, message=message, summary=summary,
                                                    prefix=self.prefix))
        self._last_step.pop(run_id, None)
        metrics.RUNS.labels(state).inc()
        await self.refresh_gauges()
        log.info("reconciliation run ended", extra={"fields": {"run_id": run_id, "state": state}})
        return run

    async def refresh_gauges(self) -> None:
        count, oldest = await self.db(single_sided_open)
        metrics.set_single_sided(count, oldest)
        mobile, _ = await self.db(lambda conn: single_sided_open(conn, MOBILE_SINGLE_SIDED))
        metrics.set_mobile_single_sided(mobile)

    # --- approvals ---------------------------------------------------------------------------------------

    async def _decide(self, run_id: str, by: str, reason: str, ids: Iterable[int] | None, *,
                      approve: bool, actor: Actor | None = None) -> RunRecord:
        by, reason = (by or "").strip(), (reason or "").strip()
        if not by:
            raise ApprovalError("an approval needs the approver (by)")
        if not reason:
            raise ApprovalError("an approval needs a reason (why)")
        run = await self.db(lambda conn: get_run(conn, run_id))
        if run is None:
            raise RunNotFound(f"no run {run_id}")
        check_four_eyes(by, run.requested_by, run_id)
        if run.state == "running":
            raise RunBusy(f"run {run_id} is still running; decide when it has finished")
        id_list = list(ids) if ids is not None else None
        pending = await self.db(lambda conn: differences_of(conn, run_id, statuses=("pending_approval",),
                                                            ids=id_list))
        retry = await self.db(lambda conn: differences_of(conn, run_id, statuses=("applying", "approved", "open"),
                                                          ids=id_list))
        if not pending and not (approve and retry):
            raise ApprovalError(f"run {run_id}: no repair awaits approval"
                                + (f" among differences {id_list}" if id_list else ""))
        holder = await self.db(lambda conn: take_days(conn, run_id, run.request().days(),
                                                      stale_after_s=self.settings.run_stale_after_s))
        if holder is not None:
            raise RunBusy(f"run {holder} is reconciling an overlapping day; decide when it has finished")
        try:
            now = clock.now()

            def record(conn: Connection) -> None:
                if actor is not None:
                    audit.record(conn, actor, "approve" if approve else "reject", "ok", run_id=run_id,
                                 difference_ids=[d.id for d in [*pending, *(retry if approve else [])]],
                                 detail=reason[:500])
                for d in pending:
                    update_difference(conn, d.id, expect={"pending_approval"},
                                      status="approved" if approve else "rejected", approved_by=by[:64],
                                      approved_at=now, approval_reason=reason[:500],
                                      **({} if approve else {"outcome": f"repair rejected by {by[:64]}: handle by "
                                                                        "hand"}))

            await self.db(record)
            if approve:
                await self._repair(run_id, plan=True, apply=True, ids=id_list)
            result = await self._conclude(run_id)
        finally:
            await self.db(lambda conn: release_days(conn, run_id))
        return result

    async def approve(self, run_id: str, *, by: str, reason: str, ids: Iterable[int] | None = None,
                      actor: Actor | None = None) -> RunRecord:
        """Approve pending repairs (all of the run's, or ``ids``), apply them and conclude the run again.

        Four eyes: refused (FourEyesViolation) when ``by`` requested the run. With ``actor``, the audit row is
        written in the transaction that records the approval."""
        return await self._decide(run_id, by, reason, ids, approve=True, actor=actor)

    async def reject(self, run_id: str, *, by: str, reason: str, ids: Iterable[int] | None = None,
                     actor: Actor | None = None) -> RunRecord:
        """Refuse pending repairs: they go to manual handling (who/when/why recorded; four eyes as approve)."""
        return await self._decide(run_id, by, reason, ids, approve=False, actor=actor)

    # --- reading -----------------------------------------------------------------------------------------

    async def status(self, run_id: str) -> dict[str, Any]:
        run = await self.db(lambda conn: get_run(conn, run_id))
        if run is None:
            raise RunNotFound(f"no run {run_id}")
        diffs = await self.db(lambda conn: differences_of(conn, run_id))
        out = run.public()
        out["differences"] = [d.public() for d in diffs]
        return out

    async def report(self, run_id: str) -> RunReport:
        def load(conn: Connection) -> RunReport:
            run = get_run(conn, run_id)
            if run is None:
                raise RunNotFound(f"no run {run_id}")
            return RunReport(run=run, statements=statements_of(conn, run_id), differences=differences_of(conn, run_id),
                             generated_at=clock.now())

        return await asyncio.to_thread(lambda: _in_tx(self.engine, load))

    async def _reports(self, run_id: str, final: dict[str, Any] | None = None) -> ReportFiles | None:
        try:
            report = await self.report(run_id)
            if final is not None:
                report = replace(report, run=replace(report.run, **final))
            return await asyncio.to_thread(write_reports, report, Path(self.settings.reports_dir))
        except Exception as exc:  # noqa: BLE001 - a report that cannot be written must not change the run
            log.error("reconciliation report not written", extra={"fields": {"run_id": run_id,
                                                                             "error": type(exc).__name__}})
            return None


def _in_tx(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)

