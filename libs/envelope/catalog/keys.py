"""Keys between the platform's spelling and the bridge's names, as the catalog (and a province file) says.

The code of the bridge names every element one way (``FieldSpec.name``: ``dscg_time``, ``refd_setl_flag``,
2401's answer node ``data``). A province's platform may spell it otherwise (``dscgTime``, ``REFD_SETL_FLAG``, an
answer under ``result``): the field's ``wire_name`` is what is sent, its ``aliases`` what is also accepted. These
two walks translate a payload in place of the code, so neither a chain step nor a simulator handler carries a
province's spelling:

* :func:`to_names` — a payload as received (an answer; for the simulator, a request) with every catalogued key
  found under one of its accepted spellings renamed to the field's name;
* :func:`to_wire` — a payload written with the names (the simulator's answers) with every catalogued key renamed
  to the province's wire spelling.

Values are never touched and keys the catalog does not describe are kept as they are: this is a renaming, not a
validation (that is :mod:`.validation`'s job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .fields import FieldSpec, FieldType

__all__ = ["to_names", "to_wire"]


def to_names(fields: tuple[FieldSpec, ...] | None, payload: Any) -> Any:
    """``payload`` with the catalogued keys under their names (other keys untouched)."""
    if not fields or not isinstance(payload, Mapping):
        return payload
    return _rename(fields, payload, to_wire=False)


def to_wire(fields: tuple[FieldSpec, ...] | None, payload: Any) -> Any:
    """``payload`` (written with the names) with the catalogued keys spelled as the platform spells them."""
    if not fields or not isinstance(payload, Mapping):
        return payload
    return _rename(fields, payload, to_wire=True)


def _rename(fields: tuple[FieldSpec, ...], payload: Mapping[Any, Any], *, to_wire: bool) -> dict[Any, Any]:
    lowered = {k.lower(): k for k in payload if isinstance(k, str)}
    out: dict[Any, Any] = {}
    taken: set[Any] = set()
    for f in fields:
        source = _source_key(f, lowered, to_wire=to_wire)
        if source is None or source in taken:
            continue
        taken.add(source)
        value = payload[source]
        if f.type is FieldType.OBJECT and isinstance(value, Mapping):
            value = _rename(f.fields, value, to_wire=to_wire)
        elif f.type is FieldType.ARRAY and isinstance(value, (list, tuple)):
            value = [_rename(f.fields, v, to_wire=to_wire) if isinstance(v, Mapping) else v for v in value]
        out[f.key if to_wire else f.name] = value
    for key, value in payload.items():
        if key not in taken and key not in out:
            out[key] = value
    return out


def _source_key(f: FieldSpec, lowered: Mapping[str, str], *, to_wire: bool) -> str | None:
    """The key of ``payload`` that holds field ``f``: its name first when writing, the wire key first when
    reading (then the name, then the aliases)."""
    order = (f.name, *f.accepted_keys) if to_wire else f.accepted_keys
    for key in order:
        hit = lowered.get(key.lower())
        if hit is not None:
            return hit
    return None
