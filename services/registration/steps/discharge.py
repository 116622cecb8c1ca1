"""出院 (2402) and 出院撤销 (2405): HIS's discharge and its cancellation, and the stay reopened when something must
reach the platform that it takes only in the ward.

* **2402** — settlement is asked first (``discharge_requested``: 2301 is refused after 2402, so it uploads every
  charge line of the stay that has arrived) and answers ``ready_for_discharge``; 2402 follows — or after
  ``discharge_wait`` without an answer (a stopped worker must not hold the discharge back; the reason is kept in
  the result). Lost answer: 5201 shows the visit's discharge time when it took effect.
* **2405** for HIS's 取消出院, once settlement unwound (no final settlement stands); lost answer: 5201 shows the
  visit in the ward again (no discharge time).
* **reopen** — settlement's ``reopen_requested`` (charge lines of the stay arrived after its 2402: 2405, the lines
  go up, then 2402 again by the same request), or an admission change dated before the discharge that arrived
  after it (2405, the 2403, then the discharge again).
"""

from __future__ import annotations

import logging
from typing import Any

from yibao.chains.model import Call, Change, Effects, Refusal, Reply
from yibao.core import clock
from yibao.hisevents.models import Discharge
from yibao.registration.config import ChainConfig
from yibao.registration.results import ON_HIS_EVENTS, close_request, emit_fact, emit_result
from yibao.registration.state import RegistrationState, Request
from yibao.registration.steps.common import blank, compact, lookup_5201, request_label, request_refused, visit_row
from yibao.registration.steps.inpatient import admission, diagnosis_row, diagnosis_rows

__all__ = ["ask_discharge", "discharge_anyway", "discharge_call", "cancel_discharge_call", "reopen_call",
           "reopen_refused", "found_discharged", "found_in_ward"]

log = logging.getLogger(__name__)

_DISCHARGE_FIELDS = ("dise_codg", "dise_name", "oprn_oprt_code", "oprn_oprt_name", "fpsc_no", "matn_type",
                     "birctrl_type", "latechb_flag", "geso_val", "fetts", "fetus_cnt", "pret_flag",
                     "birctrl_matn_date", "cop_flag", "dscg_bed", "dscg_way", "die_date")


# --- asking settlement first ------------------------------------------------------------------------------------

def ask_discharge(request: Request) -> Change[RegistrationState]:
    """Ask settlement to upload the stay's lines before the 2402; the HIS discharge's own time goes with it, so
    settlement queues it among the HIS requests it got directly."""
    request_id, kind = request.id, request.kind

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or current.phase not in ("new", "unwound"):
            return
        event = current.parsed()
        assert isinstance(event, Discharge)
        current.phase, current.asked_at = "settling", fx.now
        person = s.person
        emit_fact(fx, "discharge_requested", (*current.ident, "asked"), his_request_id=current.id,
                  occurred_at=current.occurred_at, endtime=event.endtime, mdtrt_id=s.mdtrt_id,
                  psn_no=person.psn_no if person else None, on_his_events=current.kind in ON_HIS_EVENTS)

    return Change(f"discharge:{request.tag}", apply)


def discharge_anyway(request: Request, reason: str) -> Change[RegistrationState]:
    """Settlement did not confirm within ``discharge_wait``: 2402 goes without it. Lines arriving later, and lines
    whose 2301 was still on its way (the platform refuses it after the 2402), are uploaded by reopening the stay
    (settlement's ``reopen_requested``)."""
    request_id, kind = request.id, request.kind

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or current.phase != "settling":
            return
        current.phase, current.reason = "ready", reason
        fx.after_commit(lambda: log.warning("discharge sent without settlement's confirmation",
                                            extra={"fields": {"service": "registration", "reason": reason}}))

    return Change(f"discharge_anyway:{request.tag}", apply)


# --- 2402 -------------------------------------------------------------------------------------------------------

def _input(s: RegistrationState, mdtrt_id: str, discharge: Discharge) -> dict[str, Any]:
    person, adm = s.person, admission(s)
    assert person is not None
    dscginfo = compact({
        "mdtrt_id": mdtrt_id, "psn_no": person.psn_no, "insutype": person.insutype, "endtime": discharge.endtime,
        **{k: getattr(discharge, k) for k in _DISCHARGE_FIELDS},
        "dscg_dept_codg": discharge.dscg_dept_codg or adm.adm_dept_codg,
        "dscg_dept_name": discharge.dscg_dept_name or adm.adm_dept_name,
    })
    source = list(discharge.diagnoses) or list(s.admission_diagnoses.values())
    diseinfo = []
    for d in diagnosis_rows(adm, source):
        row = diagnosis_row(d, adm, person.psn_no, mdtrt_id)
        row.pop("adm_cond", None)  # 2402 diseinfo has no adm_cond
        row["diag_dept"] = d.diag_dept or dscginfo.get("dscg_dept_name")
        row["diag_time"] = d.diag_time or discharge.endtime
        diseinfo.append(compact(row))
    return {"dscginfo": dscginfo, "diseinfo": diseinfo}


def discharge_call(cfg: ChainConfig, state: RegistrationState, request: Request) -> Call[RegistrationState]:
    """2402 出院, for HIS's discharge, or again at the end of a reopening."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    discharge = request.parsed()
    assert isinstance(discharge, Discharge)
    request_id, kind, ident = request.id, request.kind, request.ident

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or not current.active:
            if not s.discharged:  # the platform discharged the stay all the same: settlement must hear it
                s.discharged, s.endtime = True, discharge.endtime
                emit_fact(fx, "discharged", ident, psn_no=person.psn_no, mdtrt_id=mdtrt_id,
                          endtime=discharge.endtime, his_request_id=request_id)
            return
        current.phase = "done"
        s.discharged, s.endtime = True, discharge.endtime
        detail: dict[str, Any] = {"endtime": clock.format_datetime(discharge.endtime)}
        if kind == "reopen":  # HIS did not ask: it is told why its stay was discharged once more
            detail["reopened_for_settlement"] = request_id
        if current.reason:
            detail["settlement_note"] = current.reason
        emit_result(fx, "discharged", ident, request=kind, since=current.received_at,
                    his_request_id=request_id if kind == "discharge" else None, step_infno="2402", msgid=reply.msgid,
                    psn_no=person.psn_no, mdtrt_id=mdtrt_id, detail=detail)
        emit_fact(fx, "discharged", ident, psn_no=person.psn_no, mdtrt_id=mdtrt_id, endtime=discharge.endtime,
                  his_request_id=request_id)
        close_request(fx, kind, request_id, current.occurred_at)

    def on_refused(s: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        if kind != "reopen":  # HIS is told; settlement hears the discharge is closed and uploads again
            request_refused(request_id, kind, "2402")(s, refusal, fx)
            return
        current = s.request(request_id, kind)
        if current is None or not current.active:
            return
        current.phase = "rejected"
        emit_fact(fx, "reopen_failed", ident, his_request_id=request_id,
                  reason=f"2402 after reopening the stay refused: {refusal.text}")

    return Call(f"2402:{request.tag}", "2402", _input(state, mdtrt_id, discharge), on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_5201(cfg, person, admission(state).begntime, found_discharged(mdtrt_id),
                                   mdtrt_id=mdtrt_id),
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


def found_discharged(mdtrt_id: str) -> Any:
    """5201 → 2402 took effect: our visit shows a discharge time."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = visit_row(output, mdtrt_id)
        if row is None or str(row.get("vali_flag") or "1") == "0":
            return None
        return {} if not blank(row.get("endtime")) else None

    return found


# --- 2405 -------------------------------------------------------------------------------------------------------

def _2405(cfg: ChainConfig, state: RegistrationState, request: Request, on_ok: Any, on_refused: Any
          ) -> Call[RegistrationState]:
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    return Call(f"2405:{request.tag}", "2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": person.psn_no}},
                on_ok=on_ok, on_refused=on_refused,
                lookup=lookup_5201(cfg, person, state.registration_event().begntime, found_in_ward(mdtrt_id),
                                   mdtrt_id=mdtrt_id),
                psn_no=person.psn_no, insuplc_admdvs=person.insuplc_admdvs)


def cancel_discharge_call(cfg: ChainConfig, state: RegistrationState, request: Request) -> Call[RegistrationState]:
    """2405 for HIS's 取消出院, once settlement unwound."""
    request_id, kind = request.id, request.kind
    person = state.person
    assert person is not None

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        current = s.request(request_id, kind)
        if current is None or not current.active:
            if s.discharged:  # the platform holds the stay in the ward all the same: settlement must hear it
                s.discharged, s.endtime = False, None
                emit_fact(fx, "discharge_cancelled", (kind, request_id), his_request_id=request_id,
                          psn_no=person.psn_no, mdtrt_id=s.mdtrt_id)
            return
        current.phase = "done"
        s.discharged, s.endtime = False, None
        ident = (current.kind, current.id)
        common = {"his_request_id": current.id, "psn_no": person.psn_no, "mdtrt_id": s.mdtrt_id}
        # settlement hears the stay is in the ward before it hears the request is closed: between the two it
        # must never take the stay for discharged (a final settlement would go to a stay in the ward)
        emit_fact(fx, "discharge_cancelled", ident, **common)
        close_request(fx, current.kind, current.id, current.occurred_at)
        emit_result(fx, "cancelled", ident, request=request_label(s, current), since=current.received_at,
                    step_infno="2405", msgid=reply.msgid, target="discharge", **common)

    return _2405(cfg, state, request, on_ok, request_refused(request_id, kind, "2405"))


def reopen_call(cfg: ChainConfig, state: RegistrationState, request: Request) -> Call[RegistrationState]:
    """2405 HIS did not ask for: settlement's reopening (the discharge is sent again by the same request
    afterwards), or a late admission change (the 2403 follows, then the discharge again, queued behind it)."""
    person, mdtrt_id = state.person, state.mdtrt_id
    assert person is not None and mdtrt_id is not None
    request_id, kind, ident = request.id, request.kind, request.ident
    phase = "new" if kind == "reopen" else "unwound"  # a late admission change: settlement agreed first

    def on_ok(s: RegistrationState, reply: Reply, fx: Effects) -> None:
        # the 2405 took effect: whatever became of the request meanwhile, the platform holds the stay in the ward
        # now, and settlement must hear it (it would otherwise take the stay for discharged and settle finally)
        current = s.request(request_id, kind)
        if current is not None and current.phase == phase and s.discharged:
            if kind == "reopen":
                current.phase = "unwound"
            else:
                _discharge_again(s, current, fx)
        s.discharged, s.endtime = False, None
        emit_fact(fx, "discharge_cancelled", ident, his_request_id=request_id, psn_no=person.psn_no,
                  mdtrt_id=mdtrt_id)

    def on_refused(s: RegistrationState, refusal: Refusal, fx: Effects) -> None:
        if kind != "reopen":  # HIS is told why its change could not be sent
            request_refused(request_id, kind, "2405")(s, refusal, fx)
            return
        current = s.request(request_id, "reopen")
        if current is None or current.phase != "new":
            return
        current.phase = "rejected"
        emit_fact(fx, "reopen_failed", ident, his_request_id=request_id, reason=f"2405 refused: {refusal.text}")

    return _2405(cfg, state, request, on_ok, on_refused)


def _discharge_again(s: RegistrationState, change: Request, fx: Effects) -> None:
    """Queue the stay's discharge once more, behind the late admission change its 2405 made room for: a reopen
    request already past its 2405 (phase ``unwound``), carrying the last discharge."""
    last = s.last_discharge()
    assert last is not None  # the stay was discharged: that is why its 2405 ran
    s.add_request(Request(id=f"{change.id}:dscg", kind="reopen", event=last.event, occurred_at=last.occurred_at,
                          received_at=fx.now, seq=s.next_seq(), phase="unwound",
                          reason="discharged again after the admission change (2403) dated before the discharge"))


def reopen_refused(request: Request, reason: str) -> Change[RegistrationState]:
    """Settlement asked to reopen a stay the platform does not hold discharged (HIS's 取消出院 got there first):
    nothing to reopen — settlement uploads its lines and waits for the discharge (``reopen_not_needed``)."""
    request_id = request.id

    def apply(s: RegistrationState, fx: Effects) -> None:
        current = s.request(request_id, "reopen")
        if current is None or not current.active:
            return
        current.phase, current.reason = "rejected", reason
        emit_fact(fx, "reopen_not_needed", current.ident, his_request_id=request_id, reason=reason)

    return Change(f"reopen_refused:{request.tag}", apply)


def found_in_ward(mdtrt_id: str) -> Any:
    """5201 → 2405 took effect: our visit is valid and has no discharge time any more."""
    def found(output: dict[str, Any], omsgid: str) -> dict[str, Any] | None:
        row = visit_row(output, mdtrt_id)
        if row is None or str(row.get("vali_flag") or "1") == "0":
            return None
        return {} if blank(row.get("endtime")) and str(row.get("inhosp_stas") or "1") != "0" else None

    return found
