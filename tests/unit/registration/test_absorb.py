"""Absorbing messages: what is routed to registration, how bad input is refused, and how events are recorded."""

from __future__ import annotations

import datetime as _dt
import json

import pytest

from unit.registration.registration_support import T0, Events, diagnosis
from yibao.core.errors import InputError
from yibao.core.results import SettlementFact
from yibao.registration.absorb import HIS_EVENT_TYPES, apply_event, apply_fact, route
from yibao.registration.state import RegistrationState


def test_registration_reacts_to_registration_visit_and_rollback_events_only() -> None:
    assert HIS_EVENT_TYPES == {"patient_registered", "visit_info", "admission", "admission_changed", "discharge",
                               "cancellation"}


def test_settlements_events_are_skipped_without_being_parsed() -> None:
    assert route("his_events", json.dumps({"type": "charge_line_added", "broken": True}).encode()) is None


def test_an_event_routes_to_its_visit_under_its_event_id() -> None:
    event = Events("O7").registered()
    absorption = route("his_events", event.to_json())
    assert absorption is not None
    assert (absorption.message_id, absorption.visit_key, absorption.visit_kind) == (f"his:{event.event_id}", "O7",
                                                                                    "outpatient")


@pytest.mark.parametrize("value", [b"not json", b"[1, 2]", json.dumps({"type": "patient_registered"}).encode()])
def test_unreadable_events_are_input_errors_and_get_parked(value: bytes) -> None:
    with pytest.raises(InputError):
        route("his_events", value)


def test_an_unreadable_settlement_fact_is_an_input_error() -> None:
    with pytest.raises(InputError):
        route("settlement_facts", b'{"kind": "unwound"}')


def test_the_reason_of_an_unreadable_event_never_echoes_its_values() -> None:
    raw = json.loads(Events().registered().to_json())
    raw["mdtrt_cert_no"] = 12345678901234567  # wrong type, personal value
    with pytest.raises(InputError) as err:
        route("his_events", json.dumps(raw).encode())
    assert "12345678901234567" not in str(err.value)


def test_other_topics_are_not_for_registration() -> None:
    assert route("visits", b"{}") is None


def _state() -> RegistrationState:
    return RegistrationState(kind="outpatient")


def test_visit_information_merges_diagnoses_by_type_and_number() -> None:
    state, ev = _state(), Events()
    apply_event(state, ev.visit_info(diagnosis(1, "J20.900", "急性支气管炎")), T0)
    apply_event(state, ev.visit_info(diagnosis(2, "I10.x00", "高血压", main=False)), T0)
    apply_event(state, ev.visit_info(diagnosis(1, "J18.900", "肺炎")), T0)  # the doctor corrected the first
    assert {k: d.diag_code for k, d in state.visit_info.diagnoses.items()} == {"1/1": "J18.900", "1/2": "I10.x00"}
    assert state.visit_info.version == 3


def test_a_withdrawn_diagnosis_stays_with_vali_flag_0() -> None:
    state, ev = _state(), Events()
    apply_event(state, ev.visit_info(diagnosis(1)), T0)
    apply_event(state, ev.visit_info(diagnosis(1, valid=False)), T0)
    assert state.visit_info.diagnoses["1/1"].vali_flag == "0"
    assert not state.visit_info.has_valid_diagnosis


def test_later_visit_fields_win_and_absent_ones_keep_the_earlier_value() -> None:
    state, ev = _state(), Events()
    apply_event(state, ev.visit_info(med_type="11", dise_codg="J20.900"), T0)
    apply_event(state, ev.visit_info(med_type="14"), T0)
    assert (state.visit_info.fields.med_type, state.visit_info.fields.dise_codg) == ("14", "J20.900")


def test_a_cancellation_is_one_request_however_often_it_arrives() -> None:
    state, ev = _state(), Events()
    apply_event(state, ev.cancellation(request_id="C1"), T0)
    apply_event(state, ev.cancellation(request_id="C1"), T0)
    assert [r.id for r in state.requests] == ["C1"]


def test_requests_queue_in_his_order_behind_the_one_being_served() -> None:
    state, ev = RegistrationState(kind="inpatient"), Events("I1")
    apply_event(state, ev.discharge(minutes=50), T0)  # the head
    apply_event(state, ev.admission_changed(adm_bed="2", minutes=40), T0)
    apply_event(state, ev.admission_changed(adm_bed="1", minutes=30), T0)
    assert [r.occurred_at.minute for r in state.requests] == [50, 30, 40]


def test_the_first_registration_event_sets_the_settlement_choice() -> None:
    state = _state()
    apply_event(state, Events().registered(settle_choice="self_pay"), T0)
    assert state.self_pay and state.registration_received_at == T0


def test_settlement_facts_record_active_settlements() -> None:
    state = _state()

    def fact(kind: str, setl_id: str) -> SettlementFact:
        return SettlementFact(message_id=kind + setl_id, his_visit_id="O1", visit_kind="outpatient", kind=kind,  # type: ignore[arg-type]
                              setl_id=setl_id)

    apply_fact(state, fact("settled", "S1"))
    apply_fact(state, fact("settled", "S1"))
    assert state.settlement.active_settlements == ["S1"]
    apply_fact(state, fact("settlement_cancelled", "S1"))
    assert state.settlement.active_settlements == []


def test_an_unwind_answer_with_no_request_waiting_is_ignored() -> None:
    state = _state()
    apply_fact(state, SettlementFact(message_id="x", his_visit_id="O1", visit_kind="outpatient", kind="unwound",
                                     his_request_id="C1"))
    assert state.requests == []


def test_orphan_deadline_counts_from_arrival() -> None:
    state, ev = _state(), Events()
    later = T0 + _dt.timedelta(minutes=5)
    apply_event(state, ev.cancellation(), later)
    assert state.requests[0].received_at == later
