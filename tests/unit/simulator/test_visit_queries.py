"""5201 就诊信息查询 and 5303 在院信息查询: what the platform answers a chain that lost a 2201/2401 answer."""

from __future__ import annotations

from typing import Any

from .conftest import Hospital
from .test_inpatient_order import admit, discharge, fees, settle

DAY = ("2024-05-01 00:00:00", "2024-05-01 23:59:59")


def register(hosp: Hospital, ipt_otp_no: str, *, psn: str = "P0001", begntime: str = "2024-05-01 09:00:00") -> str:
    return hosp.ok("2201", {"data": {
        "psn_no": psn, "insutype": "310", "begntime": begntime, "mdtrt_cert_type": "02", "mdtrt_cert_no": f"ID{psn}",
        "ipt_otp_no": ipt_otp_no, "atddr_no": "D01", "dr_name": "医生", "dept_code": "K01", "dept_name": "内科",
        "caty": "A03"}})["data"]["mdtrt_id"]


def visits(hosp: Hospital, psn: str = "P0001", window: tuple[str, str] = DAY, **extra: str) -> list[dict[str, Any]]:
    data = {"psn_no": psn, "begntime": window[0], "endtime": window[1], **extra}
    return hosp.ok("5201", {"data": data})["mdtrtinfo"]


def in_hospital(hosp: Hospital, window: tuple[str, str] = DAY, **extra: str) -> list[dict[str, Any]]:
    return hosp.ok("5303", {"data": {"begntime": window[0], "endtime": window[1], **extra}})["data"]


# --- 5201 ------------------------------------------------------------------------------------------------------

def test_5201_lists_a_registration_with_the_hospitals_ipt_otp_no(hosp: Hospital) -> None:
    mdtrt_id = register(hosp, "MZ-0001")
    (row,) = visits(hosp)
    assert (row["mdtrt_id"], row["ipt_otp_no"], row["psn_no"]) == (mdtrt_id, "MZ-0001", "P0001")
    assert row["begntime"] == "2024-05-01 09:00:00" and row["vali_flag"] == "1"
    assert (row["atddr_no"], row["adm_dept_codg"]) == ("D01", "K01")


def test_5201_lists_an_admission_with_its_ipt_no(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp, ipt_no="ZY-77")
    (row,) = visits(hosp)
    assert (row["mdtrt_id"], row["ipt_otp_no"], row["med_type"]) == (mdtrt_id, "ZY-77", "21")
    assert row["inhosp_stas"] == "1" and row["endtime"] == ""


def test_5201_shows_the_discharge_of_an_admission(hosp: Hospital) -> None:
    admit(hosp)
    discharge(hosp, visits(hosp)[0]["mdtrt_id"])
    (row,) = visits(hosp)
    assert (row["endtime"], row["dscg_way"], row["inhosp_stas"]) == ("2024-05-05 10:00:00", "1", "0")
    assert row["ipt_days"] == 4


def test_5201_only_answers_visits_that_began_in_the_window(hosp: Hospital) -> None:
    register(hosp, "MZ-A", begntime="2024-05-01 09:00:00")
    register(hosp, "MZ-B", begntime="2024-05-02 09:00:00")
    assert [r["ipt_otp_no"] for r in visits(hosp)] == ["MZ-A"]
    both = ("2024-05-01 00:00:00", "2024-05-02 23:59:59")
    assert [r["ipt_otp_no"] for r in visits(hosp, window=both)] == ["MZ-A", "MZ-B"]


def test_5201_files_a_registration_under_med_type_12_until_2203_names_one(hosp: Hospital) -> None:
    mdtrt_id = register(hosp, "MZ-1")
    assert [r["med_type"] for r in visits(hosp, med_type="12")] == ["12"]
    assert visits(hosp, med_type="11") == []
    hosp.visit_info(mdtrt_id, med_type="11")
    assert [r["mdtrt_id"] for r in visits(hosp, med_type="11")] == [mdtrt_id]
    assert visits(hosp, med_type="12") == []


def test_5201_narrows_to_one_mdtrt_id(hosp: Hospital) -> None:
    register(hosp, "MZ-1")
    second = register(hosp, "MZ-2")
    assert [r["mdtrt_id"] for r in visits(hosp, mdtrt_id=second)] == [second]


def test_5201_keeps_a_cancelled_visit_with_vali_flag_0(hosp: Hospital) -> None:
    mdtrt_id = register(hosp, "MZ-1")
    hosp.ok("2202", {"data": {"psn_no": "P0001", "mdtrt_id": mdtrt_id, "ipt_otp_no": "MZ-1"}})
    admission = admit(hosp)
    hosp.ok("2404", {"data": {"mdtrt_id": admission, "psn_no": "P0001"}})
    assert {r["mdtrt_id"]: r["vali_flag"] for r in visits(hosp)} == {mdtrt_id: "0", admission: "0"}


def test_5201_never_shows_another_persons_visits(hosp: Hospital) -> None:
    register(hosp, "MZ-1", psn="P0003")
    assert visits(hosp, "P0001") == []


def test_5201_never_shows_another_institutions_visits(two: tuple[Hospital, Hospital]) -> None:
    a, b = two
    register(b, "MZ-1")
    assert visits(a) == []
    assert [r["ipt_otp_no"] for r in visits(b)] == ["MZ-1"]


def test_5201_without_a_match_answers_an_empty_list(hosp: Hospital) -> None:
    assert visits(hosp) == []


def test_5201_needs_a_window(hosp: Hospital) -> None:
    err = hosp.refused("5201", {"data": {"psn_no": "P0001", "begntime": DAY[0]}})
    assert "data.endtime" in err and "required" in err
    assert "before begntime" in hosp.refused("5201", {"data": {"psn_no": "P0001", "begntime": DAY[1],
                                                                "endtime": DAY[0]}})
    assert "not a date-time" in hosp.refused("5201", {"data": {"psn_no": "P0001", "begntime": "yesterday",
                                                                "endtime": DAY[1]}})


def test_5201_refuses_an_unknown_person(hosp: Hospital) -> None:
    assert "unknown person" in hosp.refused("5201", {"data": {"psn_no": "NOBODY", "begntime": DAY[0],
                                                              "endtime": DAY[1]}})


# --- 5303 ------------------------------------------------------------------------------------------------------

def test_5303_lists_the_persons_open_admission(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp, ipt_no="ZY-9")
    (row,) = in_hospital(hosp, psn_no="P0001")
    assert (row["mdtrt_id"], row["ipt_otp_no"], row["begndate"], row["med_type"]) == (mdtrt_id, "ZY-9",
                                                                                      "2024-05-01", "21")
    assert row["endtime"] == ""


def test_5303_keeps_a_discharged_admission_until_its_final_settlement(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    discharge(hosp, mdtrt_id)
    (row,) = in_hospital(hosp, psn_no="P0001")
    assert row["endtime"] == "2024-05-05 10:00:00"
    settle(hosp, mdtrt_id, "1000.00")
    assert in_hospital(hosp, psn_no="P0001") == []


def test_5303_lists_the_admission_again_when_its_final_settlement_is_cancelled(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    discharge(hosp, mdtrt_id)
    setl_id = settle(hosp, mdtrt_id, "1000.00")["setl_id"]
    hosp.ok("2305", {"data": {"mdtrt_id": mdtrt_id, "setl_id": setl_id, "psn_no": "P0001"}})
    assert [r["mdtrt_id"] for r in in_hospital(hosp, psn_no="P0001")] == [mdtrt_id]


def test_5303_keeps_an_admission_after_a_mid_settlement(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    settle(hosp, mdtrt_id, "1000.00", mid="1")
    assert [r["mdtrt_id"] for r in in_hospital(hosp, psn_no="P0001")] == [mdtrt_id]


def test_5303_drops_a_cancelled_admission(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    hosp.ok("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert in_hospital(hosp, psn_no="P0001") == []


def test_5303_never_lists_outpatient_visits(hosp: Hospital) -> None:
    register(hosp, "MZ-1")
    assert in_hospital(hosp, psn_no="P0001") == []


def test_5303_without_psn_no_lists_the_institutions_open_admissions(hosp: Hospital) -> None:
    first = admit(hosp, "P0001", ipt_no="ZY-1")
    second = admit(hosp, "P0003", ipt_no="ZY-2")
    assert {r["mdtrt_id"]: r["psn_no"] for r in in_hospital(hosp)} == {first: "P0001", second: "P0003"}


def test_5303_never_shows_another_institutions_admissions(two: tuple[Hospital, Hospital]) -> None:
    a, b = two
    admit(b)
    assert in_hospital(a, psn_no="P0001") == [] and in_hospital(a) == []
    assert len(in_hospital(b, psn_no="P0001")) == 1


def test_5303_only_lists_admissions_that_overlap_the_window(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)  # admitted 2024-05-01 09:00
    assert in_hospital(hosp, ("2024-04-30 00:00:00", "2024-04-30 23:59:59"), psn_no="P0001") == []
    assert len(in_hospital(hosp, ("2024-06-01 00:00:00", "2024-06-01 23:59:59"), psn_no="P0001")) == 1
    discharge(hosp, mdtrt_id)  # discharged 2024-05-05 10:00, not settled
    assert in_hospital(hosp, ("2024-06-01 00:00:00", "2024-06-01 23:59:59"), psn_no="P0001") == []
