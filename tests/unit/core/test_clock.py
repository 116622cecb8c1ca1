"""Time is Asia/Shanghai, always (yibao.core.clock)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.core import clock

UTC = dt.timezone.utc
NOON_SHANGHAI = dt.datetime(2024, 1, 1, 12, 0, 0, tzinfo=clock.SHANGHAI)


def test_now_is_aware_shanghai_time() -> None:
    assert clock.now().utcoffset() == dt.timedelta(hours=8)
    assert clock.now().tzinfo is clock.SHANGHAI


def test_a_naive_datetime_is_read_as_shanghai_wall_time() -> None:
    value = clock.as_shanghai(dt.datetime(2024, 1, 1, 12, 0))
    assert value == NOON_SHANGHAI and value.tzinfo is clock.SHANGHAI and value.hour == 12


def test_an_aware_datetime_is_converted_to_shanghai() -> None:
    value = clock.as_shanghai(dt.datetime(2024, 1, 1, 4, 0, tzinfo=UTC))
    assert value == NOON_SHANGHAI and value.hour == 12 and value.tzinfo is clock.SHANGHAI


def test_epoch_ms_are_shanghai_time() -> None:
    assert clock.from_epoch_ms(0) == dt.datetime(1970, 1, 1, 8, 0, tzinfo=clock.SHANGHAI)
    assert clock.from_epoch_ms(1704081600000) == NOON_SHANGHAI


@given(st.integers(min_value=-2_208_988_800_000, max_value=4_102_444_800_000))  # 1900 … 2100
def test_epoch_ms_convert_exactly_to_the_millisecond(ms: int) -> None:
    value = clock.from_epoch_ms(ms)
    assert value == dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms)
    assert value.tzinfo is clock.SHANGHAI


def test_epoch_ms_before_1970_are_converted() -> None:  # birth dates from Oracle DATE columns
    assert clock.from_epoch_ms(-1) == dt.datetime(1970, 1, 1, 7, 59, 59, 999000, tzinfo=clock.SHANGHAI)


def test_format_datetime_is_yyyy_MM_dd_HH_mm_ss_in_shanghai() -> None:
    assert clock.format_datetime(dt.datetime(2024, 1, 1, 4, 5, 6, 789, tzinfo=UTC)) == "2024-01-01 12:05:06"
    assert clock.format_datetime(dt.datetime(2024, 1, 1, 12, 5, 6)) == "2024-01-01 12:05:06"


def test_format_compact_is_yyyyMMddHHmmss_in_shanghai() -> None:
    assert clock.format_compact(dt.datetime(2023, 12, 31, 16, 0, 1, tzinfo=UTC)) == "20240101000001"


def test_format_date_is_the_shanghai_date() -> None:
    assert clock.format_date(dt.datetime(2023, 12, 31, 16, 30, tzinfo=UTC)) == "2024-01-01"
    assert clock.format_date(dt.date(2024, 2, 29)) == "2024-02-29"


@pytest.mark.parametrize("text", ["2024-01-01 12:00:00", "20240101120000", "2024-01-01T12:00:00",
                                  "2024-01-01T04:00:00Z", "2024-01-01T12:00:00+08:00", " 2024-01-01 12:00:00 "])
def test_parse_reads_the_three_forms(text: str) -> None:
    value = clock.parse_datetime(text)
    assert value == NOON_SHANGHAI and value.tzinfo is clock.SHANGHAI


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_format_and_parse_round_trip_to_the_second(naive: dt.datetime) -> None:
    value = clock.as_shanghai(naive.replace(microsecond=0))
    assert clock.parse_datetime(clock.format_datetime(value)) == value
    assert clock.parse_datetime(clock.format_compact(value)) == value


def test_a_result_for_his_keeps_a_pre_1901_time_to_the_second_through_json() -> None:
    from yibao.core.results import HisResult

    old = dt.datetime(1900, 1, 1, 0, 0, tzinfo=clock.SHANGHAI)  # local mean time, +08:05:43
    result = HisResult(message_id="m1", kind="settled", service="settlement", his_visit_id="V1",
                       visit_kind="outpatient", setl_time=old)
    back = HisResult.model_validate_json(result.model_dump_json())
    assert back.setl_time == old and back.setl_time.replace(tzinfo=None) == dt.datetime(1900, 1, 1)
