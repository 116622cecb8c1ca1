"""Outpatient business order 2201 → 2203 → 2204 → 2206 → 2207, rollback 2208 → 2205 → 2202."""

from __future__ import annotations

from decimal import Decimal

from .conftest import Hospital


def test_2203_before_2201_is_refused(hosp: Hospital) -> None:
    err = hosp.refused("2203", {"mdtrtinfo": {"mdtrt_id": "NOPE", "psn_no": "P0001", "med_type": "11",
                                              "begntime": "2024-05-01 09:00:00"}})
    assert "no such visit" in err


def test_2204_before_2201_is_refused(hosp: Hospital) -> None:
    assert "no such visit" in hosp.refused("2204", {"feedetail": [hosp.fee("NOPE", "F1", "10.00")]})


def test_2204_before_2203_is_refused(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    assert "2203" in hosp.refused("2204", {"feedetail": [hosp.fee(mdtrt_id, "F1", "10.00")]})


def test_2206_and_2207_need_uploaded_details(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    assert "no unsettled fee details" in hosp.refused("2206", hosp.settle_data(mdtrt_id, "0"))
    assert "no unsettled fee details" in hosp.refused("2207", hosp.settle_data(mdtrt_id, "0"))


def test_feedetl_sn_is_unique_per_visit(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "10.00")])
    assert "feedetl_sn" in hosp.refused("2204", {"feedetail": [hosp.fee(mdtrt_id, "F1", "5.00")]})
    assert "feedetl_sn" in hosp.refused("2204", {"feedetail": [hosp.fee(mdtrt_id, "F2", "5.00"),
                                                               hosp.fee(mdtrt_id, "F2", "5.00")]})


def test_same_feedetl_sn_is_fine_on_another_visit(hosp: Hospital) -> None:
    a, b = hosp.register(), hosp.register()
    for v in (a, b):
        hosp.visit_info(v)
        hosp.upload(v, [hosp.fee(v, "F1", "10.00")])


def test_fee_amount_must_equal_count_times_price(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    row = {**hosp.fee(mdtrt_id, "F1", "10.00"), "cnt": Decimal("2")}
    assert "cnt × pric" in hosp.refused("2204", {"feedetail": [row]})


def test_one_upload_names_one_visit(hosp: Hospital) -> None:
    a, b = hosp.register(), hosp.register()
    hosp.visit_info(a)
    hosp.visit_info(b)
    err = hosp.refused("2204", {"feedetail": [hosp.fee(a, "F1", "1.00"), hosp.fee(b, "F2", "1.00")]})
    assert "same visit" in err


def test_2207_settles_exactly_the_uploaded_unsettled_details(hosp: Hospital, platform) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled(("30.00", "70.00"))
    visit = platform.ledger.visits[mdtrt_id]
    assert {d.feedetl_sn: d.setl_id for d in visit.details.values()} == {"F0": setl_id, "F1": setl_id}
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F9", "5.00")])
    out = hosp.ok("2207", hosp.settle_data(mdtrt_id, "5.00"))
    assert out["setlinfo"]["medfee_sumamt"] == Decimal("5.00")
    assert platform.ledger.settlements[out["setlinfo"]["setl_id"]].detail_sns == ["F9"]


def test_2207_total_must_match_the_unsettled_details(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "10.00")])
    assert "medfee_sumamt" in hosp.refused("2207", hosp.settle_data(mdtrt_id, "10.01"))


def test_2206_presettles_without_committing(hosp: Hospital, platform) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "100.00")])
    before = platform.ledger.persons["P0001"].balance
    pre = hosp.ok("2206", hosp.settle_data(mdtrt_id, "100.00"))["setlinfo"]
    assert platform.ledger.settlements == {}
    assert platform.ledger.persons["P0001"].balance == before
    final = hosp.ok("2207", hosp.settle_data(mdtrt_id, "100.00"))["setlinfo"]
    assert {k: pre[k] for k in ("fund_pay_sumamt", "acct_pay", "psn_cash_pay")} == \
           {k: final[k] for k in ("fund_pay_sumamt", "acct_pay", "psn_cash_pay")}


def test_2207_answers_the_sender_msgid_and_clearing_fields(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    hosp.visit_info(mdtrt_id)
    hosp.upload(mdtrt_id, [hosp.fee(mdtrt_id, "F1", "10.00")])
    info = hosp.ok("2207", hosp.settle_data(mdtrt_id, "10.00"))["setlinfo"]
    assert info["medins_setl_id"] == hosp.last_msgid
    assert (info["clr_type"], info["clr_way"], info["clr_optins"]) == ("11", "1", "440100")


def test_2208_only_for_a_settled_visit(hosp: Hospital) -> None:
    mdtrt_id = hosp.register()
    assert "setl_id" in hosp.refused("2208", {"data": {"setl_id": "NOPE", "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})


def test_2208_twice_is_refused(hosp: Hospital) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    data = {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}}
    hosp.ok("2208", data)
    assert "already cancelled" in hosp.refused("2208", data)


def test_2208_restores_the_balance(hosp: Hospital, platform) -> None:
    before = platform.ledger.persons["P0001"].balance
    mdtrt_id, setl_id = hosp.outpatient_settled()
    assert platform.ledger.persons["P0001"].balance < before
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert platform.ledger.persons["P0001"].balance == before


def test_2205_refuses_settled_batch_before_2208(hosp: Hospital) -> None:
    mdtrt_id, _ = hosp.outpatient_settled()
    assert "2208" in hosp.refused("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "psn_no": "P0001"}})


def test_2202_refuses_while_details_exist(hosp: Hospital) -> None:
    mdtrt_id, _ = hosp.outpatient_settled()
    assert "2205" in hosp.refused("2202", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001"}})


def test_full_outpatient_rollback_in_order(hosp: Hospital, platform) -> None:
    mdtrt_id, setl_id = hosp.outpatient_settled()
    hosp.ok("2208", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    hosp.ok("2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": "P0001"}})
    hosp.ok("2202", {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001"}})
    assert platform.ledger.visits[mdtrt_id].status == "cancelled"
    assert "cancelled" in hosp.refused("2204", {"feedetail": [hosp.fee(mdtrt_id, "F5", "1.00")]})


def test_rollback_never_crosses_visits(hosp: Hospital) -> None:
    a, setl_a = hosp.outpatient_settled()
    b = hosp.register()
    assert "another visit" in hosp.refused("2208", {"data": {"setl_id": setl_a, "mdtrt_id": b, "psn_no": "P0001"}})


def test_a_visit_is_only_the_persons_own(hosp: Hospital) -> None:
    mdtrt_id = hosp.register("P0001")
    err = hosp.refused("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": "P0003", "med_type": "11",
                                              "begntime": "2024-05-01 09:00:00"}})
    assert "not the person" in err


def test_ipt_otp_no_is_unique_in_the_institution(hosp: Hospital) -> None:
    hosp.register(ipt_otp_no="MZ-1")
    data = {"data": {"psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
                     "mdtrt_cert_no": "IDP0001", "ipt_otp_no": "MZ-1", "atddr_no": "D01", "dr_name": "医生",
                     "dept_code": "K01", "dept_name": "内科", "caty": "A03"}}
    assert "ipt_otp_no" in hosp.refused("2201", data)


def test_registration_needs_the_persons_insutype(hosp: Hospital) -> None:
    data = {"data": {"psn_no": "P0002", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
                     "mdtrt_cert_no": "IDP0002", "ipt_otp_no": "MZ-2", "atddr_no": "D01", "dr_name": "医生",
                     "dept_code": "K01", "dept_name": "内科", "caty": "A03"}}
    assert "insutype" in hosp.refused("2201", data)
