"""Inputs built from the catalog's own field lists: the least a transaction accepts (every required field, a value
of its type that its length and dictionary allow), so tests can prove each field list is usable without writing
one sample per transaction by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.envelope.catalog import Catalog, FieldSpec, FieldType

__all__ = ["minimal_input", "first_required"]


def _value(catalog: Catalog, f: FieldSpec) -> Any:
    if f.type is FieldType.OBJECT:
        return _object(catalog, f.fields)
    if f.type is FieldType.ARRAY:
        return [_object(catalog, f.fields)]
    if f.type is FieldType.DECIMAL:
        return Decimal("1")
    if f.type is FieldType.INTEGER:
        return 1
    if f.type is FieldType.DATE:
        return "2024-05-01"
    if f.type is FieldType.DATETIME:
        return "2024-05-01 09:00:00"
    if f.type is FieldType.BYTES:
        return b"x"
    if f.dictionary is not None:
        codes = [c for c in catalog.dictionary(f.dictionary).values if len(c) <= (f.max_length or len(c))]
        if codes:
            return codes[0]
    return "1"[: f.max_length or 1]


def _object(catalog: Catalog, fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    return {f.name: _value(catalog, f) for f in fields if f.required}


def minimal_input(catalog: Catalog, infno: str) -> dict[str, Any]:
    """Every required field of ``infno``'s input, at every level, with a value the catalog accepts."""
    spec = catalog.transaction(infno)
    assert spec.input is not None, f"{infno} has no field list"
    return _object(catalog, spec.input)


def first_required(catalog: Catalog, infno: str) -> FieldSpec | None:
    """The first required top-level element of ``infno``'s input (what an empty input is refused for)."""
    return next((f for f in catalog.transaction(infno).input or () if f.required), None)
