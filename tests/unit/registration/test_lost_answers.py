"""How a lost answer of each registration call is resolved: the catalog decides (sent again, or looked up), each
call that needs a lookup gives one with the catalog's query, and each lookup accepts exactly the proof it should."""

from __future__ import annotations

import datetime as _dt

import pytest

from unit.registration.registration_support import T0, Events, config, diagnosis
from yibao.chains.model import Call
from yibao.envelope.catalog import Catalog
from yibao.hisevents.models import HisEventBase
from yibao.registration.absorb import apply_event
from yibao.registration.state import Person, RegistrationState
from yibao.registration.steps import admission_change, cancel, discharge, person, register, visit_info
from yibao.registration.steps.cancel import found_cancelled
from yibao.registration.steps.discharge import found_discharged, found_in_ward
from yibao.registration.steps.register import found_admission, found_registration

PERSON = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")
CATALOG = Catalog.load(None)
CFG = config()


def _state(kind: str, *events: HisEventBase, **changes: object) -> RegistrationState:
    state = RegistrationState(kind=kind)  # type: ignore[arg-type]
    for event in events:
        apply_event(state, event, T0)
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def _every_call() -> list[Call[RegistrationState]]:
    ev, evi = Events(), Events("I1")
    out = _state("outpatient", ev.registered(), ev.visit_info(diagnosis()), ev.cancellation(), person=PERSON,
                 mdtrt_id="M1", status="registered")
    inp = _state("inpatient", evi.admission(), evi.discharge(), evi.admission_changed(adm_bed="2"),
                 evi.cancellation("discharge", "C2"), person=PERSON, mdtrt_id="M2", status="registered")
    fresh_in = _state("inpatient", evi.admission(), person=PERSON)
    return [person.person_call(CFG, out), person.treatment_call(CFG, out), register.register_call(CFG, out),
            register.register_call(CFG, fresh_in), visit_info.visit_info_call(CFG, out),
            cancel.cancel_call(CFG, out, out.requests[0]), cancel.cancel_call(CFG, inp, inp.requests[2]),
            discharge.discharge_call(CFG, inp, inp.requests[0]),
            discharge.cancel_discharge_call(CFG, inp, inp.requests[2]),
            admission_change.admission_change_call(CFG, inp, inp.requests[1]), visit_info.filings_call(PERSON)]


def test_every_registration_call_is_one_the_catalog_can_resolve() -> None:
    calls = _every_call()
    assert {c.infno for c in calls} == {"1101", "2001", "2201", "2401", "2203", "2202", "2404", "2402", "2405", "2403",
                                        "5301"}
    for call in calls:
        assert CATALOG.transaction(call.infno).resolution in ("retry", "query"), call.infno


def test_each_call_looked_up_gives_a_lookup_with_the_catalogs_query_and_a_valid_input() -> None:
    for call in _every_call():
        spec = CATALOG.transaction(call.infno)
        if spec.resolution == "retry":
            continue
        assert call.lookup is not None, call.infno
        assert spec.lost_answer is not None and call.lookup.infno == spec.lost_answer.query, call.infno
        CATALOG.prepare_input(call.lookup.infno, call.lookup.input)


@pytest.mark.parametrize(("infno", "query"), [("2201", "5201"), ("2401", "5303"), ("2402", "5201"),
                                              ("2202", "5201"), ("2404", "5201"), ("2405", "5201")])
def test_calls_that_change_the_platform_are_looked_up(infno: str, query: str) -> None:
    spec = CATALOG.transaction(infno)
    assert spec.resolution == "query" and spec.lost_answer is not None and spec.lost_answer.query == query


@pytest.mark.parametrize("infno", ["1101", "2001", "2203", "2403", "5301"])
def test_reads_and_overwritten_updates_are_simply_sent_again(infno: str) -> None:
    assert CATALOG.transaction(infno).resolution == "retry"


def test_registration_never_reverses_with_2601() -> None:
    assert not any(CATALOG.transaction(c.infno).reversible for c in _every_call())


def test_lookups_carry_the_persons_insurance_area_and_rollbacks_look_up_by_mdtrt_id() -> None:
    ev = Events()
    state = _state("outpatient", ev.registered(), ev.cancellation(), person=PERSON, mdtrt_id="M1",
                   status="registered")
    call = cancel.cancel_call(CFG, state, state.requests[0])
    assert call.insuplc_admdvs == "440106" and call.lookup is not None
    assert call.lookup.input["data"]["mdtrt_id"] == "M1"


def test_the_lookup_window_surrounds_the_visits_begntime() -> None:
    state = _state("outpatient", Events().registered(), person=PERSON)
    lookup = register.register_call(config(query_window=_dt.timedelta(hours=2)), state).lookup
    assert lookup is not None
    begn = state.registration_event().begntime
    assert lookup.input["data"]["begntime"] == begn - _dt.timedelta(hours=2)
    assert lookup.input["data"]["endtime"] == begn + _dt.timedelta(hours=2)


# --- what each lookup accepts as proof ----------------------------------------------------------------------------

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
