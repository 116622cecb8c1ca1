"""GYU102 费用明细上传: a stay's fee lines in frozen batches of at most ``upload_batch`` (500) lines.

Each line is checked before it may join a batch — the catalog (是否必填, 参数长度, scales: an amount with more decimals
is refused, never rounded) and the arithmetic (price × cnt = amount to the fen, pool_amt + self_amt = amount) —
and a line that fails is refused with the field named and parked for HIS to fix, while the others go up. A batch is
frozen before it is sent, so a lost answer (GYD053) finds the very same batch. HIS hears once per fee-line request,
when every line of it ended."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from yibao.chains.model import Call, Change, Effects, Refusal, Reply
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.results import count_records, emit_result, observe_upload, park_input
from yibao.workinjury_sync.state import Batch, Line, StayCase, WorkInjuryState, amount
from yibao.workinjury_sync.steps.common import check_record, lookup

__all__ = ["INFNO", "line_record", "line_problem", "check_lines", "close_lines", "freeze_batch", "upload_call", "answer_tallies"]

INFNO = "GYU102"
REQUEST = "fee_lines"
CENT = Decimal("0.01")


def line_record(stay: StayCase, line: Line) -> dict:
    """The GYU102 row: HIS's line with the stay's 住院号 and institution."""
    adm = stay.admission.record if stay.admission is not None else {}
    return {**line.record, "ipt_no": adm.get("ipt_no"), "org_code": adm.get("org_code")}


def line_problem(cfg: ChainConfig, stay: StayCase, line: Line) -> str | None:
    """What is wrong with a line (the field named), or None."""
    problem = check_record(cfg, INFNO, "fee_list", line_record(stay, line))
    if problem is not None:
        return problem
    r = line.record
    price, cnt, total = amount(r["price"]), amount(r["cnt"]), amount(r["amount"])
    if (price * cnt).quantize(CENT, rounding=ROUND_HALF_UP) != total:
        return f"fee_list.amount: price × cnt = {(price * cnt).quantize(CENT, rounding=ROUND_HALF_UP)}, not the amount"
    if amount(r["pool_amt"]) + amount(r["self_amt"]) != total:
        return "fee_list.pool_amt: pool_amt + self_amt is not the amount"
    return None


def check_lines(cfg: ChainConfig, sns: list[str]) -> Change[WorkInjuryState]:
    """Check the lines ``sns`` once; the bad ones are refused (HIS told, parked), the rest may be uploaded."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        stay = s.stay
        assert stay is not None
        for sn in sns:
            line = stay.lines.get(sn)
            if line is None or not line.open or line.checked or line.conflict:
                continue
            problem = line_problem(cfg, stay, line)
            if problem is None:
                line.checked = True
                continue
            line.status, line.reason_code, line.reason = "invalid", "invalid_input", problem
            count_records(fx, INFNO, "invalid")
            park_input(fx, line, request=REQUEST, reason=f"fee_sn {line.fee_sn}: {problem}")
        answer_tallies(cfg, stay, fx)

    return Change("check fee lines", apply)


def close_lines(cfg: ChainConfig, sns: list[str], code: str, reason: str) -> Change[WorkInjuryState]:
    """Lines that cannot go up (no admission on the platform, the stay settled): refused with ``reason``."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        stay = s.stay
        assert stay is not None
        for sn in sns:
            line = stay.lines.get(sn)
            if line is not None and line.open and line.batch is None:
                line.status, line.reason_code, line.reason = "refused", code, reason
                count_records(fx, INFNO, "refused")
        answer_tallies(cfg, stay, fx)

    return Change(f"close lines:{code}", apply)


def freeze_batch(cfg: ChainConfig, sns: list[str]) -> Change[WorkInjuryState]:
    """Decide the next batch: the first ≤ upload_batch checked lines, in arrival order (what arrives meanwhile
    joins it: a gathering change)."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        stay = s.stay
        assert stay is not None
        if stay.batch is not None:
            return
        chosen = [sn for sn in sns if sn in stay.lines and stay.lines[sn].open and stay.lines[sn].checked
                  and stay.lines[sn].batch is None and not stay.lines[sn].conflict][: cfg.upload_batch]
        if chosen:
            stay.batches += 1
            stay.batch = Batch(no=stay.batches, sns=chosen)
            for sn in chosen:
                stay.lines[sn].batch = stay.batch.no

    return Change("freeze a fee-line batch", apply, gathers=True)


def upload_call(cfg: ChainConfig, state: WorkInjuryState) -> Call[WorkInjuryState]:
    stay = state.stay
    assert stay is not None and stay.batch is not None
    no, sns = stay.batch.no, list(stay.batch.sns)
    rows = [line_record(stay, stay.lines[sn]) for sn in sns]

    def mine(s: WorkInjuryState) -> StayCase | None:
        st = s.stay
        return st if st is not None and st.batch is not None and st.batch.no == no else None

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        st = mine(s)
        if st is None:
            return
        deadline = cfg.deadline_s(INFNO)
        for sn in sns:
            line = st.lines[sn]
            line.status, line.trans_no, line.done_at, line.batch = "done", reply.msgid, fx.now, None
            observe_upload(fx, INFNO, line.occurred_at, deadline)
        count_records(fx, INFNO, "uploaded", len(sns))
        st.batch = None
        answer_tallies(cfg, st, fx)

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        st = mine(s)
        if st is None:
            return
        for sn in sns:
            line = st.lines[sn]
            line.status, line.reason_code, line.reason, line.batch = "refused", refusal.reason_code, refusal.text, None
        count_records(fx, INFNO, "refused", len(sns))
        st.batch = None
        answer_tallies(cfg, st, fx)

    return Call(f"{INFNO}:b{no}", INFNO, {"fee_list": rows}, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup(INFNO))


def answer_tallies(cfg: ChainConfig, stay: StayCase, fx: Effects) -> None:
    """Answer every fee-line request all of whose lines ended: uploaded, or what went wrong with which line."""
    deadline = cfg.deadline_s(INFNO)
    for event_id, tally in stay.tallies.items():
        if tally.answered:
            continue
        lines = [stay.lines[sn] for sn in tally.sns if sn in stay.lines]
        if any(line.open for line in lines):
            continue
        tally.answered = True
        done = [line for line in lines if line.status == "done"]
        bad = {line.fee_sn: line.reason or line.status for line in lines if line.status in ("invalid", "refused")}
        if not bad:
            kind, code, reason = "uploaded", None, None
        elif any(line.status == "invalid" for line in lines):
            kind, code = "invalid", "invalid_input"
            reason = f"{len(bad)} of {len(lines)} lines not uploaded: " + "; ".join(
                f"{sn}: {why}" for sn, why in list(bad.items())[:5])
        else:
            kind, code = "refused", next(line.reason_code for line in lines if line.status == "refused")
            reason = f"{len(bad)} of {len(lines)} lines refused: " + "; ".join(
                f"{sn}: {why}" for sn, why in list(bad.items())[:5])
        emit_result(fx, request=REQUEST, kind=kind, ident=(REQUEST, event_id), infno=INFNO,
                    trans_no=done[-1].trans_no if done else None, deadline_s=deadline, reason_code=code,
                    reason=reason, occurred_at=tally.occurred_at, event_id=event_id,
                    detail={"lines": len(lines), "uploaded": len(done), "not_uploaded": bad} if bad else
                    {"lines": len(lines), "uploaded": len(done)})
