"""``next_action`` as a pure function of a visit's state: one test per rule of the chain's order."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from unit.registration.registration_support import T0, Events, config, diagnosis
from yibao.chains.model import Call, Change, Effects, Idle, Wait
from yibao.registration.absorb import apply_event, apply_fact
from yibao.registration.chain import RegistrationChain
from yibao.registration.state import Person, RegistrationState
from yibao.core.results import SettlementFact

PERSON = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")
NOW = T0 + _dt.timedelta(hours=1)


def _visit(kind: str = "outpatient", *events: Any, **changes: Any) -> RegistrationState:
    state = RegistrationState(kind=kind)  # type: ignore[arg-type]
    for event in events:
        apply_event(state, event, T0)
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def _registered(kind: str = "outpatient", *events: Any, **changes: Any) -> RegistrationState:
    ev = Events("O1" if kind == "outpatient" else "I1")
    first = ev.registered() if kind == "outpatient" else ev.admission()
    return _visit(kind, first, *events, **{"person": PERSON, "mdtrt_id": "M1", "status": "registered", **changes})


def _next(state: RegistrationState, now: _dt.datetime = NOW, **cfg: Any) -> Any:
    return RegistrationChain(config(**cfg)).next_action(state, now)


def _with_phase(state: RegistrationState, phase: str) -> RegistrationState:
    state.requests[0].phase = phase  # type: ignore[assignment]
    return state


def _fx(state: RegistrationState) -> Effects:
    return Effects("registration", "V", state.kind, NOW)


# --- before and during the registration -------------------------------------------------------------------------

def test_nothing_happens_before_the_registration_event() -> None:
    assert isinstance(_next(_visit()), Wait)


def test_requests_without_a_registration_wait_until_the_orphan_deadline() -> None:
    visit = _visit("outpatient", Events().cancellation())
    action = _next(visit, now=T0 + _dt.timedelta(seconds=10), orphan_timeout=_dt.timedelta(seconds=60))
    assert isinstance(action, Wait) and action.until == T0 + _dt.timedelta(seconds=60)


def test_requests_without_a_registration_are_refused_after_the_orphan_deadline() -> None:
    visit = _visit("outpatient", Events().cancellation())
    action = _next(visit, now=T0 + _dt.timedelta(seconds=61), orphan_timeout=_dt.timedelta(seconds=60))
    assert isinstance(action, Change) and action.name == "orphans"


def test_a_self_pay_registration_is_a_local_change() -> None:
    action = _next(_visit("outpatient", Events().registered(settle_choice="self_pay")))
    assert isinstance(action, Change) and action.name == "self_pay"


def test_a_registration_without_a_credential_is_refused_locally() -> None:
    action = _next(_visit("outpatient", Events().registered(mdtrt_cert_no=None)))
    assert isinstance(action, Change) and action.name == "no_credential"


def test_the_person_is_looked_up_first() -> None:
    action = _next(_visit("outpatient", Events().registered()))
    assert isinstance(action, Call) and action.infno == "1101"


def test_the_treatment_check_follows_the_person_when_configured() -> None:
    visit = _visit("outpatient", Events().registered(), person=PERSON)
    assert _next(visit).infno == "2201"
    assert _next(visit, treatment_check=True).infno == "2001"


def test_outpatients_register_with_2201_and_inpatients_with_2401() -> None:
    assert _next(_visit("outpatient", Events().registered(), person=PERSON)).infno == "2201"
    assert _next(_visit("inpatient", Events("I1").admission(), person=PERSON)).infno == "2401"


def test_steps_carry_the_persons_insurance_area() -> None:
    step = _next(_visit("outpatient", Events().registered(), person=PERSON))
    assert (step.psn_no, step.insuplc_admdvs) == ("P1", "440106")


def test_a_registration_in_progress_keeps_its_step_when_a_cancellation_arrives() -> None:
    ev = Events()
    visit = _visit("outpatient", ev.registered(), ev.cancellation(), person=PERSON)
    action = _next(visit)
    assert isinstance(action, Call) and action.name == "2201"


def test_the_same_state_chooses_the_same_step_name() -> None:
    ev = Events()
    visit = _registered("outpatient", ev.cancellation())
    visit = _with_phase(visit, "unwound")
    assert _next(visit).name == _next(visit).name


# --- outpatient visit information ---------------------------------------------------------------------------------

def test_visit_information_with_a_diagnosis_is_uploaded_once_registered() -> None:
    visit = _registered("outpatient", Events().visit_info(diagnosis()))
    action = _next(visit)
    assert isinstance(action, Call) and action.infno == "2203"


def test_visit_information_without_a_diagnosis_waits() -> None:
    assert isinstance(_next(_registered("outpatient", Events().visit_info(med_type="11"))), Wait)


def test_uploaded_visit_information_leaves_the_visit_idle() -> None:
    visit = _registered("outpatient", Events().visit_info(diagnosis()))
    state = visit
    state.visit_info.uploaded_version = state.visit_info.version
    assert isinstance(_next(visit), Idle)


def test_visit_information_goes_before_a_request_that_has_not_reached_its_platform_step() -> None:
    ev = Events()
    visit = _registered("outpatient", ev.visit_info(diagnosis()), ev.cancellation())
    assert _next(visit).infno == "2203"  # settlement's settlement requests (before the 退号) wait for 2203


def test_a_request_at_its_platform_step_keeps_it_ahead_of_visit_information() -> None:
    ev = Events()
    visit = _with_phase(_registered("outpatient", ev.cancellation(), ev.visit_info(diagnosis())), "unwound")
    assert _next(visit).infno == "2202"  # a lost 2202 answer is resolved by 2202's own policy, never superseded


# --- rollbacks ----------------------------------------------------------------------------------------------------

def test_a_cancellation_first_asks_settlement_to_unwind() -> None:
    action = _next(_registered("outpatient", Events().cancellation()))
    assert isinstance(action, Change) and action.name.startswith("unwind:")


def test_a_cancellation_waits_for_settlements_answer() -> None:
    action = _next(_with_phase(_registered("outpatient", Events().cancellation()), "unwinding"))
    assert isinstance(action, Wait) and action.until is None


def test_unwound_by_settlement_the_registration_is_cancelled_with_2202() -> None:
    action = _next(_with_phase(_registered("outpatient", Events().cancellation()), "unwound"))
    assert isinstance(action, Call) and action.infno == "2202"


def test_refused_by_settlement_the_cancellation_is_rejected() -> None:
    action = _next(_with_phase(_registered("outpatient", Events().cancellation()), "refused"))
    assert isinstance(action, Change) and action.name.startswith("reject:")


def test_settlements_answer_is_matched_to_its_request() -> None:
    visit = _with_phase(_registered("outpatient", Events().cancellation(request_id="C1")), "unwinding")
    state = visit
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="O1", visit_kind="outpatient", kind="unwound",
                                     his_request_id="C-other"))
    assert state.requests[0].phase == "unwinding"
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="O1", visit_kind="outpatient", kind="unwound",
                                     his_request_id="C1"))
    assert state.requests[0].phase == "unwound"


def test_a_cancelled_visit_refuses_further_requests() -> None:
    action = _next(_registered("outpatient", Events().cancellation(request_id="C2"), status="cancelled"))
    assert isinstance(action, Change) and action.name.startswith("reject:")


# --- inpatient ----------------------------------------------------------------------------------------------------

def test_a_discharge_first_asks_settlement_to_upload_the_stays_lines() -> None:
    action = _next(_registered("inpatient", Events("I1").discharge()))
    assert isinstance(action, Change) and action.name.startswith("discharge:")


def test_a_discharge_waits_for_settlement_until_the_discharge_deadline() -> None:
    visit = _with_phase(_registered("inpatient", Events("I1").discharge()), "settling")
    action = _next(visit, now=T0 + _dt.timedelta(seconds=10), discharge_wait=_dt.timedelta(seconds=60))
    assert isinstance(action, Wait) and action.until == T0 + _dt.timedelta(seconds=60)  # received at T0


def test_past_the_discharge_deadline_2402_goes_without_settlement_and_says_why() -> None:
    visit = _with_phase(_registered("inpatient", Events("I1").discharge()), "settling")
    action = _next(visit, now=T0 + _dt.timedelta(seconds=61), discharge_wait=_dt.timedelta(seconds=60))
    assert isinstance(action, Change) and action.name.startswith("discharge_anyway:")
    action.apply(visit, _fx(visit))
    request = visit.requests[0]
    assert request.phase == "ready" and "60 s" in (request.reason or "")


def test_settlement_ready_the_discharge_is_sent_with_2402() -> None:
    visit = _with_phase(_registered("inpatient", Events("I1").discharge()), "settling")
    state = visit
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="I1", visit_kind="inpatient",
                                     kind="ready_for_discharge", his_request_id=state.requests[0].id))
    assert _next(visit).infno == "2402"


def test_settlements_reopen_request_sends_2405_then_the_discharge_again() -> None:
    ev = Events("I1")
    visit = _with_phase(_registered("inpatient", ev.discharge(), discharged=True), "done")
    state = visit
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="I1", visit_kind="inpatient",
                                     kind="reopen_requested", his_request_id="S9", reason="2 lines after 2402"),
               NOW)
    assert _next(visit).infno == "2405"
    state = visit
    reopen = state.request("S9", "reopen")
    assert reopen is not None and reopen.event == state.requests[0].event  # the same discharge, sent again
    reopen.phase, state.discharged = "unwound", False
    action = _next(visit)
    assert isinstance(action, Change) and action.name.startswith("discharge:")


def test_a_reopen_of_a_stay_that_is_not_discharged_is_refused_to_settlement() -> None:
    visit = _registered("inpatient")
    state = visit
    apply_fact(state, SettlementFact(message_id="m", his_visit_id="I1", visit_kind="inpatient",
                                     kind="reopen_requested", his_request_id="S9"), NOW)
    action = _next(visit)
    assert isinstance(action, Change) and action.name.startswith("reopen_refused:")


def test_a_second_discharge_is_out_of_order() -> None:
    action = _next(_registered("inpatient", Events("I1").discharge(), discharged=True))
    assert isinstance(action, Change) and action.name.startswith("reject:")


def test_an_admission_change_is_sent_with_2403_while_in_the_ward() -> None:
    assert _next(_registered("inpatient", Events("I1").admission_changed(adm_bed="1"))).infno == "2403"


def test_an_admission_change_after_discharge_is_out_of_order() -> None:
    action = _next(_registered("inpatient", Events("I1").admission_changed(adm_bed="1"), discharged=True))
    assert isinstance(action, Change) and action.name.startswith("reject:")


def test_cancelling_a_discharge_needs_a_discharge() -> None:
    action = _next(_registered("inpatient", Events("I1").cancellation("discharge")))
    assert isinstance(action, Change) and action.name.startswith("reject:")


def test_cancelling_an_admission_needs_the_discharge_cancelled_first() -> None:
    action = _next(_registered("inpatient", Events("I1").cancellation("admission"), discharged=True))
    assert isinstance(action, Change) and action.name.startswith("reject:")


def test_unwound_discharge_cancellation_sends_2405_and_admission_cancellation_2404() -> None:
    discharge = _with_phase(_registered("inpatient", Events("I1").cancellation("discharge"), discharged=True),
                            "unwound")
    admission = _with_phase(_registered("inpatient", Events("I1").cancellation("admission")), "unwound")
    assert _next(discharge).infno == "2405"
    assert _next(admission).infno == "2404"


# --- identity -------------------------------------------------------------------------------------------------------

def test_a_switch_to_self_pay_of_a_registered_visit_unwinds_like_a_cancellation() -> None:
    ev = Events()
    first = ev.registered()
    visit = _visit("outpatient", first, first.model_copy(update={"event_id": "ev-switch-x1", "settle_choice":
                                                                  "self_pay"}),
                   person=PERSON, mdtrt_id="M1", status="registered")
    action = _next(visit)
    assert isinstance(action, Change) and action.name.startswith("unwind:")


def test_a_switch_to_insurance_is_refused() -> None:
    ev = Events()
    first = ev.registered(settle_choice="self_pay")
    visit = _visit("outpatient", first, first.model_copy(update={"event_id": "ev-switch-x2", "settle_choice":
                                                                  "insurance"}), status="self_pay")
    action = _next(visit)
    assert isinstance(action, Change) and action.name.startswith("reject:")
