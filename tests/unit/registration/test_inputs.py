"""What each call sends, built from canonical HIS events and the chain's state, passes the catalog with the
documented derivations."""

from __future__ import annotations

import pytest

from unit.registration.registration_support import CERT, T0, Events, config, diagnosis
from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import EnvelopeValidationError
from yibao.hisevents.models import HisEventBase
from yibao.registration.state import Person, RegistrationState, Request, VisitInfoState
from yibao.registration.steps import admission_change, cancel, discharge, person, register, visit_info
from yibao.registration.steps.common import compact

CATALOG = Catalog.load(None)
PERSON = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")
CFG = config()


def _state(reg: HisEventBase, *, person_: Person | None = PERSON, mdtrt_id: str | None = None,
           **kw: object) -> RegistrationState:
    return RegistrationState(kind=reg.visit_kind, registration=reg.model_dump(mode="json"),  # type: ignore[arg-type]
                             registration_received_at=T0, person=person_, mdtrt_id=mdtrt_id,
                             status="registered" if mdtrt_id else "pending", **kw)  # type: ignore[arg-type]


def _request(event: HisEventBase, kind: str, **kw: object) -> Request:
    return Request(id=event.event_id, kind=kind, event=event.model_dump(mode="json"),  # type: ignore[arg-type]
                   occurred_at=event.occurred_at, received_at=T0, seq=1, **kw)  # type: ignore[arg-type]


def test_1101_asks_by_credential_and_sends_no_name() -> None:
    call = person.person_call(CFG, _state(Events().registered(), person_=None))
    body = CATALOG.prepare_input("1101", call.input)
    assert body["data"]["mdtrt_cert_no"] == CERT and "psn_name" not in body["data"]


def test_2001_passes_the_catalog() -> None:
    CATALOG.prepare_input("2001", person.treatment_call(CFG, _state(Events().registered())).input)


def test_2201_uses_the_chosen_insutype_not_the_his_one() -> None:
    state = _state(Events().registered(insutype="310"), person_=PERSON.model_copy(update={"insutype": "390"}))
    body = CATALOG.prepare_input("2201", register.register_call(CFG, state).input)
    assert body["data"]["insutype"] == "390" and body["data"]["ipt_otp_no"] == "MZO1"


def test_2203_fills_diagnosis_department_doctor_and_time_from_the_registration() -> None:
    state = _state(Events().registered(), mdtrt_id="M1",
                   visit_info=VisitInfoState(diagnoses={"1/1": diagnosis()}, version=1))
    body = CATALOG.prepare_input("2203", visit_info.visit_info_call(CFG, state).input)
    row = body["diseinfo"][0]
    assert (row["diag_dept"], row["dise_dor_no"], row["dise_dor_name"]) == ("内科门诊", "D1", "医生甲")
    assert body["mdtrtinfo"]["med_type"] == "11"


def test_2401_derives_the_main_diagnosis_fields_and_passes_the_catalog() -> None:
    body = CATALOG.prepare_input("2401", register.register_call(CFG, _state(Events("I1").admission())).input)
    assert body["mdtrtinfo"]["dscg_maindiag_name"] == "脑梗死" and body["diseinfo"][0]["psn_no"] == "P1"


def test_2401_without_a_bed_is_refused_by_the_catalog_naming_the_field() -> None:
    call = register.register_call(CFG, _state(Events("I1").admission(adm_bed=None)))
    with pytest.raises(EnvelopeValidationError) as err:
        CATALOG.prepare_input("2401", call.input)
    assert "mdtrtinfo.adm_bed" in str(err.value)


def test_2403_sends_the_admission_with_the_change_applied() -> None:
    ev = Events("I1")
    state = _state(ev.admission(), mdtrt_id="M1")
    change = _request(ev.admission_changed(adm_bed="09-09"), "admission_change")
    body = CATALOG.prepare_input("2403", admission_change.admission_change_call(CFG, state, change).input)
    assert body["adminfo"]["adm_bed"] == "09-09" and body["diseinfo"][0]["mdtrt_id"] == "M1"


def test_2402_uses_the_admission_department_and_diagnoses_when_the_discharge_has_none() -> None:
    ev = Events("I1")
    adm = ev.admission()
    state = _state(adm, mdtrt_id="M1", admission_diagnoses={"1/1": adm.diagnoses[0]})
    request = _request(ev.discharge(dscg_dept_codg=None, dscg_dept_name=None), "discharge", phase="ready")
    body = CATALOG.prepare_input("2402", discharge.discharge_call(CFG, state, request).input)
    assert body["dscginfo"]["dscg_dept_codg"] == "0403" and body["diseinfo"][0]["diag_code"] == "I63.900"
    assert "adm_cond" not in body["diseinfo"][0]


def test_rollback_inputs_pass_the_catalog() -> None:
    ev, evi = Events(), Events("I1")
    out, inp = _state(ev.registered(), mdtrt_id="M1"), _state(evi.admission(), mdtrt_id="M2")
    cancel_out = Request(id="C1", kind="cancel", target="registration", occurred_at=T0, received_at=T0, seq=1)
    cancel_in = Request(id="C2", kind="cancel", target="admission", occurred_at=T0, received_at=T0, seq=1)
    cancel_dscg = Request(id="C3", kind="cancel", target="discharge", occurred_at=T0, received_at=T0, seq=1)
    CATALOG.prepare_input("2202", cancel.cancel_call(CFG, out, cancel_out).input)
    CATALOG.prepare_input("2404", cancel.cancel_call(CFG, inp, cancel_in).input)
    CATALOG.prepare_input("2405", discharge.cancel_discharge_call(CFG, inp, cancel_dscg).input)


def test_blank_values_are_left_out_so_required_ones_are_reported_missing() -> None:
    assert compact({"a": "", "b": None, "c": " ", "d": "x", "e": 0}) == {"d": "x", "e": 0}
