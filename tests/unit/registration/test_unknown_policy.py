"""The documented unknown-outcome policy of the registration steps, and the queries that resolve it."""

from __future__ import annotations

import datetime as _dt

import pytest

from unit.registration.registration_support import T0, Events, config
from yibao.chains.model import Visit
from yibao.envelope.catalog import Catalog
from yibao.registration import inputs
from yibao.registration.absorb import apply_event
from yibao.registration.state import Person, RegistrationState, save_state
from yibao.registration.steps import (
    UNKNOWN_POLICIES,
    found_admission,
    found_cancelled,
    found_discharged,
    found_in_ward,
    found_registration,
    person_step,
    register_step,
    rollback_step,
    visit_info_step,
)

PERSON = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")
CATALOG = Catalog.load(None)


def test_every_platform_step_of_the_chain_has_a_documented_policy() -> None:
    assert set(UNKNOWN_POLICIES) == {"1101", "2001", "2201", "2202", "2203", "2401", "2402", "2403", "2404", "2405"}
    assert all(row.reason for row in UNKNOWN_POLICIES.values())


@pytest.mark.parametrize("infno", ["1101", "2001", "2203", "2403"])
def test_reads_and_overwritten_updates_are_simply_sent_again(infno: str) -> None:
    assert UNKNOWN_POLICIES[infno].kind == "retry"


@pytest.mark.parametrize(("infno", "query"), [("2201", "5201"), ("2401", "5303"), ("2402", "5201"),
                                              ("2202", "5201"), ("2404", "5201"), ("2405", "5201")])
def test_steps_that_change_the_platform_are_resolved_by_query(infno: str, query: str) -> None:
    assert (UNKNOWN_POLICIES[infno].kind, UNKNOWN_POLICIES[infno].query_infno) == ("query", query)


def test_registration_never_reverses_with_2601() -> None:
    assert not any(row.kind in ("reverse", "query_then_reverse") for row in UNKNOWN_POLICIES.values())


def _visit(kind: str, *events: object, **changes: object) -> tuple[Visit, RegistrationState]:
    state = RegistrationState(kind=kind)  # type: ignore[arg-type]
    for event in events:
        apply_event(state, event, T0)  # type: ignore[arg-type]
    for name, value in changes.items():
        setattr(state, name, value)
    visit = Visit(service="registration", key="V", kind=kind, state={})
    save_state(visit, state)
    return visit, state


def test_the_steps_use_the_policy_of_the_table() -> None:
    ev = Events()
    visit, state = _visit("outpatient", ev.registered(), person=PERSON)
    assert person_step(config(), visit, state).unknown.kind == "retry"
    step = register_step(config(), visit, state)
    assert step.unknown.kind == "query"
    spec = step.unknown.query(visit, "omsgid")  # type: ignore[misc]
    assert spec.infno == "5201" and spec.insuplc_admdvs == "440106"
    CATALOG.prepare_input("5201", spec.input)


def test_the_admission_query_is_5303_and_passes_the_catalog() -> None:
    visit, state = _visit("inpatient", Events("I1").admission(), person=PERSON)
    spec = register_step(config(), visit, state).unknown.query(visit, "m")  # type: ignore[misc]
    assert spec.infno == "5303"
    CATALOG.prepare_input("5303", spec.input)


def test_the_query_window_surrounds_the_visits_begntime() -> None:
    body = inputs.q_5201("P1", T0, _dt.timedelta(hours=2), mdtrt_id="M1")["data"]
    assert body["begntime"] == T0 - _dt.timedelta(hours=2) and body["endtime"] == T0 + _dt.timedelta(hours=2)


def test_rollback_steps_query_by_mdtrt_id() -> None:
    ev = Events()
    visit, state = _visit("outpatient", ev.registered(), ev.cancellation(), person=PERSON, mdtrt_id="M1",
                          status="registered")
    state.requests[0].phase = "unwound"
    step = rollback_step(config(), visit, state, state.requests[0])
    assert step.infno == "2202" and step.unknown.kind == "query"
    assert step.unknown.query(visit, "m").input["data"]["mdtrt_id"] == "M1"  # type: ignore[misc]


def test_visit_information_is_retried() -> None:
    from unit.registration.registration_support import diagnosis

    ev = Events()
    visit, state = _visit("outpatient", ev.registered(), ev.visit_info(diagnosis()), person=PERSON, mdtrt_id="M1",
                          status="registered")
    assert visit_info_step(config(), visit, state).unknown.kind == "retry"


# --- what each query accepts as proof -----------------------------------------------------------------------------

def test_a_valid_visit_with_our_ipt_otp_no_is_the_lost_registration() -> None:
    found = found_registration("MZ1")
    out = {"mdtrtinfo": [{"mdtrt_id": "A", "ipt_otp_no": "MZ0", "vali_flag": "1"},
                         {"mdtrt_id": "B", "ipt_otp_no": "MZ1", "vali_flag": "1", "psn_no": "P1"}]}
    assert found(out, "m") == {"data": {"mdtrt_id": "B", "psn_no": "P1", "ipt_otp_no": "MZ1"}}


def test_a_cancelled_visit_with_our_ipt_otp_no_is_not_adopted() -> None:
    assert found_registration("MZ1")({"mdtrtinfo": [{"mdtrt_id": "B", "ipt_otp_no": "MZ1", "vali_flag": "0"}]},
                                     "m") is None


def test_no_visit_means_the_registration_did_not_happen() -> None:
    assert found_registration("MZ1")({"mdtrtinfo": []}, "m") is None


def test_an_open_admission_with_our_ipt_no_is_the_lost_admission() -> None:
    assert found_admission("ZY1")({"data": [{"mdtrt_id": "C", "ipt_otp_no": "ZY1"}]}, "m") == {
        "data": {"mdtrt_id": "C"}}
    assert found_admission("ZY1")({"data": [{"mdtrt_id": "C", "ipt_otp_no": "ZY2"}]}, "m") is None


def test_a_discharge_time_proves_the_discharge() -> None:
    found = found_discharged("M1")
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "endtime": "2026-03-02 10:00:00"}]}, "m") == {}
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "endtime": ""}]}, "m") is None


def test_no_discharge_time_proves_the_discharge_cancelled() -> None:
    found = found_in_ward("M1")
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "endtime": "", "inhosp_stas": "1"}]}, "m") == {}
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "endtime": "2026-03-02 10:00:00"}]}, "m") is None


def test_vali_flag_0_proves_a_cancellation_and_absence_does_not() -> None:
    found = found_cancelled("M1")
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "vali_flag": "0"}]}, "m") == {}
    assert found({"mdtrtinfo": [{"mdtrt_id": "M1", "vali_flag": "1"}]}, "m") is None
    assert found({"mdtrtinfo": []}, "m") is None
