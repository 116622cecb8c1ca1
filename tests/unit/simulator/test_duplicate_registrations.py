"""A 2201 or 2401 sent again (its answer lost) never registers a second visit: the platform refuses the repeat
with a clear err_msg, and the first visit is what 5201/5303 report."""

from __future__ import annotations

from .conftest import Hospital
from .test_inpatient_order import admit, discharge, fees, settle
from .test_visit_queries import DAY, in_hospital, register, visits

ADMISSION = {
    "psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
    "mdtrt_cert_no": "IDP0001", "med_type": "21", "ipt_no": "ZY1", "atddr_no": "D1", "chfpdr_name": "主任",
    "adm_dept_codg": "K02", "adm_dept_name": "外科", "dscg_maindiag_code": "K35", "dscg_maindiag_name": "阑尾炎",
}


def readmit(hosp: Hospital, **change: str) -> str:
    return hosp.refused("2401", {"mdtrtinfo": {**ADMISSION, **change}, "diseinfo": []})


def test_a_2201_sent_twice_with_the_same_ipt_otp_no_is_refused(hosp: Hospital, platform) -> None:
    first = register(hosp, "MZ-0001")
    err = hosp.refused("2201", {"data": {
        "psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": "IDP0001", "ipt_otp_no": "MZ-0001", "atddr_no": "D01", "dr_name": "医生",
        "dept_code": "K01", "dept_name": "内科", "caty": "A03"}})
    assert "data.ipt_otp_no" in err and "门诊号重复" in err and "5201" in err
    assert list(platform.ledger.visits) == [first]
    assert [r["mdtrt_id"] for r in visits(hosp)] == [first]


def test_an_ipt_otp_no_is_taken_whoever_the_person(hosp: Hospital) -> None:
    register(hosp, "MZ-0001", psn="P0001")
    data = {"psn_no": "P0003", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": "IDP0003", "ipt_otp_no": "MZ-0001", "atddr_no": "D01", "dr_name": "医生",
            "dept_code": "K01", "dept_name": "内科", "caty": "A03"}
    assert "门诊号重复" in hosp.refused("2201", {"data": data}, insuplc_admdvs="440100")


def test_an_ipt_otp_no_is_free_again_after_2202(hosp: Hospital) -> None:
    first = register(hosp, "MZ-0001")
    hosp.ok("2202", {"data": {"psn_no": "P0001", "mdtrt_id": first, "ipt_otp_no": "MZ-0001"}})
    second = register(hosp, "MZ-0001")
    assert second != first
    assert {r["mdtrt_id"]: r["vali_flag"] for r in visits(hosp)} == {first: "0", second: "1"}


def test_the_same_ipt_otp_no_in_another_institution_is_another_registration(two) -> None:
    a, b = two
    assert register(a, "MZ-0001") != register(b, "MZ-0001")


def test_a_2401_sent_twice_is_refused_and_one_admission_stands(hosp: Hospital, platform) -> None:
    first = admit(hosp, ipt_no="ZY1")
    err = readmit(hosp)
    assert "mdtrtinfo.psn_no" in err and "已在院" in err and "5303" in err
    assert [v.mdtrt_id for v in platform.ledger.visits.values() if v.kind == "inpatient"] == [first]
    assert [r["mdtrt_id"] for r in in_hospital(hosp, psn_no="P0001")] == [first]


def test_a_second_admission_is_refused_whatever_its_ipt_no(hosp: Hospital) -> None:
    admit(hosp, ipt_no="ZY1")
    assert "已在院" in readmit(hosp, ipt_no="ZY2")


def test_a_discharged_but_unsettled_admission_still_blocks_2401(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp, ipt_no="ZY1")
    discharge(hosp, mdtrt_id)
    assert "已在院" in readmit(hosp, ipt_no="ZY2")


def test_a_finally_settled_admission_lets_the_person_be_admitted_again(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp, ipt_no="ZY1")
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    discharge(hosp, mdtrt_id)
    settle(hosp, mdtrt_id, "1000.00")
    assert admit(hosp, ipt_no="ZY2") != mdtrt_id


def test_a_cancelled_admission_lets_the_person_be_admitted_again(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp, ipt_no="ZY1")
    hosp.ok("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert admit(hosp, ipt_no="ZY1") != mdtrt_id


def test_an_open_admission_in_another_institution_blocks_2401(two) -> None:
    a, b = two
    admit(a, ipt_no="ZY1")
    assert "已在其他定点医疗机构住院" in readmit(b)


def test_an_ipt_no_is_taken_in_the_institution(hosp: Hospital) -> None:
    admit(hosp, "P0001", ipt_no="ZY1")
    err = readmit(hosp, psn_no="P0003", mdtrt_cert_no="IDP0003")
    assert "mdtrtinfo.ipt_no" in err and "住院号重复" in err


def test_duplicate_refusals_carry_no_personal_data(hosp: Hospital) -> None:
    register(hosp, "MZ-0001")
    admit(hosp)
    errors = [readmit(hosp), hosp.refused("2201", {"data": {
        "psn_no": "P0001", "insutype": "310", "begntime": DAY[0], "mdtrt_cert_type": "02", "mdtrt_cert_no": "IDP0001",
        "ipt_otp_no": "MZ-0001", "atddr_no": "D01", "dr_name": "医生", "dept_code": "K01", "dept_name": "内科",
        "caty": "A03"}})]
    for err in errors:
        assert "IDP0001" not in err and "测试" not in err and "P0001" not in err
