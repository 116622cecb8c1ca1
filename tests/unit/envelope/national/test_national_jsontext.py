"""JSON text rules: exact Decimals, unescaped Chinese, compact, no floats."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

import pytest

from yibao.core.clock import SHANGHAI
from yibao.envelope.national.jsontext import UnencodableValue, dumps, loads


def test_decimal_is_written_as_its_exact_number_text():
    assert dumps({"amt": Decimal("12.30"), "cnt": Decimal("1.0000"), "pric": Decimal("0.000001")}) == (
        '{"amt":12.30,"cnt":1.0000,"pric":0.000001}'
    )


def test_decimal_is_never_written_in_exponent_form():
    assert dumps([Decimal("1E+2"), Decimal("0E-8"), Decimal("-0.00")]) == "[100,0.00000000,0.00]"


def test_large_amount_keeps_every_digit():
    assert dumps(Decimal("12345678901234.99")) == "12345678901234.99"


def test_chinese_is_written_unescaped():
    assert dumps({"dise_name": "高血压"}) == '{"dise_name":"高血压"}'


def test_text_is_compact_without_spaces():
    assert dumps({"a": [1, 2], "b": {"c": None, "d": True}}) == '{"a":[1,2],"b":{"c":null,"d":true}}'


def test_control_characters_and_quotes_are_escaped():
    assert loads(dumps({"memo": 'a"b\\c\n\t'})) == {"memo": 'a"b\\c\n\t'}


def test_float_is_refused_naming_its_path():
    with pytest.raises(UnencodableValue) as caught:
        dumps({"feedetail": [{"cnt": 1.5}]})
    assert caught.value.path == "feedetail[0].cnt"


def test_non_finite_decimal_is_refused():
    with pytest.raises(UnencodableValue):
        dumps(Decimal("NaN"))


def test_datetime_is_written_in_platform_format_in_shanghai_time():
    utc = _dt.datetime(2024, 1, 1, 0, 30, tzinfo=_dt.timezone.utc)
    assert dumps({"t": utc, "d": _dt.date(2024, 2, 29)}) == '{"t":"2024-01-01 08:30:00","d":"2024-02-29"}'


def test_naive_datetime_is_read_as_shanghai_time():
    assert dumps(_dt.datetime(2024, 1, 1, 8, 0)) == dumps(_dt.datetime(2024, 1, 1, 8, 0, tzinfo=SHANGHAI))


def test_reading_turns_fractions_into_decimals_never_floats():
    value = loads('{"amt": 0.1, "n": 3}')
    assert value == {"amt": Decimal("0.1"), "n": 3}
    assert isinstance(value["amt"], Decimal)
