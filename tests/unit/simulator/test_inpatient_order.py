"""Inpatient order 2401 → 2301 → 2402 → 2303/2304 (mid_setl_flag), rollback 2305 → 2405 → 2302 → 2404."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .conftest import Hospital


def admit(hosp: Hospital, psn: str = "P0001", ipt_no: str = "ZY1") -> str:
    return hosp.ok("2401", {"mdtrtinfo": {
        "psn_no": psn, "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": f"ID{psn}", "med_type": "21", "ipt_no": ipt_no, "atddr_no": "D1", "chfpdr_name": "主任",
        "adm_dept_codg": "K02", "adm_dept_name": "外科", "dscg_maindiag_code": "K35", "dscg_maindiag_name": "阑尾炎"},
        "diseinfo": []})["data"]["mdtrt_id"]


def fees(hosp: Hospital, mdtrt_id: str, *rows: tuple[str, str]) -> None:
    hosp.ok("2301", {"feedetail": [hosp.fee(mdtrt_id, sn, amt) for sn, amt in rows]})


def discharge(hosp: Hospital, mdtrt_id: str) -> dict[str, Any]:
    return hosp.ok("2402", {"dscginfo": {"mdtrt_id": mdtrt_id, "psn_no": "P0001", "insutype": "310",
                                         "endtime": "2024-05-05 10:00:00", "dscg_way": "1"}, "diseinfo": []})


def settle(hosp: Hospital, mdtrt_id: str, total: str, mid: str = "0", infno: str = "2304") -> dict[str, Any]:
    data = hosp.settle_data(mdtrt_id, total, mid_setl_flag=mid)
    data["data"].pop("med_type")
    return hosp.ok(infno, data)["setlinfo"]


def data(mdtrt_id: str, **extra: str) -> dict[str, Any]:
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": "P0001", **extra}}


def test_2301_needs_an_admission(hosp: Hospital) -> None:
    assert "no such visit" in hosp.refused("2301", {"feedetail": [hosp.fee("NOPE", "F1", "1.00")]})


def test_a_person_is_admitted_once_at_a_time(hosp: Hospital) -> None:
    admit(hosp)
    err = hosp.refused("2401", {"mdtrtinfo": {
        "psn_no": "P0001", "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": "IDP0001", "med_type": "21", "ipt_no": "ZY2", "atddr_no": "D1", "chfpdr_name": "主任",
        "adm_dept_codg": "K02", "adm_dept_name": "外科", "dscg_maindiag_code": "K35", "dscg_maindiag_name": "阑尾炎"}})
    assert "already admitted" in err


def test_final_settlement_needs_discharge(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    payload = hosp.settle_data(mdtrt_id, "1000.00", mid_setl_flag="0")
    assert "2402" in hosp.refused("2304", payload)


def test_mid_settlement_only_while_admitted(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    settle(hosp, mdtrt_id, "1000.00", mid="1")
    fees(hosp, mdtrt_id, ("F2", "500.00"))
    discharge(hosp, mdtrt_id)
    assert "中途结算" in hosp.refused("2304", hosp.settle_data(mdtrt_id, "500.00", mid_setl_flag="1"))
    assert settle(hosp, mdtrt_id, "500.00")["medfee_sumamt"] == Decimal("500.00")


def test_details_cannot_be_uploaded_after_discharge(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    discharge(hosp, mdtrt_id)
    assert "after discharge" in hosp.refused("2301", {"feedetail": [hosp.fee(mdtrt_id, "F1", "1.00")]})


def test_2303_presettles_without_committing(hosp: Hospital, platform) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "2000.00"))
    discharge(hosp, mdtrt_id)
    settle(hosp, mdtrt_id, "2000.00", infno="2303")
    assert platform.ledger.settlements == {}


def test_rollback_order_is_strictly_reverse(hosp: Hospital, platform) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "2000.00"), ("F2", "100.00"))
    discharge(hosp, mdtrt_id)
    setl_id = settle(hosp, mdtrt_id, "2100.00")["setl_id"]
    assert "2305" in hosp.refused("2405", data(mdtrt_id))
    assert "2405" in hosp.refused("2302", data(mdtrt_id, feedetl_sn="0000"))
    assert "2405" in hosp.refused("2404", data(mdtrt_id))
    hosp.ok("2305", data(mdtrt_id, setl_id=setl_id))
    assert "2405" in hosp.refused("2404", data(mdtrt_id))
    hosp.ok("2405", data(mdtrt_id))
    assert "2302" in hosp.refused("2404", data(mdtrt_id))
    hosp.ok("2302", data(mdtrt_id, feedetl_sn="0000"))
    hosp.ok("2404", data(mdtrt_id))
    assert platform.ledger.visits[mdtrt_id].status == "cancelled"


def test_mid_settlement_is_cancelled_after_the_discharge_and_latest_first(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    mid_id = settle(hosp, mdtrt_id, "1000.00", mid="1")["setl_id"]
    fees(hosp, mdtrt_id, ("F2", "300.00"))
    discharge(hosp, mdtrt_id)
    final_id = settle(hosp, mdtrt_id, "300.00")["setl_id"]
    assert "latest settlement" in hosp.refused("2305", data(mdtrt_id, setl_id=mid_id))
    hosp.ok("2305", data(mdtrt_id, setl_id=final_id))
    assert "2405" in hosp.refused("2305", data(mdtrt_id, setl_id=mid_id))
    hosp.ok("2405", data(mdtrt_id))
    hosp.ok("2305", data(mdtrt_id, setl_id=mid_id))


def test_a_settled_detail_is_not_revoked_by_2302(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "1000.00"))
    settle(hosp, mdtrt_id, "1000.00", mid="1")
    assert "2305" in hosp.refused("2302", data(mdtrt_id, feedetl_sn="F1"))


def test_inpatient_rollback_never_crosses_visits(hosp: Hospital) -> None:
    a = admit(hosp)
    fees(hosp, a, ("F1", "1000.00"))
    discharge(hosp, a)
    setl_a = settle(hosp, a, "1000.00")["setl_id"]
    b = admit(hosp, ipt_no="ZY9")
    assert "another visit" in hosp.refused("2305", data(b, setl_id=setl_a))


def test_negative_line_needs_its_original(hosp: Hospital) -> None:
    mdtrt_id = admit(hosp)
    fees(hosp, mdtrt_id, ("F1", "100.00"))
    neg = {**hosp.fee(mdtrt_id, "F2", "-100.00"), "cnt": Decimal("-1"), "pric": Decimal("100")}
    assert "init_feedetl_sn" in hosp.refused("2301", {"feedetail": [neg]})
    hosp.ok("2301", {"feedetail": [{**neg, "init_feedetl_sn": "F1"}]})
