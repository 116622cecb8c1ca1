"""Runs, their day locks, 3201 statements and differences in the database (synchronous units of work).

Overlapping runs: a run takes one ``recon_locks`` row per day of its period, in the transaction that creates
it. A second run (or an approval) touching a held day is **refused** — its own row records state ``refused``
and a message naming the run that holds the day — rather than queued: finance asked for an answer about a
day that is being answered already, and the answer they want is that run's. Locks of a run that stopped
without finishing (its worker died: no heartbeat for ``run_stale_after_s``) are taken over, and that run is
marked ``failed`` ("interrupted").

Differences carry the first time their setl_id was seen open (``first_seen_at``): a later run that finds the
same difference again supersedes the earlier row and inherits that time, so the age of the oldest open 单边账
survives re-runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from yibao.core import clock
from yibao.core.db.schema import recon_differences, recon_locks, recon_runs, recon_statements
from yibao.core.messaging.outbox import enqueue
from yibao.core.results import stable_id
from yibao.core.topics import topic

from .classify import Difference
from .models import FINAL_STATES, ReconRunEvent, RunRequest
from .statement import StatementKey, Totals

__all__ = [
    "RunRecord",
    "DifferenceRecord",
    "StatementRecord",
    "OPEN_STATUSES",
    "SINGLE_SIDED",
    "MOBILE_SINGLE_SIDED",
    "new_run_id",
    "run_id_for_command",
    "create_run",
    "take_days",
    "release_days",
    "fail_stale_runs",
    "set_progress",
    "finish_run",
    "get_run",
    "list_runs",
    "save_statement",
    "statements_of",
    "save_differences",
    "differences_of",
    "difference",
    "update_difference",
    "single_sided_open",
    "publish_event",
    "open_counts",
]

#: difference statuses still needing something (a repair to apply, an approval, people)
OPEN_STATUSES: frozenset[str] = frozenset({"open", "pending_approval", "approved", "applying", "manual", "rejected"})
#: classes counted as single-sided ledger entries (单边账)
SINGLE_SIDED: frozenset[str] = frozenset({"platform_only", "his_only"})
#: the mobile-pay reconciliation's single-sided classes (yibao.reconciliation.mobile)
MOBILE_SINGLE_SIDED: frozenset[str] = frozenset({"mp_paid_not_in_his", "mp_in_his_not_paid"})


def new_run_id(now: _dt.datetime | None = None) -> str:
    """``R`` + yyyyMMddHHmmss (Shanghai) + 8 random hex: sortable and unique by construction."""
    return f"R{clock.format_compact(now or clock.now())}{secrets.token_hex(4)}"


def run_id_for_command(command_id: str) -> str:
    """A command's run id is derived from its id, so a redelivered command names the same run."""
    return "C" + stable_id("recon-command", command_id)[:24]


@dataclass
class RunRecord:
    run_id: str
    trigger: str
    requested_by: str | None
    date_from: _dt.date
    date_to: _dt.date
    insutype: str | None
    clr_type: str | None
    state: str
    step: str | None
    done: int
    total: int
    message: str | None
    summary: dict[str, Any] | None
    created_at: _dt.datetime
    updated_at: _dt.datetime
    heartbeat_at: _dt.datetime
    finished_at: _dt.datetime | None
    scope: str = "national"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def request(self) -> RunRequest:
        return RunRequest(date_from=self.date_from, date_to=self.date_to, insutype=self.insutype,
                          clr_type=self.clr_type, trigger=self.trigger, requested_by=self.requested_by,  # type: ignore[arg-type]
                          scope=self.scope)  # type: ignore[arg-type]

    def public(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "trigger": self.trigger, "requested_by": self.requested_by,
            "date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat(),
            "insutype": self.insutype, "clr_type": self.clr_type, "scope": self.scope, "state": self.state,
            "progress": {"step": self.step, "done": self.done, "total": self.total}, "message": self.message,
            "summary": self.summary, "created_at": clock.format_datetime(self.created_at),
            "finished_at": clock.format_datetime(self.finished_at) if self.finished_at else None,
        }


@dataclass
class StatementRecord:
    phase: str
    insutype: str
    clr_type: str
    setl_optins: str
    refd_setl_flag: str | None
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    setl_cnt: int
    stmt_rslt: str
    stmt_rslt_dscr: str | None

    @property
    def key(self) -> StatementKey:
        return StatementKey(self.insutype, self.clr_type, self.setl_optins)

    @property
    def balanced(self) -> bool:
        return self.stmt_rslt == "0"


@dataclass
class DifferenceRecord:
    id: int
    run_id: str
    diff_class: str
    row_code: str
    clr_type: str
    setl_optins: str
    setl_id: str
    mdtrt_id: str | None
    psn_no: str | None
    msgid: str | None
    refd_setl_flag: str | None
    channel: str
    his_visit_id: str | None
    memo: str | None
    his_medfee_sumamt: Decimal | None
    his_fund_pay_sumamt: Decimal | None
    his_acct_pay: Decimal | None
    plat_medfee_sumamt: Decimal | None
    plat_fund_pay_sumamt: Decimal | None
    plat_acct_pay: Decimal | None
    status: str
    action: str | None
    amount: Decimal | None
    needs_approval: bool
    approved_by: str | None
    approved_at: _dt.datetime | None
    approval_reason: str | None
    repair_msgid: str | None
    outcome: str | None
    first_seen_at: _dt.datetime
    created_at: _dt.datetime
    updated_at: _dt.datetime
    resolved_at: _dt.datetime | None
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra", None)
        for key, value in list(out.items()):
            if isinstance(value, Decimal):
                out[key] = str(value)
            elif isinstance(value, _dt.datetime):
                out[key] = clock.format_datetime(value)
        return out


def _run(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row.run_id, trigger=row.trigger, requested_by=row.requested_by, date_from=row.date_from,
        date_to=row.date_to, insutype=row.insutype, clr_type=row.clr_type, state=row.state, step=row.step,
        done=row.done, total=row.total, message=row.message,
        summary=json.loads(row.summary) if row.summary else None, created_at=row.created_at,
        updated_at=row.updated_at, heartbeat_at=row.heartbeat_at, finished_at=row.finished_at,
        scope=getattr(row, "scope", None) or "national",
    )


def get_run(conn: Connection, run_id: str) -> RunRecord | None:
    row = conn.execute(select(recon_runs).where(recon_runs.c.run_id == run_id)).first()
    return None if row is None else _run(row)


def list_runs(conn: Connection, *, limit: int = 50) -> list[RunRecord]:
    rows = conn.execute(select(recon_runs).order_by(recon_runs.c.created_at.desc(), recon_runs.c.run_id.desc())
                        .limit(limit))
    return [_run(r) for r in rows]


def _insert_ignore(conn: Connection, table: Any, values: dict[str, Any], returning: Any) -> bool:
    stmt: Any = (postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table))
    stmt = stmt.values(**values).on_conflict_do_nothing()
    return conn.execute(stmt.returning(returning)).first() is not None


def _free_stale_locks(conn: Connection, days: Sequence[_dt.date], stale_after_s: float) -> None:
    """Release held days whose run is finished, gone, or silent for too long (marking it failed)."""
    now = clock.now()
    cutoff = now - _dt.timedelta(seconds=stale_after_s)
    held = conn.execute(select(recon_locks.c.day, recon_locks.c.run_id).where(recon_locks.c.day.in_(days))).all()
    for day, holder in held:
        run = get_run(conn, holder)
        if run is not None and run.state == "running" and run.heartbeat_at >= cutoff:
            continue
        if run is not None and run.state == "running":
            conn.execute(update(recon_runs).where(recon_runs.c.run_id == holder, recon_runs.c.state == "running")
                         .values(state="failed", message="interrupted: the run stopped making progress "
                                 "(worker stopped?); nothing half-applied — run it again",
                                 updated_at=now, finished_at=now))
        conn.execute(delete(recon_locks).where(recon_locks.c.day == day, recon_locks.c.run_id == holder))


def take_days(conn: Connection, run_id: str, days: Sequence[_dt.date], *, stale_after_s: float) -> str | None:
    """Lock the days for ``run_id``; None when all are now held by it, else the id of the run holding one.

    All or nothing: when one day is held elsewhere, the days taken in this call are given back."""
    _free_stale_locks(conn, days, stale_after_s)
    taken: list[_dt.date] = []
    for day in days:
        if _insert_ignore(conn, recon_locks, {"day": day, "run_id": run_id, "taken_at": clock.now()},
                          recon_locks.c.day):
            taken.append(day)
            continue
        holder = conn.execute(select(recon_locks.c.run_id).where(recon_locks.c.day == day)).scalar()
        if holder == run_id:
            continue
        if taken:
            conn.execute(delete(recon_locks).where(recon_locks.c.run_id == run_id, recon_locks.c.day.in_(taken)))
        return holder or "?"
    return None


def fail_stale_runs(conn: Connection, stale_after_s: float, *, prefix: str = "") -> list[str]:
    """Runs still ``running`` without a heartbeat for ``stale_after_s`` (their worker died): ``failed``."""
    now = clock.now()
    cutoff = now - _dt.timedelta(seconds=stale_after_s)
    stale = conn.execute(select(recon_runs.c.run_id).where(recon_runs.c.state == "running",
                                                           recon_runs.c.heartbeat_at < cutoff)).scalars().all()
    for run_id in stale:
        conn.execute(update(recon_runs).where(recon_runs.c.run_id == run_id, recon_runs.c.state == "running")
                     .values(state="failed", updated_at=now, finished_at=now,
                             message="interrupted: the run stopped making progress (worker stopped?); nothing "
                                     "half-applied — run it again"))
        release_days(conn, run_id)
        run = get_run(conn, run_id)
        if run is not None:
            publish_event(conn, run, prefix=prefix)
    return list(stale)


def release_days(conn: Connection, run_id: str) -> None:
    conn.execute(delete(recon_locks).where(recon_locks.c.run_id == run_id))


def create_run(conn: Connection, run_id: str, request: RunRequest, *, stale_after_s: float,
               prefix: str = "") -> tuple[RunRecord, bool]:
    """The run row, ``running`` with its days locked — or ``refused`` naming the holder — and whether it was
    created now (False: a run of that id existed, returned as it is)."""
    existing = get_run(conn, run_id)
    if existing is not None:
        return existing, False
    now = clock.now()
    conn.execute(insert(recon_runs).values(
        run_id=run_id, trigger=request.trigger, requested_by=request.requested_by, date_from=request.date_from,
        date_to=request.date_to, insutype=request.insutype, clr_type=request.clr_type, scope=request.scope,
        state="running",
        step="queued", done=0, total=0, message=None, summary=None, created_at=now, updated_at=now,
        heartbeat_at=now, finished_at=None))
    holder = take_days(conn, run_id, request.days(), stale_after_s=stale_after_s)
    if holder is not None:
        conn.execute(update(recon_runs).where(recon_runs.c.run_id == run_id).values(
            state="refused", step=None, finished_at=now,
            message=f"refused: run {holder} is reconciling an overlapping day; its result is the answer "
                    "(ask again when it has finished)"))
    run = get_run(conn, run_id)
    assert run is not None
    publish_event(conn, run, prefix=prefix)
    return run, True


def set_progress(conn: Connection, run_id: str, *, step: str, done: int, total: int,
                 message: str | None = None, prefix: str = "", publish: bool = True) -> RunRecord | None:
    now = clock.now()
    values: dict[str, Any] = {"step": step, "done": done, "total": total, "updated_at": now, "heartbeat_at": now}
    if message is not None:
        values["message"] = message
    conn.execute(update(recon_runs).where(recon_runs.c.run_id == run_id).values(**values))
    run = get_run(conn, run_id)
    if run is not None and publish:
        publish_event(conn, run, prefix=prefix)
    return run


def finish_run(conn: Connection, run_id: str, *, state: str, message: str, summary: dict[str, Any] | None,
               prefix: str = "") -> RunRecord:
    assert state in FINAL_STATES
    now = clock.now()
    conn.execute(update(recon_runs).where(recon_runs.c.run_id == run_id).values(
        state=state, message=message, summary=json.dumps(summary, ensure_ascii=False) if summary else None,
        step="done", updated_at=now, heartbeat_at=now, finished_at=now))
    release_days(conn, run_id)
    run = get_run(conn, run_id)
    assert run is not None
    publish_event(conn, run, prefix=prefix)
    return run


def open_counts(conn: Connection, run_id: str) -> dict[str, int]:
    rows = conn.execute(select(recon_differences.c.diff_class, func.count())
                        .where(recon_differences.c.run_id == run_id,
                               recon_differences.c.status.in_(OPEN_STATUSES))
                        .group_by(recon_differences.c.diff_class))
    return {cls: int(n) for cls, n in rows}


def publish_event(conn: Connection, run: RunRecord, *, prefix: str = "") -> None:
    """A ReconRunEvent in the outbox (published by the relay), in the same transaction as the change."""
    event = ReconRunEvent(
        message_id=stable_id("recon-run-event", run.run_id, run.state, run.step, run.done, run.total,
                             clock.format_datetime(run.updated_at), secrets.token_hex(4)),
        run_id=run.run_id, state=run.state, step=run.step, done=run.done, total=run.total,  # type: ignore[arg-type]
        message=run.message, date_from=run.date_from, date_to=run.date_to,
        differences=open_counts(conn, run.run_id))
    enqueue(conn, producer="reconciliation", topic=topic("recon_results", prefix), key=run.run_id,
            value=event.to_json(), headers={"type": "recon_run_event", "state": run.state})


# --- statements ------------------------------------------------------------------------------------------


def save_statement(conn: Connection, run_id: str, *, phase: str, key: StatementKey, refd_setl_flag: str,
                   totals: Totals, stmt_rslt: str, stmt_rslt_dscr: str | None) -> None:
    conn.execute(insert(recon_statements).values(
        run_id=run_id, phase=phase, insutype=key.insutype, clr_type=key.clr_type, setl_optins=key.setl_optins,
        refd_setl_flag=refd_setl_flag or None, medfee_sumamt=totals.medfee_sumamt,
        fund_pay_sumamt=totals.fund_pay_sumamt, acct_pay=totals.acct_pay, setl_cnt=totals.count,
        stmt_rslt=stmt_rslt, stmt_rslt_dscr=stmt_rslt_dscr, created_at=clock.now()))


def statements_of(conn: Connection, run_id: str, phase: str | None = None) -> list[StatementRecord]:
    c = recon_statements.c
    query = select(recon_statements).where(c.run_id == run_id)
    if phase is not None:
        query = query.where(c.phase == phase)
    rows = conn.execute(query.order_by(c.id))
    return [StatementRecord(r.phase, r.insutype, r.clr_type, r.setl_optins, r.refd_setl_flag, r.medfee_sumamt,
                            r.fund_pay_sumamt, r.acct_pay, r.setl_cnt, r.stmt_rslt, r.stmt_rslt_dscr) for r in rows]


# --- differences -----------------------------------------------------------------------------------------


def _difference(row: Any) -> DifferenceRecord:
    data = {k: getattr(row, k) for k in recon_differences.c.keys()}
    data["needs_approval"] = bool(data["needs_approval"])
    return DifferenceRecord(**data)


#: differences written per statement by save_differences (a day of a large hospital may have tens of thousands)
SAVE_BATCH = 1000


def save_differences(conn: Connection, run_id: str, differences: Iterable[Difference]) -> list[int]:
    """Store a 3202's differences (status ``open``); earlier open rows of the same setl_ids are superseded.
    The ids of the new rows, in the order of ``differences``. Written a batch at a time: per :data:`SAVE_BATCH`
    differences one query for the earlier rows, one update superseding them and one executemany insert; then
    one query for the new ids."""
    now = clock.now()
    c = recon_differences.c
    pending = list(differences)
    for start in range(0, len(pending), SAVE_BATCH):
        chunk = pending[start:start + SAVE_BATCH]
        earlier = conn.execute(
            select(c.id, c.setl_id, c.first_seen_at)
            .where(c.setl_id.in_(sorted({d.setl_id for d in chunk})), c.run_id != run_id,
                   c.status.in_(OPEN_STATUSES))).all()
        first_seen: dict[str, _dt.datetime] = {}
        for row in earlier:
            first_seen[row.setl_id] = min(first_seen.get(row.setl_id, now), row.first_seen_at)
        if earlier:
            conn.execute(update(recon_differences)
                         .where(c.id.in_([row.id for row in earlier]))
                         .values(status="superseded", updated_at=now,
                                 outcome=f"found again by run {run_id}; continued there"))
        rows = [{
            "run_id": run_id, "diff_class": d.diff_class, "row_code": d.row_code, "clr_type": d.clr_type,
            "setl_optins": d.setl_optins, "setl_id": d.setl_id, "mdtrt_id": d.mdtrt_id, "psn_no": d.psn_no,
            "msgid": d.msgid, "refd_setl_flag": d.refd_setl_flag, "channel": d.channel,
            "his_visit_id": d.his_visit_id, "memo": d.memo, "his_medfee_sumamt": d.his_medfee_sumamt,
            "his_fund_pay_sumamt": d.his_fund_pay_sumamt, "his_acct_pay": d.his_acct_pay,
            "plat_medfee_sumamt": d.plat_medfee_sumamt, "plat_fund_pay_sumamt": d.plat_fund_pay_sumamt,
            "plat_acct_pay": d.plat_acct_pay, "status": "open", "action": None, "amount": None,
            "needs_approval": 0, "first_seen_at": min(now, first_seen.get(d.setl_id, now)), "created_at": now,
            "updated_at": now,
        } for d in chunk]
        # a plain executemany: psycopg sends it pipelined, the statement parsed once
        conn.execute(insert(recon_differences), rows)
    if not pending:
        return []
    # the new ids, read back once by (run_id, setl_id) - unique per run
    new_ids = dict(conn.execute(select(c.setl_id, c.id).where(c.run_id == run_id)).all())
    return [int(new_ids[d.setl_id]) for d in pending]


def differences_of(conn: Connection, run_id: str, *, statuses: Iterable[str] | None = None,
                   ids: Iterable[int] | None = None) -> list[DifferenceRecord]:
    query = select(recon_differences).where(recon_differences.c.run_id == run_id)
    if statuses is not None:
        query = query.where(recon_differences.c.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(recon_differences.c.id.in_(list(ids)))
    return [_difference(r) for r in conn.execute(query.order_by(recon_differences.c.id))]


def difference(conn: Connection, difference_id: int) -> DifferenceRecord | None:
    row = conn.execute(select(recon_differences).where(recon_differences.c.id == difference_id)).first()
    return None if row is None else _difference(row)


def update_difference(conn: Connection, difference_id: int, *, expect: Iterable[str] | None = None,
                      **values: Any) -> bool:
    """Compare-and-set: change the row only while its status is one of ``expect``; True when it changed."""
    values.setdefault("updated_at", clock.now())
    if "needs_approval" in values:
        values["needs_approval"] = 1 if values["needs_approval"] else 0
    query = update(recon_differences).where(recon_differences.c.id == difference_id)
    if expect is not None:
        query = query.where(recon_differences.c.status.in_(list(expect)))
    return conn.execute(query.values(**values)).rowcount == 1


def single_sided_open(conn: Connection, classes: frozenset[str] = SINGLE_SIDED) -> tuple[int, _dt.datetime | None]:
    """Open single-sided entries (distinct setl_ids) and when the oldest of them was first seen."""
    c = recon_differences.c
    where = and_(c.diff_class.in_(list(classes)), c.status.in_(OPEN_STATUSES))
    count, oldest = conn.execute(select(func.count(func.distinct(c.setl_id)), func.min(c.first_seen_at))
                                 .where(where)).one()
    if oldest is not None and not isinstance(oldest, _dt.datetime):  # SQLite min() of a text column
        oldest = clock.parse_datetime(str(oldest))
    return int(count or 0), (clock.as_shanghai(oldest) if oldest is not None else None)

