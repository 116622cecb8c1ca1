"""Value transforms of the mapping files: a raw column value → the value a canonical event field wants.

Kinds (inferred from the target field, or stated with ``type:`` in the mapping):

* ``str``      — text; numbers are written without exponent (an Oracle NUMBER id 1001 → "1001"), dates as
  ``yyyy-MM-dd`` / ``yyyy-MM-dd HH:mm:ss``; blank text counts as null (Oracle stores '' as NULL anyway).
* ``int``      — integers (also integral Decimals and digit strings).
* ``decimal``  — Decimal, never float: JSON numbers (already Decimal), decimal text, or base64 of the unscaled
  integer (``decimal.handling.mode=precise`` without a schema; then the mapping's ``scale`` is required).
  ``scale`` also states how many decimals the value may have: a value with more is refused, never rounded.
  More than 20 integer digits (1E+400) is refused too.
* ``datetime`` — aware, Asia/Shanghai. Epoch numbers are the wall-time encoding of zone-less columns (``unit``
  ms by default, us, ns, or days); text in ``yyyy-MM-dd HH:mm:ss``, ISO-8601 or ``yyyyMMddHHmmss``.
* ``date``     — epoch days or epoch ms (told apart by magnitude unless ``unit`` says), a datetime's date, or
  ``yyyy-MM-dd`` / ``yyyyMMdd`` text.
* ``list``     — a list of strings, or text split on ``separator`` (default ",").

Every failure raises :class:`TransformError` whose message names the rule broken, never the value.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Any, Literal

from yibao.core.clock import SHANGHAI, as_shanghai, format_date, format_datetime
from yibao.hisevents import connect_types as ct

__all__ = ["Kind", "KINDS", "DecimalMode", "TransformError", "convert", "normalise_code"]

Kind = Literal["str", "int", "decimal", "datetime", "date", "list"]
KINDS: tuple[str, ...] = ("str", "int", "decimal", "datetime", "date", "list")
DecimalMode = Literal["auto", "string", "precise", "double"]

_DAYS_LIMIT = 1_000_000  # |n| below this is a day count (year ±4707), above it epoch milliseconds
#: no HIS amount, count, price or id needs more; beyond it a value is bad input (1E+400), not a transient fault
_MAX_INTEGER_DIGITS = 20


class TransformError(ValueError):
    """A value that the transform cannot turn into its target kind; the message never contains the value."""


def normalise_code(value: Any) -> str | None:
    """The text form used for code-map lookups and ``when`` comparisons: 1, Decimal('1'), '1 ' → '1'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(int(value))
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if isinstance(value, _dt.date):
        return format_date(value)
    return str(value).strip()


def _to_str(value: Any) -> str | None:
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, _dt.datetime):
        return format_datetime(value)
    if isinstance(value, _dt.date):
        return format_date(value)
    raise TransformError(f"cannot read text from a {type(value).__name__}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TransformError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise TransformError("not an integer")


def _to_decimal(value: Any, scale: int | None, mode: DecimalMode) -> Decimal:
    if isinstance(value, str) and mode != "double":
        text = value.strip()
        plain = ct.looks_like_plain_decimal(text)
        if mode == "precise" or (mode == "auto" and not plain):
            if scale is None:
                raise TransformError(
                    "looks like a base64 precise decimal (decimal.handling.mode=precise) but the mapping gives no scale"
                )
            try:
                result = ct.decimal_from_base64(text, scale)
            except ct.ConversionError as exc:
                raise TransformError(str(exc)) from None
        else:
            try:
                result = ct.plain_decimal(text)
            except ct.ConversionError as exc:
                raise TransformError(str(exc)) from None
    elif isinstance(value, dict):
        try:
            result = ct.decimal_from_variable_scale(value)
        except ct.ConversionError as exc:
            raise TransformError(str(exc)) from None
    else:
        try:
            result = ct.plain_decimal(value)
        except ct.ConversionError as exc:
            raise TransformError(str(exc)) from None
    if not result.is_finite():
        raise TransformError("not a finite decimal")
    if scale is not None:
        if result.is_zero():
            return result.quantize(Decimal(1).scaleb(-scale))
        if result.adjusted() >= _MAX_INTEGER_DIGITS:
            raise TransformError(f"more than {_MAX_INTEGER_DIGITS} integer digits")
        exact = result.quantize(Decimal(1).scaleb(-scale))
        if exact != result:
            raise TransformError(f"more than {scale} decimals; refused, never rounded")
        result = exact
    elif not result.is_zero() and result.adjusted() >= _MAX_INTEGER_DIGITS:
        raise TransformError(f"more than {_MAX_INTEGER_DIGITS} integer digits")
    return result


def _epoch_to_datetime(value: Any, unit: str | None) -> _dt.datetime:
    unit = unit or "ms"
    try:
        if unit == "days":
            day = ct.date_from_epoch_days(value)
            return _dt.datetime.combine(day, _dt.time(), tzinfo=SHANGHAI)
        return ct.wall_time_from_epoch(value, unit)
    except ct.ConversionError as exc:
        raise TransformError(str(exc)) from None


def _parse_datetime_text(text: str) -> _dt.datetime:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return _dt.datetime.strptime(text, "%Y%m%d").replace(tzinfo=SHANGHAI)
        if re.fullmatch(r"\d{14}", text):
            return _dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return _dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
        if re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2}( \d{1,2}:\d{2}(:\d{2})?)?", text):
            fmt = "%Y/%m/%d" + ((" %H:%M:%S" if text.count(":") == 2 else " %H:%M") if " " in text else "")
            return _dt.datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI)
        return as_shanghai(_dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise TransformError("not a valid date-time (yyyy-MM-dd HH:mm:ss, ISO-8601 or yyyyMMddHHmmss)") from None


def _to_datetime(value: Any, unit: str | None) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return as_shanghai(value)
    if isinstance(value, _dt.date):
        return _dt.datetime.combine(value, _dt.time(), tzinfo=SHANGHAI)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return _epoch_to_datetime(value, unit)
    if isinstance(value, str):
        if re.fullmatch(r"\s*-?\d{9,}\s*", value) and not re.fullmatch(r"\s*\d{14}\s*", value):
            return _epoch_to_datetime(int(value), unit)
        return _parse_datetime_text(value)
    raise TransformError(f"cannot read a date-time from a {type(value).__name__}")


def _to_date(value: Any, unit: str | None) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return as_shanghai(value).date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        n = _to_int(value)
        chosen = unit or ("days" if abs(n) < _DAYS_LIMIT else "ms")
        return _epoch_to_datetime(n, chosen).date()
    if isinstance(value, str):
        return _parse_datetime_text(value).date()
    raise TransformError(f"cannot read a date from a {type(value).__name__}")


def _to_list(value: Any, separator: str | None) -> list[str]:
    if isinstance(value, list):
        items = [_to_str(v) for v in value]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(separator or ",")]
    else:
        raise TransformError(f"cannot read a list from a {type(value).__name__}")
    return [i for i in items if i]


def convert(
    value: Any,
    kind: str,
    *,
    scale: int | None = None,
    unit: str | None = None,
    separator: str | None = None,
    decimal_mode: DecimalMode = "auto",
) -> Any:
    """Convert one raw value to ``kind``. None (and blank text) stay None."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, float):
        raise TransformError("floats are refused; JSON must be read with parse_float=Decimal")
    if kind == "str":
        return _to_str(value)
    if kind == "int":
        return _to_int(value)
    if kind == "decimal":
        return _to_decimal(value, scale, decimal_mode)
    if kind == "datetime":
        return _to_datetime(value, unit)
    if kind == "date":
        return _to_date(value, unit)
    if kind == "list":
        return _to_list(value, separator)
    raise TransformError(f"unknown kind {kind}")
