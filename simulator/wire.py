"""JSON as the platforms write it: amounts are JSON numbers read and written as Decimal, never float.

``json`` cannot emit a Decimal as a bare number, so :func:`dumps` renders the JSON text itself (a few lines,
compact, optionally with sorted keys — the mobile-pay sign string needs exactly that).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "loads", "dumps_bytes"]


def loads(text: str | bytes) -> Any:
    """Parse JSON; numbers with a fraction become Decimal (never float)."""
    return json.loads(text, parse_float=Decimal)


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON (no spaces), UTF-8 characters unescaped, Decimal as a plain number."""
    out: list[str] = []
    _write(obj, out, sort_keys)
    return "".join(out)


def dumps_bytes(obj: Any, *, sort_keys: bool = False) -> bytes:
    return dumps(obj, sort_keys=sort_keys).encode("utf-8")


def _write(obj: Any, out: list[str], sort_keys: bool) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(json.dumps(obj, ensure_ascii=False))
    elif isinstance(obj, Decimal):
        out.append(format(obj, "f"))
    elif isinstance(obj, int):
        out.append(str(obj))
    elif isinstance(obj, float):
        raise TypeError("floats are not written by the simulator; use Decimal")
    elif isinstance(obj, dict):
        items = sorted(obj.items()) if sort_keys else obj.items()
        out.append("{")
        first = True
        for key, value in items:
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _write(value, out, sort_keys)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _write(value, out, sort_keys)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} as JSON")
