"""The sign string (mobilepay.md, Signature 1-2): filter, ASCII sort, nested compact JSON, &key=appSecret."""

from __future__ import annotations

from decimal import Decimal

import pytest

from yibao.envelope.errors import EnvelopeValidationError
from yibao.envelope.mobilepay import build_sign_string


def test_keys_are_sorted_in_plain_ascii_order_and_secret_appended_last() -> None:
    text = build_sign_string({"version": "2.0.1", "appId": "A1", "timestamp": "20240102030405"}, "S")
    assert text == "appId=A1&timestamp=20240102030405&version=2.0.1&key=S"


def test_sort_is_case_sensitive_upper_case_first_not_case_insensitive() -> None:
    assert build_sign_string({"b": "2", "B": "1", "a": "3"}, "S") == "B=1&a=3&b=2&key=S"


def test_sign_data_enc_data_and_extra_are_left_out() -> None:
    text = build_sign_string({"appId": "A", "signData": "x", "encData": "y", "extra": {"k": "v"}}, "S")
    assert text == "appId=A&key=S"


@pytest.mark.parametrize("empty", [None, "", {}, []])
def test_empty_values_are_left_out(empty) -> None:
    assert build_sign_string({"appId": "A", "message": empty}, "S") == "appId=A&key=S"


def test_zero_and_false_are_values_not_empty() -> None:
    assert build_sign_string({"code": 0, "success": False}, "S") == "code=0&success=false&key=S"


def test_nested_object_is_compact_json_with_sorted_keys_and_unescaped_chinese() -> None:
    data = {"payOrdId": "ORD1", "deptName": "内科", "feedetailList": [{"z": "1", "a": "药品"}]}
    text = build_sign_string({"appId": "A", "data": data}, "S")
    assert text == 'appId=A&data={"deptName":"内科","feedetailList":[{"a":"药品","z":"1"}],"payOrdId":"ORD1"}&key=S'


def test_decimals_are_plain_numbers_with_their_scale_never_exponent_or_quotes() -> None:
    data = {"feeSumamt": Decimal("12.30"), "cnt": Decimal("1E+2"), "n": 3}
    assert build_sign_string({"data": data}, "S") == 'data={"cnt":100,"feeSumamt":12.30,"n":3}&key=S'


def test_null_members_of_nested_objects_are_left_out() -> None:
    assert build_sign_string({"data": {"a": None, "b": "x"}}, "S") == 'data={"b":"x"}&key=S'


def test_numbers_can_be_stringified_for_a_counterpart_that_signs_them_as_strings() -> None:
    data = {"feeSumamt": Decimal("12.30"), "n": 3, "flag": True}
    text = build_sign_string({"data": data}, "S", numbers="string")
    assert text == 'data={"feeSumamt":"12.30","flag":true,"n":"3"}&key=S'


def test_a_float_is_refused_with_its_path() -> None:
    with pytest.raises(EnvelopeValidationError) as info:
        build_sign_string({"data": {"list": [{"price": 1.5}]}}, "S")
    assert info.value.path == "data.list[0].price"
    assert "float" in info.value.rule


def test_quotes_and_backslashes_in_nested_strings_are_json_escaped() -> None:
    assert build_sign_string({"data": {"a": 'x"y\\z'}}, "S") == 'data={"a":"x\\"y\\\\z"}&key=S'
