"""The simulator's counter side: 备案 (2501-2506) and the counter's queries (5301 5302 5304 5102 5202 5205 5206),
one rule per test (simulator/counter.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .conftest import CODE, OTHER_CODE, Hospital
from yibao.simulator import counter

TODAY = "2024-05-01"


def chronic(psn: str = "P0001", code: str = "M03900", name: str = "高血压", **extra: Any) -> dict[str, Any]:
    return {"data": {"psn_no": psn, "insutype": "310", "opsp_dise_code": code, "opsp_dise_name": name,
                     "insu_optins": "440100", "ide_fixmedins_no": CODE, "ide_fixmedins_name": "测试医院",
                     "hosp_ide_date": TODAY, "diag_dr_codg": "D01", "diag_dr_name": "医生", "begndate": "2024-01-01",
                     **extra}}


def transfer(psn: str = "P0001", target: str = OTHER_CODE, date: str = TODAY) -> dict[str, Any]:
    return {"refmedin": {"psn_no": psn, "insutype": "310", "diag_code": "I63.900", "diag_name": "脑梗死",
                         "reflin_medins_no": target, "reflin_medins_name": "上级医院", "mdtrtarea_admdvs": "440100",
                         "refl_type": "1", "refl_date": date, "refl_rea": "病情需要", "refl_opnn": "同意"}}


def designated(psn: str = "P0001", kind: str = "01") -> dict[str, Any]:
    return {"data": {"psn_no": psn, "biz_appy_type": kind, "begndate": "2024-01-01", "fix_srt_no": "1",
                     "fixmedins_code": CODE, "fixmedins_name": "测试医院"}}


def test_a_chronic_filing_answers_its_serial_and_5301_lists_it(hosp: Hospital) -> None:
    serial = hosp.ok("2503", chronic())["result"]["trt_dcla_detl_sn"]
    listed = hosp.ok("5301", {"data": {"psn_no": "P0001"}})["feedetail"]
    assert [(r["opsp_dise_code"], r["trt_dcla_detl_sn"]) for r in listed] == [("M03900", serial)]


def test_a_second_valid_filing_of_the_same_disease_is_refused(hosp: Hospital) -> None:
    hosp.ok("2503", chronic())
    assert "已存在有效的慢特病备案" in hosp.refused("2503", chronic())


def test_a_chronic_filing_needs_the_persons_insutype(hosp: Hospital) -> None:
    assert "insutype" in hosp.refused("2503", chronic(insutype="390"))


def test_a_revoked_chronic_filing_is_no_longer_listed_and_cannot_be_revoked_twice(hosp: Hospital) -> None:
    serial = hosp.ok("2503", chronic())["result"]["trt_dcla_detl_sn"]
    hosp.ok("2504", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": serial, "memo": "误报"}})
    assert hosp.ok("5301", {"data": {"psn_no": "P0001"}})["feedetail"] == []
    assert "已撤销" in hosp.refused("2504", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": serial}})


def test_revoking_an_unknown_filing_says_it_does_not_exist(hosp: Hospital) -> None:
    assert "不存在" in hosp.refused("2504", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": "X1"}})


def test_a_transfer_filing_is_refused_twice_and_listed_by_5304_until_revoked(hosp: Hospital) -> None:
    serial = hosp.ok("2501", transfer())["result"]["trt_dcla_detl_sn"]
    assert "已存在有效的转院备案" in hosp.refused("2501A", transfer())
    window = {"data": {"psn_no": "P0001", "begntime": "2024-04-01 00:00:00", "endtime": "2024-05-31 23:59:59"}}
    assert [(r["trt_dcla_detl_sn"], r["vali_flag"]) for r in hosp.ok("5304", window)["refmedin"]] == [(serial, "1")]
    hosp.ok("2502", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": serial}})
    assert [r["vali_flag"] for r in hosp.ok("5304", window)["refmedin"]] == ["0"]


def test_a_transfer_goes_to_another_institution(hosp: Hospital) -> None:
    assert "another institution" in hosp.refused("2501", transfer(target=CODE))


def test_a_designated_filing_is_listed_by_5302_for_its_type_only(hosp: Hospital) -> None:
    serial = hosp.ok("2505", designated())["result"]["trt_dcla_detl_sn"]
    assert [r["trt_dcla_detl_sn"] for r in hosp.ok("5302", {"data": {"psn_no": "P0001", "biz_appy_type": "01"}})
            ["psnfixmedin"]] == [serial]
    assert hosp.ok("5302", {"data": {"psn_no": "P0001", "biz_appy_type": "02"}})["psnfixmedin"] == []
    assert "已存在有效的定点备案" in hosp.refused("2505", designated())
    hosp.ok("2506", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": serial}})
    assert hosp.ok("5302", {"data": {"psn_no": "P0001", "biz_appy_type": "01"}})["psnfixmedin"] == []


def test_another_institution_cannot_revoke_our_filing(two: tuple[Hospital, Hospital]) -> None:
    a, b = two
    serial = a.ok("2503", chronic())["result"]["trt_dcla_detl_sn"]
    assert "非本机构" in b.refused("2504", {"data": {"psn_no": "P0001", "trt_dcla_detl_sn": serial}})


def test_5102_lists_the_institutions_practitioners_of_a_type(hosp: Hospital) -> None:
    doctors = hosp.ok("5102", {"data": {"prac_psn_type": "1"}})["feedetail"]
    assert doctors and {r["prac_psn_type"] for r in doctors} == {"1"}
    assert set(counter.PRACTITIONER_TYPES) == {"1", "2", "3"}


def test_5202_answers_the_visits_diagnosis_and_5206_the_persons_totals(hosp: Hospital) -> None:
    mdtrt_id, _ = hosp.outpatient_settled()
    rows = hosp.ok("5202", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001"}})["diseinfo"]
    assert [r["diag_code"] for r in rows] == ["J00"]
    cum = hosp.ok("5206", {"data": {"psn_no": "P0001"}})["cuminfo"]
    assert {r["cum_type_code"]: r["cum"] for r in cum}["S0000"] == 100
    assert "不存在" in hosp.refused("5202", {"data": {"mdtrt_id": "NOPE", "psn_no": "P0001"}})


def test_5205_lists_the_chronic_visits_lines(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id, med_type="14")
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "12.00")])
    rows = hosp.ok("5205", {"data": {"psn_no": "P0001", "begntime": "2024-01-01 00:00:00"}})["feedetail"]
    assert [r["feedetl_sn"] for r in rows] == ["F1"]


# --- 3101 明细审核分析 -------------------------------------------------------------------------------------------

def order(rx: str, code: str = "XA01", pric: str = "10.00", limit: str = "12.00", cnt: str = "2.00",
          day: str = "2024-05-01 09:00:00") -> dict[str, Any]:
    amount = f"{Decimal(pric) * Decimal(cnt):.2f}"
    return {"rx_id": rx, "rxno": rx, "long_drord_flag": "0", "hilist_type": "101", "chrg_type": "09",
            "drord_bhvr": "0", "hilist_code": code, "hilist_name": "药品", "hilist_lv": "1", "hilist_pric": limit,
            "hosplist_code": code, "hosplist_name": "药品", "cnt": cnt, "pric": pric, "sumamt": amount,
            "ownpay_amt": "0.00", "selfpay_amt": "0.00", "spec": "10mg", "spec_unt": "片",
            "drord_begn_date": day, "drord_dept_codg": "A01", "drord_dept_name": "内科", "drord_dr_codg": "D01",
            "drord_dr_name": "医生", "drord_dr_profttl": "1", "curr_drord_flag": "1"}


def analysis(*orders: dict[str, Any]) -> dict[str, Any]:
    encounter = {
        "mdtrt_id": "M1", "medins_id": CODE, "medins_name": "测试医院", "medins_admdvs": "440100", "medins_type": "1",
        "medins_lv": "1", "adm_date": "2024-05-01 08:00:00", "dscg_main_dise_codg": "I10", "dscg_main_dise_name": "高血压",
        "dr_codg": "D01", "adm_dept_codg": "A01", "adm_dept_name": "内科", "med_mdtrt_type": "1", "med_type": "11",
        "matn_stas": "0", "medfee_sumamt": "0.00", "ownpay_amt": "0.00", "selfpay_amt": "0.00", "setl_totlnum": 0,
        "insutype": "310", "reim_flag": "0", "out_setl_flag": "0",
        "fsi_diagnose_dtos": [{"dise_id": "1", "inout_dise_type": "1", "maindise_flag": "1", "dias_srt_no": "1",
                               "dise_codg": "I10", "dise_name": "高血压", "dise_date": "2024-05-01 08:00:00"}],
        "fsi_order_dtos": list(orders)}
    return {"data": {"syscode": "HIS", "trig_scen": "1", "patient_dtos": [{
        "patn_id": "P0001", "patn_name": "测试", "gend": "1", "brdy": "1970-01-01", "poolarea": "440100",
        "curr_mdtrt_id": "M1", "fsi_encounter_dtos": [encounter]}]}}


def test_an_order_that_breaks_no_rule_gets_an_empty_violation_list(hosp: Hospital) -> None:
    assert hosp.ok("3101", analysis(order("R1"), order("R2", code="XB02")))["result"] == []


def test_the_same_item_ordered_twice_on_one_day_is_a_duplicate_charge_of_the_second_line(hosp: Hospital) -> None:
    [found] = hosp.ok("3101", analysis(order("R1"), order("R2")))["result"]
    assert (found["rule_id"], found["mdtrt_id"], Decimal(str(found["vola_amt"]))) == ("SIM-R001", "M1",
                                                                                       Decimal("20.00"))
    assert [d["rx_id"] for d in found["judge_result_detail_dtos"]] == ["R2"]


def test_a_price_above_the_items_limit_is_a_violation_of_the_excess_times_the_quantity(hosp: Hospital) -> None:
    [found] = hosp.ok("3101", analysis(order("R1", pric="15.00", limit="12.00", cnt="3.00")))["result"]
    assert (found["rule_id"], Decimal(str(found["vola_amt"]))) == ("SIM-R002", Decimal("9.00"))


def test_an_analysis_without_patients_is_refused_naming_the_list(hosp: Hospital) -> None:
    assert "patient_dtos" in hosp.refused("3101", {"data": {"syscode": "HIS", "patient_dtos": []}})
