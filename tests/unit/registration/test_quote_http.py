"""The 诊查费 quote endpoint refuses every malformed body with a 4xx naming the problem, never a 500
(services/registration/http.py; issue 11). The HTTP round trip on a real worker is in
tests/integration/core/test_web_endpoints.py."""

from __future__ import annotations

import pytest

from yibao.registration.config import load_rules
from yibao.registration.http import MAX_QUOTE_BODY, quote_response

RULES = load_rules()


def post(body: bytes) -> tuple[int, dict]:
    return quote_response(RULES, body)


def test_a_good_quote_is_answered() -> None:
    status, body = post(b'{"reg_type": "01", "insutype": "310", "reg_fee": "10.00"}')
    assert status == 200 and body["reg_fee"] == "10.00"


def test_deeply_nested_json_is_400() -> None:
    status, body = post(b'{"reg_fee": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    assert status == 400 and "deeper than" in body["error"]


def test_1e999999999_as_a_number_is_400() -> None:
    status, body = post(b'{"reg_fee": 1e999999999}')
    assert status == 400 and "exponent" in body["error"]


def test_1e999999999_as_text_is_400_naming_the_field() -> None:
    status, body = post(b'{"reg_fee": "1e999999999", "insutype": "310"}')
    assert status == 400 and body["error"].startswith("reg_fee: larger than")


def test_an_amount_beyond_the_decimal_context_is_400() -> None:
    status, body = post(b'{"reg_fee": 1E+40, "insutype": "310"}')
    assert status == 400 and body["error"].startswith("reg_fee:")


def test_an_amount_with_more_than_two_decimals_is_refused_not_rounded() -> None:
    for fee in (b'"10.005"', b'"0.00001"', b'"1e-999999999"'):
        status, body = post(b'{"reg_fee": ' + fee + b', "insutype": "310"}')
        assert status == 400 and "2 decimal places" in body["error"], fee


def test_trailing_zeros_and_minus_zero_are_fine() -> None:
    assert post(b'{"reg_fee": "10.500", "insutype": "310"}')[1]["reg_fee"] == "10.50"
    assert post(b'{"reg_fee": "-0"}')[1]["reg_fee"] == "0.00"


@pytest.mark.parametrize("value", [b"NaN", b'"NaN"', b'"Infinity"', b'"-Infinity"'])
def test_nan_and_infinity_are_400(value: bytes) -> None:
    assert post(b'{"reg_fee": ' + value + b"}")[0] == 400


def test_a_huge_integer_is_400() -> None:
    status, body = post(b'{"reg_fee": 1' + b"0" * 5000 + b"}")
    assert status == 400 and "digits" in body["error"]


def test_a_body_larger_than_the_limit_is_413() -> None:
    status, body = post(b'{"reg_fee": "1", "reg_type": "' + b"x" * MAX_QUOTE_BODY + b'"}')
    assert status == 413


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b"\xff", b'{"reg_fee": "1"} trailing', b'{"reg_fee": {}}',
                                  b'{"reg_fee": true}', b'{"reg_fee": "1", "reg_fee": "2"}',
                                  b'{"reg_fee": "' + b"9" * 100 + b'"}', b'{"reg_fee": "10", "insutype": 310}'])
def test_other_malformed_bodies_are_400_with_a_reason(body: bytes) -> None:
    status, answer = post(body)
    assert status == 400 and answer["error"]
