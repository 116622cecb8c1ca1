"""Kafka Connect / Debezium value encodings, turned into Python values (Decimal, date, aware datetime).

Facts used (Debezium connector reference docs, "data type mappings" sections; Kafka Connect javadoc of
``org.apache.kafka.connect.data.Decimal``):

* ``decimal.handling.mode=precise`` (the default) sends DECIMAL/NUMERIC as ``org.apache.kafka.connect.data.Decimal``:
  the bytes of the big-endian two's-complement *unscaled* integer, base64 in JSON, with the scale in the schema's
  ``parameters.scale`` (a string). Oracle NUMBER without precision/scale becomes
  ``io.debezium.data.VariableScaleDecimal``, a struct ``{scale: int32, value: bytes}``.
  ``string`` sends the plain text, ``double`` a JSON number (read here with ``parse_float=Decimal``, so no float
  ever exists).
* Temporal columns *without* a time zone (Oracle DATE/TIMESTAMP, MySQL DATETIME, PostgreSQL timestamp) are
  encoded as the local wall-clock reading taken as if it were UTC: ``io.debezium.time.Timestamp`` (epoch ms),
  ``MicroTimestamp`` (µs), ``NanoTimestamp`` (ns), Kafka Connect ``Timestamp`` (ms). So epoch → UTC wall time →
  that same wall time in Asia/Shanghai, never shifted by +8h. ``io.debezium.time.Date`` and Connect ``Date``
  are days since 1970-01-01. ``ZonedTimestamp`` is an ISO-8601 string with an offset: a real instant, converted
  to Shanghai.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from yibao.core.clock import SHANGHAI

__all__ = [
    "CONNECT_DECIMAL",
    "VARIABLE_SCALE_DECIMAL",
    "TEMPORAL_UNITS",
    "SEMANTIC_TEMPORAL",
    "ConversionError",
    "decimal_from_base64",
    "decimal_from_variable_scale",
    "wall_time_from_epoch",
    "date_from_epoch_days",
    "time_from_epoch",
    "zoned_to_shanghai",
    "looks_like_plain_decimal",
    "plain_decimal",
]

CONNECT_DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE_SCALE_DECIMAL = "io.debezium.data.VariableScaleDecimal"

#: epoch unit -> divisor to seconds
TEMPORAL_UNITS: dict[str, int] = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

#: Connect/Debezium semantic type name -> ("datetime", unit) | ("date", "days") | ("zoned", "iso") | ("time", unit)
SEMANTIC_TEMPORAL: dict[str, tuple[str, str]] = {
    "io.debezium.time.Timestamp": ("datetime", "ms"),
    "io.debezium.time.MicroTimestamp": ("datetime", "us"),
    "io.debezium.time.NanoTimestamp": ("datetime", "ns"),
    "org.apache.kafka.connect.data.Timestamp": ("datetime", "ms"),
    "io.debezium.time.Date": ("date", "days"),
    "org.apache.kafka.connect.data.Date": ("date", "days"),
    "io.debezium.time.ZonedTimestamp": ("zoned", "iso"),
    "io.debezium.time.Time": ("time", "ms"),
    "io.debezium.time.MicroTime": ("time", "us"),
    "io.debezium.time.NanoTime": ("time", "ns"),
    "org.apache.kafka.connect.data.Time": ("time", "ms"),
}

_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ConversionError(ValueError):
    """A value that does not fit its declared encoding. The message names the encoding, never the value."""


def decimal_from_base64(text: str, scale: int) -> Decimal:
    """Connect Decimal: base64 of the big-endian two's-complement unscaled integer, times 10^-scale."""
    if not isinstance(text, str):
        raise ConversionError("a precise decimal must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConversionError("not valid base64 for a precise decimal") from None
    if not raw:
        raise ConversionError("empty bytes for a precise decimal")
    unscaled = int.from_bytes(raw, "big", signed=True)
    return Decimal(unscaled).scaleb(-int(scale))


def decimal_from_variable_scale(value: Any) -> Decimal:
    """io.debezium.data.VariableScaleDecimal: ``{"scale": n, "value": base64}``."""
    if not isinstance(value, dict) or "scale" not in value or "value" not in value:
        raise ConversionError("a variable-scale decimal must be an object with scale and value")
    scale = value["scale"]
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise ConversionError("a variable-scale decimal needs an integer scale")
    return decimal_from_base64(value["value"], scale)


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ConversionError(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise ConversionError(f"{what} must be an integer")


def wall_time_from_epoch(value: Any, unit: str = "ms") -> _dt.datetime:
    """Epoch number of a zone-less column → the same wall-clock reading, in Shanghai (no +8h shift)."""
    n = _integer(value, f"an epoch-{unit} timestamp")
    divisor = TEMPORAL_UNITS[unit]
    seconds, rest = divmod(n, divisor)
    micros = rest * 1_000_000 // divisor
    try:
        wall = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise ConversionError(f"epoch-{unit} timestamp out of range") from None
    return wall.replace(tzinfo=SHANGHAI)


def date_from_epoch_days(value: Any) -> _dt.date:
    n = _integer(value, "a date (days since epoch)")
    try:
        return _EPOCH_DATE + _dt.timedelta(days=n)
    except OverflowError:
        raise ConversionError("date (days since epoch) out of range") from None


def time_from_epoch(value: Any, unit: str) -> _dt.time:
    n = _integer(value, f"a time of day ({unit})")
    divisor = TEMPORAL_UNITS[unit]
    if not 0 <= n < 86_400 * divisor:
        raise ConversionError("time of day out of range")
    return (_EPOCH + _dt.timedelta(microseconds=n * 1_000_000 // divisor)).time()


def zoned_to_shanghai(value: Any) -> _dt.datetime:
    """ZonedTimestamp (ISO-8601 with an offset, e.g. ``2024-03-01T00:30:00Z``) → the instant, in Shanghai."""
    if not isinstance(value, str):
        raise ConversionError("a zoned timestamp must be an ISO-8601 string")
    try:
        parsed = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConversionError("not an ISO-8601 zoned timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=SHANGHAI)
    return parsed.astimezone(SHANGHAI)


def looks_like_plain_decimal(text: str) -> bool:
    return bool(_PLAIN_DECIMAL.match(text.strip()))


def plain_decimal(value: Any) -> Decimal:
    """A JSON number (already Decimal/int thanks to ``parse_float=Decimal``) or decimal text."""
    if isinstance(value, bool):
        raise ConversionError("a boolean is not a decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError("not a finite decimal")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise ConversionError("floats are refused; the JSON must be read with parse_float=Decimal")
    if isinstance(value, str) and looks_like_plain_decimal(value):
        try:
            return Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the regex already vetted it
            pass
    raise ConversionError("not a decimal number")
