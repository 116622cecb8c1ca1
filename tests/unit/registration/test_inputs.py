"""Platform inputs built from canonical HIS events pass the catalog, with the documented derivations."""

from __future__ import annotations

from unit.registration.registration_support import CERT, Events, diagnosis
from yibao.envelope.catalog import Catalog
from yibao.registration import inputs
from yibao.registration.state import Person, VisitInfoState

CATALOG = Catalog.load(None)
PERSON = Person(psn_no="P1", insutype="310", insuplc_admdvs="440106")


def test_1101_asks_by_credential_and_sends_no_name() -> None:
    body = CATALOG.prepare_input("1101", inputs.in_1101(Events().registered()))
    assert body["data"]["mdtrt_cert_no"] == CERT and "psn_name" not in body["data"]


def test_2001_passes_the_catalog() -> None:
    CATALOG.prepare_input("2001", inputs.in_2001(PERSON, Events().registered(), fixmedins_code="H44010600001"))


def test_2201_uses_the_chosen_insutype_not_the_his_one() -> None:
    body = CATALOG.prepare_input("2201", inputs.in_2201(PERSON.model_copy(update={"insutype": "390"}),
                                                        Events().registered(insutype="310")))
    assert body["data"]["insutype"] == "390" and body["data"]["ipt_otp_no"] == "MZO1"


def test_2203_fills_diagnosis_department_doctor_and_time_from_the_registration() -> None:
    reg = Events().registered()
    info = VisitInfoState(diagnoses={"1/1": diagnosis()}, version=1)
    body = CATALOG.prepare_input("2203", inputs.in_2203(PERSON, "M1", reg, info))
    row = body["diseinfo"][0]
    assert (row["diag_dept"], row["dise_dor_no"], row["dise_dor_name"]) == ("内科门诊", "D1", "医生甲")
    assert body["mdtrtinfo"]["med_type"] == "11"


def test_2401_derives_the_main_diagnosis_fields_and_passes_the_catalog() -> None:
    adm = Events("I1").admission()
    body = CATALOG.prepare_input("2401", inputs.in_2401(PERSON, adm, adm.diagnoses))
    assert body["mdtrtinfo"]["dscg_maindiag_name"] == "脑梗死" and body["diseinfo"][0]["psn_no"] == "P1"


def test_2401_without_a_bed_is_refused_by_the_catalog_naming_the_field() -> None:
    import pytest

    from yibao.envelope.errors import EnvelopeValidationError

    adm = Events("I1").admission(adm_bed=None)
    with pytest.raises(EnvelopeValidationError) as err:
        CATALOG.prepare_input("2401", inputs.in_2401(PERSON, adm, adm.diagnoses))
    assert "mdtrtinfo.adm_bed" in str(err.value)


def test_2403_sends_the_admission_with_the_change_applied() -> None:
    ev = Events("I1")
    adm = inputs.merged_admission(ev.admission(), {"adm_bed": "09-09"})
    body = CATALOG.prepare_input("2403", inputs.in_2403(PERSON, "M1", adm, ev.admission_changed(adm_bed="09-09"),
                                                        adm.diagnoses))
    assert body["adminfo"]["adm_bed"] == "09-09" and body["diseinfo"][0]["mdtrt_id"] == "M1"


def test_2402_uses_the_admission_department_and_diagnoses_when_the_discharge_has_none() -> None:
    ev = Events("I1")
    adm = ev.admission()
    body = CATALOG.prepare_input("2402", inputs.in_2402(PERSON, "M1", adm,
                                                        ev.discharge(dscg_dept_codg=None, dscg_dept_name=None),
                                                        adm.diagnoses))
    assert body["dscginfo"]["dscg_dept_codg"] == "0403" and body["diseinfo"][0]["diag_code"] == "I63.900"
    assert "adm_cond" not in body["diseinfo"][0]


def test_rollback_inputs_pass_the_catalog() -> None:
    CATALOG.prepare_input("2202", inputs.in_2202(PERSON, "M1", "MZ1"))
    CATALOG.prepare_input("2404", inputs.in_2404(PERSON, "M1"))
    CATALOG.prepare_input("2405", inputs.in_2405(PERSON, "M1"))


def test_blank_values_are_left_out_so_required_ones_are_reported_missing() -> None:
    assert inputs.compact({"a": "", "b": None, "c": " ", "d": "x", "e": 0}) == {"d": "x", "e": 0}
