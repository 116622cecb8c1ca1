"""Envelope rules: every malformed envelope is refused with infcode -1 naming field and rule."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CODE, Hospital

ONE_PERSON = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "IDP0001"}}


def test_a_well_formed_query_is_answered_with_the_response_envelope(hosp: Hospital) -> None:
    out = hosp.call("1101", ONE_PERSON)
    r = out.response
    assert r["infcode"] == 0 and r["err_msg"] == ""
    assert len(r["inf_refmsgid"]) == 30 and r["inf_refmsgid"][:6] == "440100"
    assert len(r["refmsg_time"]) == 17 and len(r["respond_time"]) == 17
    assert r["output"]["baseinfo"]["psn_no"] == "P0001"


def test_msgid_reused_is_rejected(hosp: Hospital) -> None:
    msgid = hosp.msgid()
    hosp.ok("1101", ONE_PERSON, msgid=msgid)
    assert "msgid" in hosp.refused("1101", ONE_PERSON, msgid=msgid)


def test_msgid_reuse_is_rejected_even_after_a_refusal(hosp: Hospital) -> None:
    msgid = hosp.msgid()
    hosp.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "nobody"}}, msgid=msgid)
    assert "already used" in hosp.refused("1101", ONE_PERSON, msgid=msgid)


@pytest.mark.parametrize("msgid, rule", [
    (CODE + "20240501120000123", "30 characters"),
    ("H99999999999" + "20240501120000" + "0001", "start with the fixmedins_code"),
    (CODE + "20241301120000" + "0001", "yyyyMMddHHmmss"),
    (CODE + "20240501120000" + "00A1", "digits"),
])
def test_msgid_must_be_code_time_and_serial(hosp: Hospital, msgid: str, rule: str) -> None:
    assert rule in hosp.refused("1101", ONE_PERSON, msgid=msgid)


@pytest.mark.parametrize("inf_time", ["2024-05-01T12:00:00", "20240501120000", "2024-02-30 12:00:00"])
def test_inf_time_must_be_yyyy_mm_dd_hh_mm_ss(hosp: Hospital, inf_time: str) -> None:
    assert "inf_time" in hosp.refused("1101", ONE_PERSON, inf_time=inf_time)


def test_unknown_institution_is_rejected(hosp: Hospital, platform: Any) -> None:
    other = Hospital(platform, code="H00000000009")
    err = other.refused("9001", {"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}})
    assert "fixmedins_code" in err and "unknown" in err


def test_sign_no_is_required_for_everything_but_9001(platform: Any) -> None:
    h = Hospital(platform)
    assert "sign_no" in h.refused("1101", ONE_PERSON)
    h.sign_in()
    h.ok("1101", ONE_PERSON)


def test_sign_no_must_come_from_9001(hosp: Hospital) -> None:
    assert "sign_no" in hosp.refused("1101", ONE_PERSON, sign_no="440100202405010000000001")


def test_sign_no_is_dead_after_9002(hosp: Hospital) -> None:
    hosp.ok("9002", {"signOut": {"sign_no": hosp.sign_no, "opter_no": "OP01"}})
    assert "signed out" in hosp.refused("1101", ONE_PERSON)


def test_insuplc_admdvs_is_required_when_input_has_psn_no(hosp: Hospital) -> None:
    payload = {"data": {"psn_no": "P0001", "insutype": "310"}}
    assert "insuplc_admdvs" in hosp.refused("2001", payload, insuplc_admdvs="")
    hosp.ok("2001", payload)


def test_insuplc_admdvs_must_be_the_persons(hosp: Hospital) -> None:
    assert "参保地" in hosp.refused("2001", {"data": {"psn_no": "P0001", "insutype": "310"}}, insuplc_admdvs="110000")


@pytest.mark.parametrize("field, value", [("opter", "x" * 31), ("opter_name", "名" * 51), ("recer_sys_code", "x" * 11),
                                          ("infver", "V1.0.0.1")])
def test_oversize_envelope_fields_are_rejected(hosp: Hospital, field: str, value: str) -> None:
    err = hosp.refused("1101", ONE_PERSON, **{field: value})
    assert field in err and "longer than" in err


def test_oversize_input_field_is_rejected(hosp: Hospital) -> None:
    err = hosp.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x" * 51}})
    assert "mdtrt_cert_no" in err and "longer than 50" in err


def test_oversize_input_is_rejected(hosp: Hospital) -> None:
    err = hosp.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "IDP0001", "memo": "x" * 40001}})
    assert "40000" in err


@pytest.mark.parametrize("field", ["recer_sys_code", "mdtrtarea_admvs", "opter", "fixmedins_name", "inf_time"])
def test_required_envelope_fields_are_enforced(hosp: Hospital, field: str) -> None:
    assert field in hosp.refused("1101", ONE_PERSON, **{field: ""})


def test_unknown_transaction_is_rejected(hosp: Hospital) -> None:
    assert "not supported" in hosp.refused("7777", {"data": {}})


def test_missing_required_input_field_names_it(hosp: Hospital) -> None:
    assert "data.mdtrt_cert_no" in hosp.refused("1101", {"data": {"mdtrt_cert_type": "02"}})


def test_a_refusal_carries_no_personal_data(hosp: Hospital) -> None:
    err = hosp.refused("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440106198001010011"}})
    assert "440106198001010011" not in err


def test_infcode_can_be_answered_as_a_string(platform: Any) -> None:
    platform.settings.infcode_as_string = True
    h = Hospital(platform)
    out = h.call("9001", {"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}})
    assert out.response["infcode"] == "0"


def test_input_is_validated_against_the_catalog(platform: Any) -> None:
    pytest.importorskip("yibao.envelope.catalog")
    platform.settings.validate_with_catalog = True
    platform._catalog_loaded = False
    h = Hospital(platform)
    h.sign_in()
    err = h.refused("2001", {"data": {"psn_no": "P0001", "insutype": "310"}})
    assert "data.fixmedins_code" in err and "required" in err
