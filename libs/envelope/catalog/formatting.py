"""The national platform's formatting rules, one value at a time.

From the spec (tender seed 000, 重点说明; national-platform.md):

* date-times are ``yyyy-MM-dd HH:mm:ss`` and dates ``yyyy-MM-dd``, in Beijing time (Asia/Shanghai);
* an empty numeric value is sent as 0, an empty string as "";
* money is decimal(16,2), counts (16,4), prices (16,6), ratios (5,4) — never a float.

Decimal values are returned as :class:`~decimal.Decimal` quantized to the field's scale (``Decimal("12.50")``
for money): the envelope's JSON encoder writes a Decimal's exact digits, so the scale chosen here is the scale
on the wire. Quantizing never rounds: a value with more decimals than the field allows (``12.345`` for money)
is refused, because silently moving a cent is worse than a clear local error.

Errors are :class:`FormatProblem` (rule + detail, no value); the caller adds infno and field path. Values are
never echoed: they may be personal (names, certificate numbers), and a rule plus a length is enough to act on.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.core.clock import format_date, format_datetime

from .fields import FieldSpec, FieldType

__all__ = ["FormatProblem", "format_value", "format_untyped", "is_blank", "decimal_digits"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d+$")


class FormatProblem(Exception):
    """A value that cannot be put in the platform's format. ``rule`` is the rule broken, ``detail`` a hint."""

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(rule)
        self.rule = rule
        self.detail = detail


def is_blank(value: Any) -> bool:
    """Empty in the spec's sense: absent, null, or an empty/blank string."""
    return value is None or (isinstance(value, str) and not value.strip())


def _kind(value: Any) -> str:
    return type(value).__name__


def format_value(spec: FieldSpec, value: Any) -> Any:
    """The wire form of a scalar ``value`` for ``spec`` (objects and arrays are walked by the caller)."""
    t = spec.type
    if t is FieldType.STRING:
        return _string(spec, value)
    if t is FieldType.DECIMAL:
        return _decimal(spec, value)
    if t is FieldType.INTEGER:
        return _integer(spec, value)
    if t is FieldType.DATE:
        return _date(spec, value)
    if t is FieldType.DATETIME:
        return _datetime(spec, value)
    if t is FieldType.BYTES:
        return _bytes(spec, value)
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")  # pragma: no cover - containers


def _string(spec: FieldSpec, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Codes such as "01" must not travel as numbers (01 → 1 loses the padding): refuse rather than guess.
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}, expected text")


def _integer(spec: FieldSpec, value: Any) -> int:
    if is_blank(value):
        return 0
    if isinstance(value, bool) or isinstance(value, float):
        raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        raise FormatProblem(f"type {spec.rule_type}", "not a whole number")
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")


def decimal_digits(value: Decimal) -> int:
    """Digits before the decimal point (0 for 0.xx)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return max(len(digits) + exponent, 0) if any(digits) else 0


def _decimal(spec: FieldSpec, value: Any) -> Decimal:
    assert spec.precision is not None and spec.scale is not None
    exp = Decimal(1).scaleb(-spec.scale)
    if is_blank(value):
        return Decimal(0).quantize(exp)
    if isinstance(value, bool) or isinstance(value, float):
        detail = "floats are refused; pass a Decimal, int or str" if isinstance(value, float) else f"got {_kind(value)}"
        raise FormatProblem(f"type {spec.rule_type}", detail)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise FormatProblem(f"type {spec.rule_type}", "not a decimal number") from None
    else:
        raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")
    if not number.is_finite():
        raise FormatProblem(f"type {spec.rule_type}", "not a finite number")
    if decimal_digits(number) > spec.precision - spec.scale:
        raise FormatProblem(f"precision {spec.rule_type}",
                            f"at most {spec.precision - spec.scale} digits before the point")
    try:
        quantized = number.quantize(exp)
    except InvalidOperation:
        raise FormatProblem(f"precision {spec.rule_type}", "too many digits") from None
    if quantized != number:
        raise FormatProblem(f"scale {spec.rule_type}", f"at most {spec.scale} decimals; refusing to round")
    return quantized


def _date(spec: FieldSpec, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _dt.datetime) or isinstance(value, _dt.date):
        return format_date(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        if _DATE.match(text):
            try:
                _dt.date.fromisoformat(text)
            except ValueError:
                raise FormatProblem(f"type {spec.rule_type}", "not a calendar date") from None
            return text
        raise FormatProblem(f"type {spec.rule_type}", "expected yyyy-MM-dd")
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")


def _datetime(spec: FieldSpec, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if isinstance(value, _dt.date):
        # A bare date for a date-time is ambiguous (start or end of the day?): the caller must say.
        raise FormatProblem(f"type {spec.rule_type}", "got a date; pass a datetime")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ""
        if _DATETIME.match(text):
            try:
                _dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise FormatProblem(f"type {spec.rule_type}", "not a calendar date-time") from None
            return text
        raise FormatProblem(f"type {spec.rule_type}", "expected yyyy-MM-dd HH:mm:ss")
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")


def _bytes(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise FormatProblem(f"type {spec.rule_type}", f"got {_kind(value)}")


def format_untyped(value: Any) -> Any:
    """Formatting of a scalar the catalog has no type for (raw-JSON transactions, extra fields).

    Dates and date-times get the platform's format (Shanghai time); floats are refused (money must not travel
    as binary floating point); everything else is left alone. ``None`` stays ``None``: without a type we
    cannot know whether empty means 0 or "" — give the value.
    """
    if isinstance(value, float):
        raise FormatProblem("type number", "floats are refused; pass a Decimal, int or str")
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if isinstance(value, _dt.date):
        return format_date(value)
    return value
