"""Canonical HIS event models (yibao.hisevents.models)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from yibao.core.clock import SHANGHAI
from yibao.core.errors import DecodeError
from yibao.hisevents.models import (
    EVENT_MODELS,
    PERSONAL_FIELDS,
    Admission,
    Cancellation,
    ChargeLineAdded,
    ChargeLineReversed,
    PatientRegistered,
    RefundRequested,
    SettlementRequested,
    parse_event,
)

CERTNO = "440604199003070014"
NAME = "陈嘉豪"
PHONE = "13912345678"


def _common(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": "0123456789abcdef0123456789abcdef", "his_visit_id": "25030300001", "his_patient_id": "P42",
        "occurred_at": dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI),
        "source": {"topic": "hisdb.HIS.OUTP_REGISTER", "partition": 0, "offset": 7, "table": "HIS.OUTP_REGISTER",
                   "op": "c", "position": {"scn": "1"}},
        **extra,
    }


def _registered(**extra: Any) -> PatientRegistered:
    fields = _common(
        ipt_otp_no="MZ1", mdtrt_cert_type="02", mdtrt_cert_no=CERTNO, card_sn="CARDSN0001", psn_cert_type="01",
        certno=CERTNO, psn_name=NAME, med_type="11", begntime=dt.datetime(2025, 3, 3, 8, 15, 30),
        dept_code="0301", dept_name="内科", reg_fee="25.00")
    return PatientRegistered(**{**fields, **extra})


def _line(**extra: Any) -> dict[str, Any]:
    fields = _common(
        visit_kind="outpatient", feedetl_sn="L1", fee_ocur_time=dt.datetime(2025, 3, 3, 9), med_list_codg="X1",
        medins_list_codg="Y1", det_item_fee_sumamt="25", cnt="2", pric="12.5")
    return {**fields, **extra}


def _admission() -> Admission:
    return Admission(**_common(
        his_visit_id="92503030001", ipt_no="ZY1", mdtrt_cert_type="02", mdtrt_cert_no=CERTNO, certno=CERTNO,
        psn_name=NAME, coner_name="陈某某", tel=PHONE, med_type="21", begntime=dt.datetime(2025, 3, 3, 9),
        adm_dept_codg="0302", adm_dept_name="心内科", card_sn="CARDSN0001"))


@pytest.mark.parametrize("make", [_registered, _admission])
def test_repr_and_str_never_show_personal_fields(make):
    event = make()
    for text in (repr(event), str(event), f"{event}"):
        for secret in (CERTNO, NAME, PHONE, "陈某某", "CARDSN0001"):
            assert secret not in text
    assert "his_visit_id" in repr(event)


def test_every_personal_field_of_every_event_is_hidden_from_repr():
    for model in EVENT_MODELS.values():
        for name, info in model.model_fields.items():
            if name in PERSONAL_FIELDS:
                assert info.repr is False, f"{model.__name__}.{name}"


def test_to_json_round_trips_through_parse_event():
    event = _registered()
    again = parse_event(event.to_json())
    assert again == event and isinstance(again, PatientRegistered)
    assert parse_event(event.model_dump()) == event


def test_json_carries_decimals_as_exact_text_and_times_with_the_shanghai_offset():
    text = ChargeLineAdded(**_line()).to_json().decode()
    assert '"det_item_fee_sumamt":"25.00"' in text and '"cnt":"2.0000"' in text and '"pric":"12.500000"' in text
    assert '"fee_ocur_time":"2025-03-03T09:00:00+08:00"' in text


def test_money_count_and_price_are_quantized_decimals():
    line = ChargeLineAdded(**_line())
    assert (line.det_item_fee_sumamt, line.cnt, line.pric) == (Decimal("25.00"), Decimal("2.0000"),
                                                                Decimal("12.500000"))


def test_floats_are_refused_for_money():
    with pytest.raises(ValidationError, match="must not be floats"):
        ChargeLineAdded(**_line(det_item_fee_sumamt=25.0))


def test_naive_times_are_shanghai_wall_time_and_aware_times_are_converted():
    event = _registered(occurred_at=dt.datetime(2025, 3, 3, 0, 15, 30, tzinfo=dt.UTC))
    assert event.occurred_at == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)
    assert event.occurred_at.tzinfo == SHANGHAI
    assert event.begntime == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)


def test_a_reversal_line_needs_a_negative_cnt_and_its_own_id():
    ok = ChargeLineReversed(**_line(feedetl_sn="L2", init_feedetl_sn="L1", cnt="-2", det_item_fee_sumamt="-25"))
    assert ok.cnt == Decimal("-2.0000")
    with pytest.raises(ValidationError, match="negative cnt"):
        ChargeLineReversed(**_line(feedetl_sn="L2", init_feedetl_sn="L1"))
    with pytest.raises(ValidationError, match="its own feedetl_sn"):
        ChargeLineReversed(**_line(init_feedetl_sn="L1", cnt="-2", det_item_fee_sumamt="-25"))


def test_a_cancellation_target_must_fit_the_visit_kind():
    with pytest.raises(ValidationError, match="registration cancellation belongs to an outpatient visit"):
        Cancellation(**_common(visit_kind="inpatient", target="registration", his_request_id="C1"))


def test_a_refund_must_name_the_settlement():
    with pytest.raises(ValidationError, match="must name the settlement"):
        RefundRequested(**_common(visit_kind="outpatient", his_request_id="R1"))


def test_settlement_defaults_follow_the_national_interface():
    event = SettlementRequested(**_common(visit_kind="outpatient", his_request_id="S1", medfee_sumamt="10"))
    assert (event.acct_used_flag, event.psn_setlway, event.mid_setl_flag) == ("0", "01", "0")


def test_a_hemodialysis_sheet_names_another_visit_than_the_one_settling_it():
    event = SettlementRequested(**_common(visit_kind="outpatient", his_request_id="S1", medfee_sumamt="10",
                                          sheet_of_visit_id="92503030001"))
    assert event.sheet_of_visit_id == "92503030001"
    with pytest.raises(ValidationError, match="sheet_of_visit_id names the inpatient account"):
        SettlementRequested(**_common(visit_kind="outpatient", his_request_id="S1", medfee_sumamt="10",
                                      sheet_of_visit_id="25030300001"))


def test_parse_event_rejects_an_unknown_type_with_a_reason():
    with pytest.raises(DecodeError, match="not a canonical HIS event: .*does not match any of the expected tags"):
        parse_event({**_common(), "type": "patient_teleported"})


def test_parse_event_errors_name_the_field_never_the_value():
    data = _registered().model_dump(mode="json")
    data["mdtrt_cert_type"] = {"nested": CERTNO}
    with pytest.raises(DecodeError) as info:
        parse_event(data)
    assert "mdtrt_cert_type" in str(info.value) and CERTNO not in str(info.value)


def test_parse_event_rejects_bad_json():
    with pytest.raises(DecodeError, match="not valid JSON"):
        parse_event(b"{not json")


def test_validation_errors_of_a_model_never_show_the_input():
    with pytest.raises(ValidationError) as info:
        PatientRegistered(**{**_registered().model_dump(), "dept_code": None})
    assert CERTNO not in str(info.value) and NAME not in str(info.value)


def test_events_are_immutable():
    event = _registered()
    with pytest.raises(ValidationError):
        event.med_type = "13"  # type: ignore[misc]
