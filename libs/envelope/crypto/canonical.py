"""Canonical text of what gets signed: compact JSON with sorted keys, and sorted ``k=v&…`` strings.

A signature only verifies if both sides render the same data to the same bytes, so the rules are fixed here
once and used by every envelope that signs structured data (mobile pay, work injury):

* objects: keys sorted by code point (= plain ASCII order for ASCII keys, upper case before lower case — not
  case-insensitive); ``None`` members left out (fastjson, which the platforms' Java side uses, omits null
  members by default); separators ``,`` and ``:`` without spaces; Chinese and other non-ASCII text written
  as is, not ``\\u`` escaped;
* numbers: ``int`` as digits; ``Decimal`` in plain notation with its own scale (``Decimal("12.30")`` →
  ``12.30``, never ``1.23E+1``), and incoming JSON is parsed with ``parse_float=Decimal`` so a number survives
  a decode/re-render unchanged; ``float`` is refused (money is never a float, and a float's text is not
  stable across languages); booleans are ``true``/``false``;
* ``numbers="string"`` renders every number as a JSON string instead — a compatibility setting for a
  counterpart that stringifies numbers before signing (seen in the platform's own web front end, whose
  signer turns numbers into strings: the "numbers stringified by one side" trap of mobilepay.md).

A value that cannot be rendered raises :class:`EnvelopeValidationError` naming the transaction, the path
(``data.feedetailList[3].price``) and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from yibao.envelope.errors import EnvelopeValidationError

__all__ = ["NumberStyle", "canonical_json", "scalar_text", "sorted_pairs", "loads_exact", "is_empty"]

NumberStyle = Literal["number", "string"]


def _number_text(value: int | Decimal, infno: str, path: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise EnvelopeValidationError(infno, path, "number must be finite")
        return format(value, "f")
    return str(value)


def _render(value: Any, infno: str, path: str, numbers: NumberStyle) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        text = _number_text(value, infno, path)
        return f'"{text}"' if numbers == "string" else text
    if isinstance(value, float):
        raise EnvelopeValidationError(infno, path, "float not allowed; use Decimal or str")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise EnvelopeValidationError(infno, path, "object keys must be strings")
        parts = []
        for key in sorted(value):
            member = value[key]
            if member is None:
                continue
            parts.append(f"{json.dumps(key, ensure_ascii=False)}:{_render(member, infno, f'{path}.{key}', numbers)}")
        return "{" + ",".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render(v, infno, f"{path}[{i}]", numbers) for i, v in enumerate(value)) + "]"
    raise EnvelopeValidationError(infno, path, f"unsupported type {type(value).__name__}; use str, int or Decimal")


def canonical_json(value: Any, *, infno: str = "-", path: str = "data", numbers: NumberStyle = "number") -> str:
    """Compact, key-sorted JSON of ``value`` by the rules above."""
    return _render(value, infno, path, numbers)


def is_empty(value: Any) -> bool:
    """Left out of a sign string: None, "", and empty objects or lists."""
    return value is None or (isinstance(value, (str, Mapping, list, tuple)) and len(value) == 0)


def scalar_text(value: Any, *, infno: str = "-", path: str = "", numbers: NumberStyle = "number") -> str:
    """A top-level value as it appears after ``k=``: strings as they are, numbers plain, booleans
    ``true``/``false``, objects and lists as canonical JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return _number_text(value, infno, path)
    return _render(value, infno, path, numbers)


def sorted_pairs(fields: Mapping[str, Any], *, exclude: Iterable[str] = (), infno: str = "-",
                 numbers: NumberStyle = "number") -> str:
    """``k1=v1&k2=v2…`` over the non-empty fields not in ``exclude``, keys in plain code-point order."""
    skip = frozenset(exclude)
    if not all(isinstance(key, str) for key in fields):
        raise EnvelopeValidationError(infno, "", "envelope keys must be strings")
    pairs = []
    for key in sorted(fields):
        value = fields[key]
        if key in skip or is_empty(value):
            continue
        pairs.append(f"{key}={scalar_text(value, infno=infno, path=key, numbers=numbers)}")
    return "&".join(pairs)


def loads_exact(text: str | bytes) -> Any:
    """JSON with every non-integer number as an exact Decimal, so re-rendering reproduces the original."""
    return json.loads(text, parse_float=Decimal)
