"""Bad HIS input is refused at ingest with a reason naming the field, never accepted or rounded silently (issue 11,
point 4). One rule per test; the records are what the example Oracle HIS's connector would send."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from yibao.core.clock import SHANGHAI
from yibao.core.errors import InputError, UnmappableEventError
from yibao.hisevents.models import ChargeLineAdded, PatientRegistered, parse_event

FEE = "hisdb.HIS.OUTP_FEE_DETAIL"
FEE_TIME_US = 1741314000000000


def _line(**overrides: Any) -> dict[str, Any]:
    row = {"DETAIL_ID": "F1", "REG_ID": "25030300001", "PATIENT_ID": "P1", "FEE_TIME": FEE_TIME_US,
           "YB_CODE": "X01", "ITEM_CODE": "I01", "ITEM_NAME": "阿莫西林", "AMOUNT": "12.50", "QTY": "5",
           "PRICE": "2.5", "INIT_DETAIL_ID": None, "SETTLE_FLAG": "0"}
    row.update(overrides)
    return row


def _record(op: str, *, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> bytes:
    # Decimal values are written as JSON numbers, never through float
    text = json.dumps({"before": before, "after": after, "op": op, "ts_ms": 1741314000412,
                       "source": {"connector": "oracle", "schema": "HIS", "table": "OUTP_FEE_DETAIL",
                                  "scn": "8200007007", "rs_id": "0x01", "ssn": 0}},
                      default=lambda d: f"@@{d}@@")
    return text.replace('"@@', "").replace('@@"', "").encode()


def _ingest(ingestor, value: bytes):
    return ingestor.ingest(FEE, 0, 0, None, value)


def test_an_amount_beyond_the_decimal_context_is_bad_input_naming_the_field_not_a_transient_failure(ingestor):
    with pytest.raises(UnmappableEventError) as err:
        _ingest(ingestor, _record("c", after=_line(AMOUNT=Decimal("1E+400"))))
    assert isinstance(err.value, InputError)  # parked at once, no retries
    assert "field det_item_fee_sumamt (column AMOUNT)" in str(err.value)


def test_an_amount_with_more_than_two_decimals_is_refused_never_rounded(ingestor):
    with pytest.raises(UnmappableEventError) as err:
        _ingest(ingestor, _record("c", after=_line(AMOUNT="0.00001", QTY="0.0001", PRICE="0.1")))
    assert "field det_item_fee_sumamt (column AMOUNT)" in str(err.value)
    assert "more than 2 decimals" in str(err.value) and "never rounded" in str(err.value)


def test_the_event_models_refuse_more_decimals_than_the_platform_has_instead_of_rounding():
    with pytest.raises(ValidationError, match="more than 2 decimals"):
        ChargeLineAdded.model_validate(_canonical_line(det_item_fee_sumamt="12.505"))
    with pytest.raises(ValidationError, match="more than 4 decimals"):
        ChargeLineAdded.model_validate(_canonical_line(cnt="5.00001"))
    assert ChargeLineAdded.model_validate(_canonical_line(det_item_fee_sumamt="12.5000")).det_item_fee_sumamt \
        == Decimal("12.50")


def test_an_amount_that_is_not_cnt_times_pric_is_refused(ingestor):
    with pytest.raises(UnmappableEventError, match="det_item_fee_sumamt differs from cnt × pric"):
        _ingest(ingestor, _record("c", after=_line(AMOUNT="13.50")))
    # within the platform's cent, as 2204 accepts it
    (event,) = _ingest(ingestor, _record("c", after=_line(AMOUNT="3.33", QTY="1", PRICE="3.333333"))).events
    assert event.det_item_fee_sumamt == Decimal("3.33")


def test_a_negative_line_without_the_line_it_reverses_is_refused(ingestor):
    with pytest.raises(UnmappableEventError, match="negative cnt or det_item_fee_sumamt needs the line it reverses"):
        _ingest(ingestor, _record("c", after=_line(AMOUNT="-12.50", QTY="-5")))


def test_a_negative_price_is_refused():
    with pytest.raises(ValidationError, match="pric must not be negative"):
        ChargeLineAdded.model_validate(_canonical_line(pric="-2.5", cnt="-5"))


def test_a_billed_charge_line_edited_in_its_money_columns_is_parked_with_the_reason(ingestor):
    with pytest.raises(UnmappableEventError) as err:
        _ingest(ingestor, _record("u", before=_line(), after=_line(AMOUNT="10.00", QTY="4")))
    assert err.value.code == "refused"
    assert "rule line_edited: update refused" in str(err.value) and "reversal line" in str(err.value)
    assert err.value.dlq_key == "25030300001"


def test_a_charge_line_update_of_other_columns_is_skipped_with_a_reason(ingestor):
    result = _ingest(ingestor, _record("u", before=_line(), after=_line(SETTLE_FLAG="1")))
    assert not result.events and "no rule matches op u" in (result.skipped or "")


def test_a_charge_line_update_without_a_before_image_is_parked_not_guessed(ingestor):
    with pytest.raises(UnmappableEventError) as err:
        _ingest(ingestor, _record("u", after=_line(AMOUNT="10.00", QTY="4")))
    assert err.value.code == "refused" and "without a before image" in str(err.value)


def test_a_deleted_charge_line_is_parked_with_the_reason(ingestor):
    with pytest.raises(UnmappableEventError) as err:
        _ingest(ingestor, _record("d", before=_line()))
    assert err.value.code == "refused" and "rule line_deleted: delete refused" in str(err.value)


def test_a_date_before_1901_survives_the_json_round_trip_to_the_second():
    # Asia/Shanghai is +08:05:43 (local mean time) before 1901; JSON offsets in whole minutes moved it by 43 s
    begntime = dt.datetime(1900, 1, 1, 0, 0, tzinfo=SHANGHAI)
    event = PatientRegistered.model_validate({
        "event_id": "e" * 16, "his_visit_id": "V1", "his_patient_id": "P1", "occurred_at": begntime,
        "source": {"topic": "t", "partition": 0, "offset": 0, "table": "T"}, "ipt_otp_no": "MZ1",
        "mdtrt_cert_type": "02", "med_type": "11", "begntime": begntime, "dept_code": "01", "dept_name": "内科"})
    back = parse_event(event.to_json())
    assert back.begntime == begntime and back.begntime.replace(tzinfo=None) == dt.datetime(1900, 1, 1)
    assert back.occurred_at.utcoffset() == begntime.utcoffset()
    assert parse_event(back.to_json()) == back


def test_a_date_column_of_1900_01_01_from_the_connector_is_that_day_at_midnight(ingestor):
    # io.debezium.time.Timestamp of a zone-less 1900-01-01 00:00: the wall time as if it were UTC
    epoch_ms = int((dt.datetime(1900, 1, 1) - dt.datetime(1970, 1, 1)).total_seconds() * 1000)
    (event,) = _ingest(ingestor, _record("c", after=_line(FEE_TIME=epoch_ms * 1000))).events
    assert event.fee_ocur_time.replace(tzinfo=None) == dt.datetime(1900, 1, 1)
    assert parse_event(event.to_json()).fee_ocur_time.replace(tzinfo=None) == dt.datetime(1900, 1, 1)


def _canonical_line(**overrides: Any) -> dict[str, Any]:
    line = {"event_id": "e" * 16, "his_visit_id": "V1", "visit_kind": "outpatient", "his_patient_id": "P1",
            "occurred_at": "2026-03-01T08:00:00+08:00", "feedetl_sn": "F1", "fee_ocur_time": "2026-03-01T08:00:00",
            "source": {"topic": "t", "partition": 0, "offset": 0, "table": "T"}, "med_list_codg": "X01",
            "medins_list_codg": "I01", "det_item_fee_sumamt": "12.50", "cnt": "5", "pric": "2.5"}
    line.update(overrides)
    return line
