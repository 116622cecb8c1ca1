"""Kafka Connect value encodings and the mapping's value transforms (connect_types, transforms)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from yibao.core.clock import SHANGHAI
from yibao.hisevents import connect_types as ct
from yibao.hisevents.transforms import TransformError, convert, normalise_code


@pytest.mark.parametrize(
    ("b64", "scale", "expected"),
    [("CcQ=", 2, Decimal("25.00")), ("9jw=", 2, Decimal("-25.00")), ("AA==", 2, Decimal("0.00")),
     ("EtaH", 4, Decimal("123.4567")), ("EtaH", 0, Decimal("1234567"))],
)
def test_precise_decimal_is_base64_of_the_twos_complement_unscaled_value(b64, scale, expected):
    value = ct.decimal_from_base64(b64, scale)
    assert value == expected and value.as_tuple().exponent == -scale


def test_epoch_ms_of_a_zoneless_column_is_the_wall_time_in_shanghai_not_shifted():
    # Debezium encodes Oracle DATE 2025-03-03 08:15:30 as if it were UTC: 1740989730000
    value = ct.wall_time_from_epoch(1740989730000, "ms")
    assert value == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)
    assert value.utcoffset() == dt.timedelta(hours=8)


def test_micro_and_nano_timestamps_keep_their_fraction():
    assert ct.wall_time_from_epoch(1740989730123456, "us") == dt.datetime(2025, 3, 3, 8, 15, 30, 123456,
                                                                          tzinfo=SHANGHAI)
    assert ct.wall_time_from_epoch(1740989730123456789, "ns") == dt.datetime(2025, 3, 3, 8, 15, 30, 123456,
                                                                             tzinfo=SHANGHAI)


def test_date_is_days_since_epoch():
    assert ct.date_from_epoch_days(20150) == dt.date(2025, 3, 3)


def test_zoned_timestamp_is_a_real_instant_converted_to_shanghai():
    assert ct.zoned_to_shanghai("2025-03-03T00:15:30Z") == dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)


def test_epoch_out_of_range_is_a_conversion_error_without_the_value():
    with pytest.raises(ct.ConversionError) as info:
        ct.wall_time_from_epoch(10**20, "ms")
    assert "100000" not in str(info.value)


# -- transforms --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mode"),
    [("25.00", "string"), ("CcQ=", "precise"), (Decimal("25.0"), "double"), ("25.00", "auto"), ("CcQ=", "auto"),
     (25, "auto"), ({"scale": 2, "value": "CcQ="}, "auto")],
)
def test_decimal_text_precise_and_double_give_the_same_amount(raw, mode):
    assert convert(raw, "decimal", scale=2, decimal_mode=mode) == Decimal("25.00")


def test_precise_decimal_without_a_scale_is_refused_with_the_reason():
    with pytest.raises(TransformError, match="base64 precise decimal .* no scale"):
        convert("CcQ=", "decimal")


def test_floats_are_refused():
    with pytest.raises(TransformError, match="float"):
        convert(25.0, "decimal", scale=2)


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [(1740989730000, None, dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)),
     (1740989730123456, "us", dt.datetime(2025, 3, 3, 8, 15, 30, 123456, tzinfo=SHANGHAI)),
     (20150, "days", dt.datetime(2025, 3, 3, tzinfo=SHANGHAI)),
     ("2025-03-03 08:15:30", None, dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)),
     ("20250303081530", None, dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI)),
     ("2025-03-03T00:15:30Z", None, dt.datetime(2025, 3, 3, 8, 15, 30, tzinfo=SHANGHAI))],
)
def test_datetime_from_epoch_numbers_and_text(raw, unit, expected):
    assert convert(raw, "datetime", unit=unit) == expected


@pytest.mark.parametrize(
    "raw", [20150, 1740960000000, "2025-03-03", "20250303", dt.datetime(2025, 3, 3, 23, 59, tzinfo=SHANGHAI)]
)
def test_date_from_epoch_days_epoch_ms_or_text(raw):
    assert convert(raw, "date") == dt.date(2025, 3, 3)


def test_bad_datetime_text_is_refused_without_quoting_it():
    with pytest.raises(TransformError) as info:
        convert("2025-02-30 25:61:00", "datetime")
    assert "25:61" not in str(info.value)


def test_numbers_become_text_without_exponent_and_blank_text_is_null():
    assert convert(Decimal("1E+3"), "str") == "1000"
    assert convert(25030300001, "str") == "25030300001"
    assert convert("   ", "str") is None


def test_list_text_is_split_on_the_separator():
    assert convert("81234, 85678,,", "list", separator=",") == ["81234", "85678"]


def test_codes_compare_as_text_whatever_their_json_type():
    assert normalise_code(9) == normalise_code("9") == normalise_code(Decimal("9")) == normalise_code(" 9 ") == "9"
