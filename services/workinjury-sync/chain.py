"""The work-injury chain: from a case's state alone, what to do next (:meth:`WorkInjuryChain.next_action`).

The business order of each kind of case (what each call sends and what its answer changes is in its family's
module under :mod:`yibao.workinjury_sync.steps`):

* **stay** — work already decided first (an attachment batch, a fee-line batch: a lost answer finds the very same
  call); the admission (GYU101) once checked; fee lines (checked one by one, frozen in batches of ≤ 500, GYU102)
  while the admission is on the platform and the stay not settled — a line HIS recorded after an open settlement
  waits for it; then HIS's requests one at a time in HIS order: the settlement (GYU103: its attachments first, every
  earlier line up, totals equal to their sums), deductions (GYU004), revocations (GYR001-GYR004 in the order the
  platform needs). Requests whose admission event never comes are answered after ``orphan_timeout``;
* **filing** — the audit (GYU001) once its application was downloaded (GYD001), the local filing (its attachments
  with GYU002, then GYU006), the updates (GYU007) in HIS order;
* **device** — GYD051 for the person, then GYU303; a revocation with GYR003;
* **month** — GYU003, once per institution and month;
* **org** — GYU009 with the latest version;
* **download** — a stream: confirmations first (GYU008), deliveries lost here asked again (GYR005), GYD008 at the
  start of a poll, then what follows records (GYD102, GYD054) and the next download; the poll ends when the platform
  has no more, and the next starts after ``poll_interval``.

Anything our checks refuse is answered with the field named and parked for HIS to fix; the rest of the case goes on.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from yibao.chains.model import Action, Call, Change, Effects, Idle, Refusal, Wait
from yibao.core.privacy import mask_text
from yibao.core.results import stable_id
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.results import SERVICE, count_records, emit_result
from yibao.workinjury_sync.state import (
    DeviceCase,
    Failure,
    FilingCase,
    MonthCase,
    OrgCase,
    Part,
    StayCase,
    StayRequest,
    StreamState,
    WorkInjuryState,
)
from yibao.workinjury_sync.steps import (
    admission,
    attachments,
    deduction,
    details,
    download,
    filing,
    institution,
    monthend,
    revocation,
    settlement,
)
from yibao.workinjury_sync.steps.common import invalid, refuse
from yibao.workinjury_sync.store import WorkInjuryStore

__all__ = ["WorkInjuryChain", "request_label"]

_LABELS = {"settle": "settlement", "deduct": "deduction", "revoke": "revocation"}


def request_label(request: StayRequest) -> str:
    return _LABELS[request.kind]


def _answer(part_of: Any, code: str, reason: str, *, request: str, infno: str | None,
            kind: str = "refused") -> Change[WorkInjuryState]:
    """A local answer to one part (found again by ``part_of(state)``): refused (an order or state rule) or invalid
    (our checks: parked for HIS)."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        part = part_of(s)
        if part is None or not part.open:
            return
        if kind == "invalid":
            invalid(fx, part, reason, request=request, infno=infno, code=code)
        else:
            part.status, part.reason_code, part.reason = "refused", code, reason
            if infno:
                count_records(fx, infno, "refused")
            emit_result(fx, request=request, kind="refused", ident=(request, part.event_id), part=part, infno=infno,
                        reason_code=code, reason=reason)

    return Change(f"{kind}:{code}:{stable_id(reason)[:8]}", apply)


def _verdict(part_of: Any, problem: str | None, *, request: str, infno: str) -> Change[WorkInjuryState]:
    """Our check of a part (found again by ``part_of(state)``): ``problem`` answers it as invalid (parked for HIS);
    none marks it checked, so it may be sent."""
    if problem is not None:
        return _answer(part_of, "invalid_input", problem, request=request, infno=infno, kind="invalid")
    return _checked(part_of)


def _later(waiting: Callable[[WorkInjuryState], list[Part]], event_id: str, name: str,
           then: Callable[[WorkInjuryState, Part, Effects], None]) -> Change[WorkInjuryState]:
    """A later version of a part HIS sent once the first was chosen: taken off its waiting list (``waiting(state)``)
    and handed to ``then`` — which makes it the part (the first ended off the platform) or refuses it."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        parts = waiting(s)
        found = next((p for p in parts if p.event_id == event_id), None)
        if found is not None:
            parts.remove(found)
            then(s, found, fx)

    return Change(f"{name}:{stable_id(event_id)[:16]}", apply)


def _refuse_later(fx: Effects, part: Part, *, request: str, infno: str, code: str, reason: str) -> None:
    part.status, part.reason_code, part.reason = "refused", code, reason
    emit_result(fx, request=request, kind="refused", ident=(request, part.event_id), part=part, infno=infno,
                reason_code=code, reason=reason)


def _checked(part_of: Any) -> Change[WorkInjuryState]:
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        part = part_of(s)
        if part is not None and part.open:
            part.checked = True

    return Change("checked", apply)


class WorkInjuryChain:
    """The :class:`~yibao.chains.model.Chain` of ``yibao worker workinjury-sync``."""

    service = SERVICE

    def __init__(self, config: ChainConfig) -> None:
        self.config = config
        self.store = WorkInjuryStore()

    def new_state(self, key: str, kind: str) -> WorkInjuryState:
        head, _, rest = key.partition(":")
        cfg = self.config
        if kind == "download" or head == "download":
            return WorkInjuryState(kind="download", key=key, stream=StreamState(infno=rest))
        if kind == "filing" or head in ("application", "filing"):
            return WorkInjuryState(kind="filing", key=key, filing=FilingCase(
                apply_no=rest if head == "application" else None, filing_no=rest if head == "filing" else None))
        if kind == "device" or head == "device":
            return WorkInjuryState(kind="device", key=key, device=DeviceCase(setl_no=rest))
        if kind == "month" or head == "month":
            org, _, month = rest.partition(":")
            return WorkInjuryState(kind="month", key=key, month=MonthCase(org_code=org, month=month))
        if kind == "org" or head == "org":
            return WorkInjuryState(kind="org", key=key, org=OrgCase(org_code=rest))
        return WorkInjuryState(kind="stay", key=key, stay=StayCase(stay_id=rest, org_code=cfg.org_code))

    # --- the decision -------------------------------------------------------------------------------------------

    def next_action(self, state: WorkInjuryState, now: _dt.datetime) -> Action:
        if state.stay is not None:
            return self._stay(state, state.stay, now)
        if state.filing is not None:
            return self._filing(state, state.filing, now)
        if state.device is not None:
            return self._device(state, state.device)
        if state.month is not None:
            return self._month(state, state.month)
        if state.org is not None:
            return self._org(state, state.org)
        if state.stream is not None:
            return self._stream(state, state.stream, now)
        return Idle()

    # --- a stay -------------------------------------------------------------------------------------------------

    def _stay(self, state: WorkInjuryState, stay: StayCase, now: _dt.datetime) -> Action:
        cfg = self.config
        if stay.atta_batch is not None:
            return attachments.attachments_call(state, _attachments_failed)
        if stay.batch is not None:
            return details.upload_call(cfg, state)
        adm = stay.admission
        if adm is None:
            return self._no_admission(stay, now)
        if adm.open:
            if not adm.checked:
                problem = admission.check_admission(cfg, state)
                return problem or _checked(lambda s: s.stay.admission if s.stay else None)
            return admission.admission_call(cfg, state)
        if stay.later_admissions:
            return self._later_admission(stay)
        lines = self._lines(state, stay)
        if lines is not None:
            return lines
        head = stay.head()
        if head is not None:
            return self._serve(state, stay, head)
        return Idle()

    def _no_admission(self, stay: StayCase, now: _dt.datetime) -> Action:
        waiting = bool(stay.pending_lines()) or stay.head() is not None
        if not waiting:
            return Idle()
        deadline = (stay.waiting_since or now) + self.config.orphan_timeout
        if now < deadline:
            return Wait("fee lines and requests wait for the stay's admission event", until=deadline)
        reason = "no admission event of this stay arrived"
        return self._close_everything("no_admission", reason)

    def _close_everything(self, code: str, reason: str) -> Change[WorkInjuryState]:
        """Every open line and request of the stay answered with ``reason`` (no admission on the platform)."""
        cfg = self.config

        def apply(s: WorkInjuryState, fx: Effects) -> None:
            st = s.stay
            assert st is not None
            details.close_lines(cfg, [sn for sn, line in st.lines.items() if line.open and line.batch is None],
                                code, reason).apply(s, fx)
            for r in st.requests:
                if r.open:
                    r.status, r.reason_code, r.reason = "refused", code, reason
                    emit_result(fx, request=request_label(r), kind="refused", ident=(request_label(r), r.event_id),
                                part=r, reason_code=code, reason=reason)

        return Change(f"close:{code}", apply)

    def _later_admission(self, stay: StayCase) -> Action:
        event_id = stay.later_admissions[0].event_id
        current = stay.admission
        assert current is not None

        def waiting(s: WorkInjuryState) -> list[Part]:
            assert s.stay is not None
            return s.stay.later_admissions

        if current.status in ("invalid", "refused", "revoked", "superseded") and not stay.admitted:
            def replace(s: WorkInjuryState, found: Part, fx: Effects) -> None:
                assert s.stay is not None
                s.stay.admission = found

            return _later(waiting, event_id, "admission again", replace)

        def answer(s: WorkInjuryState, found: Part, fx: Effects) -> None:
            _refuse_later(fx, found, request="admission", infno="GYU101", code="out_of_order",
                          reason="the stay's admission is on the platform already (GYU101 has no change): revoke it "
                                 "first (revocation target admission), then send the corrected admission")

        if current.open:  # chosen, its call may be in flight: answered once it ended
            return Wait("a later admission waits for the first one's answer")
        return _later(waiting, event_id, "later admission", answer)

    def _lines(self, state: WorkInjuryState, stay: StayCase) -> Action | None:
        cfg = self.config
        head = stay.head()
        conflicts = [sn for sn, line in stay.lines.items() if line.open and line.conflict]
        for key in conflicts:
            original = stay.lines.get(stay.lines[key].fee_sn)
            if original is not None and original.batch is not None:
                continue  # its original is in flight: decided once that batch ended
            if head is not None and head.occurred_at <= stay.lines[key].occurred_at and original is not None \
                    and original.status == "done":
                continue  # a request HIS made before it (a revocation of the lines) goes first
            return _resolve_conflict(cfg, key)
        unchecked = [sn for sn, line in stay.lines.items() if line.open and not line.checked and not line.conflict]
        if unchecked:
            return details.check_lines(cfg, unchecked)
        ready = [sn for sn, line in stay.lines.items() if line.open and line.checked and not line.conflict]
        if not ready:
            return None
        if not stay.admitted:
            adm = stay.admission
            assert adm is not None
            why = {"revoked": "the stay's admission was revoked on the platform; send the admission again first"}.get(
                adm.status, "the stay's admission is not on the platform (it was refused)")
            return details.close_lines(cfg, ready, "no_admission", why)
        if stay.settled is not None:
            return details.close_lines(cfg, ready, "out_of_order", "the stay is settled on the platform: revoke the "
                                                                   "settlement first to add lines")
        if head is not None:  # HIS order: a line recorded after the request at the head waits for it
            ready = [sn for sn in ready if stay.lines[sn].occurred_at <= head.occurred_at]
        if not ready:
            return None
        return details.freeze_batch(cfg, ready)

    def _serve(self, state: WorkInjuryState, stay: StayCase, request: StayRequest) -> Action:
        cfg = self.config
        event_id = request.event_id

        def me(s: WorkInjuryState) -> StayRequest | None:
            return s.stay.request(event_id) if s.stay is not None else None

        label = request_label(request)
        if request.kind == "revoke":
            step = revocation.plan(stay, request)
            if isinstance(step, str):
                code = "out_of_order" if step.startswith("out of order") else "nothing_to_revoke"
                return _answer(me, code, step, request=label, infno=None)
            return revocation.revoke_call(cfg, state, request, *step)
        if not stay.admitted:
            return _answer(me, "no_admission", "the stay has no admission on the platform", request=label,
                           infno="GYU103" if request.kind == "settle" else "GYU004")
        if request.kind == "settle":
            if stay.settled is not None:
                return _answer(me, "out_of_order", "the stay is settled on the platform already: revoke that "
                                                   "settlement first", request=label, infno="GYU103")
            if any(line.open for line in stay.lines.values() if line.occurred_at <= request.occurred_at):
                return Wait("the settlement waits for the stay's earlier lines to be uploaded")
            if not request.checked:
                return _verdict(me, settlement.settlement_problem(cfg, stay, request), request=label, infno="GYU103")
            nos = [n for n in request.record.get("atta_nos", []) if n in stay.attachments]
            if any(stay.attachments[n].open for n in nos):
                return attachments.freeze_attachments(nos)
            if any(stay.attachments[n].status != "done" for n in nos):
                return _answer(me, "rejected", "an attachment of the settlement was refused (GYU002)", request=label,
                               infno="GYU103")
            return settlement.settlement_call(cfg, state, request)
        if stay.settled is None:
            return _answer(me, "out_of_order", "the stay has no settlement on the platform to deduct from",
                           request=label, infno="GYU004")
        if not request.checked:
            return _verdict(me, deduction.deduction_problem(cfg, stay, request), request=label, infno="GYU004")
        return deduction.deduction_call(cfg, state, request)

    # --- a filing -----------------------------------------------------------------------------------------------

    def _filing(self, state: WorkInjuryState, case: FilingCase, now: _dt.datetime) -> Action:
        cfg = self.config
        if case.atta_batch is not None:
            return attachments.attachments_call(state, _attachments_failed)
        audit = case.audit
        if audit is not None and audit.open:
            if not case.downloaded:
                deadline = (case.waiting_since or now) + cfg.orphan_timeout
                if now < deadline:
                    return Wait("the audit waits for its application's download (GYD001)", until=deadline)
                return _answer(lambda s: s.filing.audit if s.filing else None, "not_downloaded",
                               "the application was not downloaded (GYD001): only a downloaded application is audited",
                               request="filing_audit", infno="GYU001")
            if not audit.checked:
                return _verdict(lambda s: s.filing.audit if s.filing else None, filing.audit_problem(cfg, case, audit),
                                request="filing_audit", infno="GYU001")
            return filing.audit_call(cfg, state)
        local = case.filing
        if local is not None and local.open:
            if not local.checked:
                return _verdict(lambda s: s.filing.filing if s.filing else None,
                                filing.filing_problem(cfg, case, local), request="filing", infno="GYU006")
            nos = [n for n in local.record.get("atta_nos", []) if n in case.attachments]
            if any(case.attachments[n].open for n in nos):
                return attachments.freeze_attachments(nos)
            if any(case.attachments[n].status != "done" for n in nos):
                return _answer(lambda s: s.filing.filing if s.filing else None, "rejected",
                               "an attachment of the filing was refused (GYU002)", request="filing", infno="GYU006")
            return filing.filing_call(cfg, state)
        if case.later:
            return self._later_filing(case)
        update = next((u for u in case.updates if u.open), None)
        if update is not None:
            event_id = update.event_id

            def me(s: WorkInjuryState) -> Part | None:
                return next((u for u in s.filing.updates if u.event_id == event_id), None) if s.filing else None

            if not update.checked:
                return _verdict(me, filing.update_problem(cfg, case, update), request="filing_update", infno="GYU007")
            return filing.update_call(cfg, state, update)
        return Idle()

    def _later_filing(self, case: FilingCase) -> Action:
        later = case.later[0]
        event_id = later.event_id
        is_audit = "apply_no" in later.record
        current = case.audit if is_audit else case.filing

        def waiting(s: WorkInjuryState) -> list[Part]:
            assert s.filing is not None
            return s.filing.later

        if current is not None and current.status in ("invalid", "refused"):
            def replace(s: WorkInjuryState, found: Part, fx: Effects) -> None:
                assert s.filing is not None
                if is_audit:
                    s.filing.audit = found
                else:
                    s.filing.filing = found

            return _later(waiting, event_id, "again", replace)

        request, infno = ("filing_audit", "GYU001") if is_audit else ("filing", "GYU006")

        def answer(s: WorkInjuryState, found: Part, fx: Effects) -> None:
            _refuse_later(fx, found, request=request, infno=infno, code="already_done",
                          reason="the application is audited already" if is_audit else
                          "the filing is on the platform already: change it with an update (GYU007)")

        return _later(waiting, event_id, "later", answer)

    # --- a device settlement ------------------------------------------------------------------------------------

    def _device(self, state: WorkInjuryState, case: DeviceCase) -> Action:
        cfg = self.config
        part = case.settlement
        if part is not None and part.open:
            def me(s: WorkInjuryState) -> Part | None:
                return s.device.settlement if s.device else None

            if not part.checked:
                record = {k: v for k, v in part.record.items() if k != "mdtrt_admdvs"}
                return _verdict(me, settlement.device_problem(cfg, record), request="device_settlement", infno="GYU303")
            if not case.verified:
                return settlement.device_check_call(cfg, state)
            return settlement.device_call(cfg, state)
        if case.later:
            def waiting(s: WorkInjuryState) -> list[Part]:
                assert s.device is not None
                return s.device.later

            def answer(s: WorkInjuryState, found: Part, fx: Effects) -> None:
                d = s.device
                assert d is not None
                if d.settlement is not None and d.settlement.status in ("invalid", "refused"):
                    d.settlement, d.verified = found, False
                    return
                _refuse_later(fx, found, request="device_settlement", infno="GYU303", code="already_done",
                              reason="the device settlement is on the platform already: revoke it first")

            return _later(waiting, case.later[0].event_id, "later", answer)
        revoke = next((r for r in case.revocations if r.open), None)
        if revoke is not None:
            event_id = revoke.event_id

            def rme(s: WorkInjuryState) -> Part | None:
                return next((r for r in s.device.revocations if r.event_id == event_id), None) if s.device else None

            if not case.settled:
                return _answer(rme, "nothing_to_revoke", "the device settlement is not on the platform",
                               request="revocation", infno=None)
            return _device_revoke_call(cfg, state, revoke)
        return Idle()

    # --- a month-end, an institution ----------------------------------------------------------------------------

    def _month(self, state: WorkInjuryState, case: MonthCase) -> Action:
        cfg = self.config
        part = next((p for p in case.parts if p.open), None)
        if part is None:
            return Idle()
        event_id = part.event_id

        def me(s: WorkInjuryState) -> Part | None:
            return next((p for p in s.month.parts if p.event_id == event_id), None) if s.month else None

        if case.done() is not None:
            return _answer(me, "already_done", f"the month-end of {case.month} is uploaded already (once per "
                                               "institution per month)", request="month_end", infno="GYU003")
        if not part.checked:
            return _verdict(me, monthend.month_problem(cfg, part), request="month_end", infno="GYU003")
        return monthend.month_call(cfg, state, part)

    def _org(self, state: WorkInjuryState, case: OrgCase) -> Action:
        cfg = self.config
        waiting = [p for p in case.parts if p.open]
        if not waiting:
            return Idle()
        chosen = next((p for p in waiting if p.checked), None)
        if chosen is not None:
            return institution.institution_call(cfg, state, chosen)
        latest = max(waiting, key=lambda p: p.occurred_at)
        older = [p.event_id for p in waiting if p.event_id != latest.event_id]
        if older:
            def supersede(s: WorkInjuryState, fx: Effects) -> None:
                for p in s.org.parts if s.org else []:
                    if p.event_id in older and p.open and not p.checked:
                        p.status = "superseded"
                        emit_result(fx, request="institution", kind="uploaded", ident=("institution", p.event_id),
                                    part=p, infno="GYU009", reason_code="superseded",
                                    reason="a later version of the institution went up instead")

            return Change("supersede older institution versions", supersede)
        event_id = latest.event_id

        def me(s: WorkInjuryState) -> Part | None:
            return next((p for p in s.org.parts if p.event_id == event_id), None) if s.org else None

        return _verdict(me, _org_problem(cfg, latest), request="institution", infno="GYU009")

    # --- a download stream --------------------------------------------------------------------------------------

    def _stream(self, state: WorkInjuryState, st: StreamState, now: _dt.datetime) -> Action:
        cfg = self.config
        if st.pending:
            return download.confirm_call(cfg, state)
        if st.lost:
            return download.redownload_call(cfg, state)
        if st.infno not in cfg.streams:
            return Idle()
        if st.phase == "check":
            return download.check_call(cfg, state)
        if st.follow_ups and st.phase != "idle":
            return download.follow_call(cfg, state)
        if st.phase == "fetch":
            return download.fetch_call(cfg, state)
        if st.phase == "done":
            return download.end_poll(cfg)
        if st.follow_ups:
            return download.start_poll()
        if st.next_poll_at is None or now >= st.next_poll_at:
            return download.start_poll()
        return Wait(f"{st.infno}: next poll", until=st.next_poll_at)

    # --- parking ------------------------------------------------------------------------------------------------

    def on_parked(self, state: WorkInjuryState, fx: Effects, reason_code: str, reason: str) -> None:
        """HIS hears that what the case was doing is parked (ops replays it with `yibao replay chains`)."""
        state.parked = Failure(reason_code=reason_code, reason=mask_text(reason))
        open_parts = _open_parts(state)
        for request, part in open_parts[:20]:
            emit_result(fx, request=request, kind="parked", ident=(request, part.event_id, "parked", fx.version),
                        part=part, reason_code=reason_code, reason=mask_text(reason))
        if not open_parts:
            emit_result(fx, request=state.kind, kind="parked", ident=("parked", fx.version), reason_code=reason_code,
                        reason=mask_text(reason))


def _open_parts(state: WorkInjuryState) -> list[tuple[str, Part]]:
    parts: list[tuple[str, Part]] = []
    if state.stay is not None:
        s = state.stay
        if s.admission is not None and s.admission.open:
            parts.append(("admission", s.admission))
        parts += [(request_label(r), r) for r in s.requests if r.open]
    if state.filing is not None:
        f = state.filing
        for name, part in (("filing_audit", f.audit), ("filing", f.filing)):
            if part is not None and part.open:
                parts.append((name, part))
        parts += [("filing_update", u) for u in f.updates if u.open]
    if state.device is not None and state.device.settlement is not None and state.device.settlement.open:
        parts.append(("device_settlement", state.device.settlement))
    if state.month is not None:
        parts += [("month_end", p) for p in state.month.parts if p.open]
    if state.org is not None:
        parts += [("institution", p) for p in state.org.parts if p.open]
    return parts


def _attachments_failed(state: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
    """An attachment batch was refused: the record that needed it is answered when it is next decided."""


def _resolve_conflict(cfg: ChainConfig, key: str) -> Change[WorkInjuryState]:
    """A later version of a fee line: it replaces an original that ended off the platform; an original on the
    platform stays, and the new version is refused (revoke the details first)."""
    def apply(s: WorkInjuryState, fx: Effects) -> None:
        st = s.stay
        assert st is not None
        line = st.lines.get(key)
        if line is None or not line.open:
            return
        original = st.lines.get(line.fee_sn)
        if original is not None and original.batch is not None:
            return  # still in flight
        if original is not None and original.status == "done":
            line.status, line.reason_code = "refused", "already_done"
            line.reason = (f"fee_sn {line.fee_sn} is on the platform already: revoke the stay's details first "
                           "(revocation target details), then send the lines again")
            count_records(fx, "GYU102", "refused")
        else:
            moved = line.model_copy(update={"conflict": False})
            st.lines[line.fee_sn] = moved
            line.status = "superseded"
            for tally in st.tallies.values():
                tally.sns = [line.fee_sn if sn == key else sn for sn in tally.sns]
            del st.lines[key]
        details.answer_tallies(cfg, st, fx)

    return Change(f"conflict:{key[-12:]}", apply)


def _org_problem(cfg: ChainConfig, part: Part) -> str | None:
    from yibao.workinjury_sync.steps.common import check_record

    problem = check_record(cfg, "GYU009", "org_list", part.record)
    if problem is not None:
        return problem
    if str(part.record.get("agreement_end")) < str(part.record.get("agreement_begin")):
        return "org_list.agreement_end: before agreement_begin"
    return None


def _device_revoke_call(cfg: ChainConfig, state: WorkInjuryState, part: Part) -> Call[WorkInjuryState]:
    from yibao.chains.model import Reply
    from yibao.workinjury_sync.steps.common import lookup, open_part

    event_id = part.event_id
    current = open_part(lambda s: s.device.revocations if s.device else (), event_id)

    def on_ok(s: WorkInjuryState, reply: Reply, fx: Effects) -> None:
        r = current(s)
        if r is None or s.device is None:
            return
        s.device.settled = False
        if s.device.settlement is not None:
            s.device.settlement.status = "revoked"
        r.status, r.trans_no, r.done_at = "done", reply.msgid, fx.now
        emit_result(fx, request="revocation", kind="revoked", ident=("revocation", event_id), part=r,
                    infno="GYR003", trans_no=reply.msgid, detail={"target": "settlement", "device": True})

    def on_refused(s: WorkInjuryState, refusal: Refusal, fx: Effects) -> None:
        r = current(s)
        if r is not None:
            refuse(fx, r, refusal, request="revocation", infno="GYR003")

    body = {"data": {"org_code": part.record.get("org_code") or cfg.org_code, "setl_no": part.record["setl_no"],
                     "revoke_reason": part.record.get("reason")}}
    return Call(f"GYR003:{stable_id(event_id)[:16]}", "GYR003", body, on_ok=on_ok, on_refused=on_refused,
                lookup=lookup("GYR003"))
