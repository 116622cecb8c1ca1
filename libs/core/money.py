"""Decimal amounts with the platform's scales. Money is never a float.

National spec: money (16,2), counts (16,4), prices (16,6), ratios (5,4).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["MONEY", "COUNT", "PRICE", "RATIO", "ZERO", "to_decimal", "money", "count", "price", "ratio"]

MONEY = Decimal("0.01")
COUNT = Decimal("0.0001")
PRICE = Decimal("0.000001")
RATIO = Decimal("0.0001")
ZERO = Decimal("0.00")


def to_decimal(value: object) -> Decimal:
    """Exact conversion to Decimal. Floats are refused: they have already lost the cents."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("not a finite amount (NaN or Infinity)")
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise TypeError("amounts must not be floats; pass a str or Decimal")
    if isinstance(value, str):
        try:
            result = Decimal(value.strip() or "0")
        except InvalidOperation as exc:  # the text may be anything, a certno typed in the wrong box included
            raise ValueError(f"not a decimal number (text of {len(value)} characters)") from None
        if not result.is_finite():
            raise ValueError("not a finite amount (NaN or Infinity)")
        return result
    raise TypeError(f"cannot read an amount from {type(value).__name__}")


def _q(value: object, exp: Decimal) -> Decimal:
    return to_decimal(value).quantize(exp, rounding=ROUND_HALF_UP)


def money(value: object) -> Decimal:
    return _q(value, MONEY)


def count(value: object) -> Decimal:
    return _q(value, COUNT)


def price(value: object) -> Decimal:
    return _q(value, PRICE)


def ratio(value: object) -> Decimal:
    return _q(value, RATIO)
