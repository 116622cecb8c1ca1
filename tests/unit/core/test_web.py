"""Request bodies read safely (yibao.core.web.read_json_object): every malformed body is a BadRequest naming the
problem, with the HTTP status to answer — never an exception a server would turn into a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest

from yibao.core.errors import InputError
from yibao.core.web import BadRequest, read_json_object


def refused(body: bytes, **kw: object) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        read_json_object(body, **kw)  # type: ignore[arg-type]
    return caught.value


def test_a_json_object_is_read_with_exact_decimals() -> None:
    assert read_json_object(b'{"a": 10.10, "b": 3, "c": "x", "d": [1, {"e": null}]}') == {
        "a": Decimal("10.10"), "b": 3, "c": "x", "d": [1, {"e": None}]}


def test_a_bad_request_is_an_input_error() -> None:
    assert issubclass(BadRequest, InputError)


def test_deeply_nested_json_is_refused_without_recursing() -> None:
    error = refused(b"[" * 200_000 + b"]" * 200_000, max_bytes=10**6)
    assert error.status == 400 and "deeper than" in str(error)


def test_nesting_inside_strings_does_not_count() -> None:
    assert read_json_object(b'{"a": "' + b"[" * 1000 + b'"}')["a"] == "[" * 1000


@pytest.mark.parametrize("number", [b"1e999999999", b"-1e-999999999", b"1E+400", b"1e99999999999999999999"])
def test_a_number_with_an_absurd_exponent_is_refused(number: bytes) -> None:
    error = refused(b'{"reg_fee": ' + number + b"}")
    assert error.status == 400 and "exponent" in str(error)


def test_a_number_with_too_many_digits_is_refused() -> None:
    assert "digits" in str(refused(b'{"n": ' + b"9" * 5000 + b"}"))
    assert "digits" in str(refused(b'{"n": 0.' + b"1" * 100 + b"}"))


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(constant: bytes) -> None:
    assert "not a number JSON allows" in str(refused(b'{"n": ' + constant + b"}"))


def test_a_field_given_twice_is_refused_naming_it() -> None:
    assert "'reg_fee' is given twice" in str(refused(b'{"reg_fee": "1", "reg_fee": "2"}'))


@pytest.mark.parametrize("body, words", [
    (b"", "empty"), (b"   ", "empty"), (b"\xff\xfe{}", "not UTF-8"), (b"{'a': 1}", "not valid JSON"),
    (b'{"a": 1} {"b": 2}', "not valid JSON"), (b'{"a": 1', "not valid JSON"), (b"null", "not null"),
    (b"[1]", "not an array"), (b'"text"', "not a string"), (b"12", "not a number"), (b"true", "not a boolean"),
])
def test_a_body_that_is_not_one_json_object_is_refused_saying_why(body: bytes, words: str) -> None:
    error = refused(body)
    assert error.status == 400 and words in str(error)


def test_a_body_over_the_limit_is_413() -> None:
    error = refused(b'{"a": "' + b"x" * 100 + b'"}', max_bytes=50)
    assert error.status == 413 and "larger than 50 bytes" in str(error)


def test_the_message_never_repeats_the_value() -> None:
    error = refused(b'{"certno": "110105194912310021", "certno": "110105194912310021"}')
    assert "110105194912310021" not in str(error)
