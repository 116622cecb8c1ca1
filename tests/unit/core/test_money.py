"""Decimal amounts with the national platform's scales (yibao.core.money). Money is never a float."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from yibao.core.errors import YibaoError
from yibao.core.money import ZERO, count, money, price, ratio, to_decimal

HELPERS: dict[str, Callable[[object], Decimal]] = {"money": money, "count": count, "price": price, "ratio": ratio}


@pytest.mark.parametrize("helper", [to_decimal, money, count, price, ratio])
def test_floats_are_refused(helper: Callable[[object], Decimal]) -> None:
    with pytest.raises(TypeError, match="float"):
        helper(0.1)


@pytest.mark.parametrize("helper", [to_decimal, money])
def test_booleans_are_refused(helper: Callable[[object], Decimal]) -> None:
    with pytest.raises(TypeError):
        helper(True)


@pytest.mark.parametrize(
    "helper, text, expected",
    [
        # (16,2) money
        ("money", "2.345", "2.35"), ("money", "2.344", "2.34"), ("money", "-2.345", "-2.35"), ("money", "0.005", "0.01"),
        ("money", "12345678901234.565", "12345678901234.57"), ("money", "10", "10.00"),
        # (16,4) counts
        ("count", "1.00005", "1.0001"), ("count", "-1.00005", "-1.0001"), ("count", "3", "3.0000"),
        # (16,6) prices
        ("price", "12.0000005", "12.000001"), ("price", "12.0000004", "12.000000"), ("price", "0.5", "0.500000"),
        # (5,4) ratios
        ("ratio", "0.12345", "0.1235"), ("ratio", "0.99995", "1.0000"), ("ratio", "1", "1.0000"),
    ],
)
def test_each_kind_has_its_scale_and_rounds_half_up(helper: str, text: str, expected: str) -> None:
    result = HELPERS[helper](text)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_integers_decimals_and_padded_text_are_read_exactly() -> None:
    assert money(10) == Decimal("10.00")
    assert money(Decimal("0.1") + Decimal("0.2")) == Decimal("0.30")
    assert money(" 12.3 ") == Decimal("12.30")
    assert to_decimal("1e3") == Decimal("1000")


def test_an_empty_amount_reads_as_zero() -> None:
    assert money("") == ZERO and money("  ") == ZERO


def test_text_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError, match="not a decimal number"):
        money("1,000.00")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amounts_are_refused(text: str) -> None:
    with pytest.raises((ValueError, YibaoError)):
        money(text)


def test_the_refusal_of_bad_text_carries_no_personal_data() -> None:
    with pytest.raises(ValueError) as refused:
        money("11010519491231002X")
    assert "11010519491231002X" not in str(refused.value)


def test_the_result_is_never_a_float() -> None:
    for helper in HELPERS.values():
        assert type(helper("1.5")) is Decimal
