"""Time in yibao-bridge is Asia/Shanghai, always.

The platforms speak local Beijing time without an offset (``yyyy-MM-dd HH:mm:ss``); HIS databases store local
time too. Everything internal is an aware datetime in :data:`SHANGHAI`; naive values from outside are read as
Shanghai time, never as UTC or as the machine's zone.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

__all__ = [
    "SHANGHAI",
    "now",
    "today",
    "as_shanghai",
    "from_epoch_ms",
    "format_datetime",
    "format_date",
    "format_compact",
    "parse_datetime",
    "ShanghaiTime",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> _dt.datetime:
    """The current time, aware, in Asia/Shanghai."""
    return _dt.datetime.now(SHANGHAI)


def today() -> _dt.date:
    return now().date()


def as_shanghai(value: _dt.datetime) -> _dt.datetime:
    """Aware datetime in Shanghai; a naive value is taken to be Shanghai local time already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=SHANGHAI)
    return value.astimezone(SHANGHAI)


def from_epoch_ms(ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=SHANGHAI)


def format_datetime(value: _dt.datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Shanghai time, as the national platform wants it."""
    return as_shanghai(value).strftime("%Y-%m-%d %H:%M:%S")


def format_date(value: _dt.date | _dt.datetime) -> str:
    if isinstance(value, _dt.datetime):
        value = as_shanghai(value).date()
    return value.strftime("%Y-%m-%d")


def format_compact(value: _dt.datetime) -> str:
    """``yyyyMMddHHmmss`` in Shanghai time (msgids, mobile-pay timestamps)."""
    return as_shanghai(value).strftime("%Y%m%d%H%M%S")


def parse_datetime(text: str) -> _dt.datetime:
    """Parse ``yyyy-MM-dd HH:mm:ss`` / ISO-8601 / ``yyyyMMddHHmmss``; naive results are Shanghai time."""
    text = text.strip()
    if len(text) == 14 and text.isdigit():
        value = _dt.datetime.strptime(text, "%Y%m%d%H%M%S")
    else:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return as_shanghai(value)


def _iso_in(value: Any) -> Any:
    """ISO-8601 text with a seconds offset (``+08:05:43``: Shanghai's local mean time before 1901), which
    pydantic's own parser refuses, is read with the standard library; everything else goes to pydantic."""
    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _iso_out(value: _dt.datetime) -> str:
    """ISO-8601 with the full offset. pydantic writes offsets in whole minutes, which moved 1900-01-01 00:00
    Shanghai (+08:05:43) by 43 seconds on the way through JSON; ``isoformat`` keeps the seconds."""
    return as_shanghai(value).isoformat()


#: a datetime field of a message: read as Shanghai wall time when naive, written to JSON with its exact offset
ShanghaiTime = Annotated[
    _dt.datetime, BeforeValidator(_iso_in), AfterValidator(as_shanghai),
    PlainSerializer(_iso_out, return_type=str, when_used="json"),
]
