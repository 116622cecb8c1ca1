"""JSON text as the national platform reads and writes it.

Why our own writer: ``json.dumps`` can only write a Decimal by turning it into a float first (or into a
string), and a float has already lost the cents. Here a Decimal is written as its exact plain number text
(``12.30`` stays ``12.30``, never ``12.3`` or ``1.23E+1``), Chinese characters are written as themselves
(UTF-8, not ``\\uXXXX``), and the text is compact (no spaces) so that its length — the spec's 40000-character
input limit — and the bytes an SM2 signature covers are exactly what is sent.

Datetimes and dates met in a payload are written in the platform's formats (``yyyy-MM-dd HH:mm:ss`` and
``yyyy-MM-dd``, Shanghai time); floats, NaN and infinities are refused, naming the path of the value.
Reading (:func:`loads`) turns every number with a fraction into a Decimal.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.errors import PlatformError

__all__ = ["dumps", "dumps_bytes", "loads", "UnencodableValue"]

_escape = json.encoder.encode_basestring  # C-accelerated; leaves non-ASCII characters as they are


class UnencodableValue(PlatformError):
    """A value that has no exact JSON text for the platform (a float, NaN, an unknown type)."""

    code = "unencodable"

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(f"{path or '<root>'}: {kind} cannot be sent to the platform")


def loads(text: str | bytes) -> Any:
    """Parse JSON text; numbers with a fraction or exponent become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


def dumps(obj: Any) -> str:
    """Compact JSON text with exact Decimals and unescaped Chinese (see the module docstring)."""
    out: list[str] = []
    _write(obj, out, "")
    return "".join(out)


def dumps_bytes(obj: Any) -> bytes:
    return dumps(obj).encode("utf-8")


def _decimal_text(value: Decimal, path: str) -> str:
    if not value.is_finite():
        raise UnencodableValue(path, "a non-finite number")
    if value.is_zero() and value.is_signed():
        value = value.copy_abs()  # -0.00 is 0.00 to the platform
    return format(value, "f")


def _write(obj: Any, out: list[str], path: str) -> None:
    # ordered by how often each kind occurs in an envelope
    if isinstance(obj, str):
        out.append(_escape(obj))
    elif isinstance(obj, Mapping):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not isinstance(key, str):
                raise UnencodableValue(f"{path}.{key}" if path else str(key), "a non-string key")
            if not first:
                out.append(",")
            first = False
            out.append(_escape(key))
            out.append(":")
            _write(value, out, f"{path}.{key}" if path else key)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out, f"{path}[{i}]")
        out.append("]")
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, Decimal):
        out.append(_decimal_text(obj, path))
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        raise UnencodableValue(path, "a float (use Decimal or str)")
    elif isinstance(obj, _dt.datetime):
        out.append(_escape(clock.format_datetime(obj)))
    elif isinstance(obj, _dt.date):
        out.append(_escape(clock.format_date(obj)))
    else:
        raise UnencodableValue(path, f"a {type(obj).__name__}")
