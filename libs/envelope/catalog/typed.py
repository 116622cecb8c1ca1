"""Typed pydantic models generated from the catalog: read a platform output (or build an input) with the field
types the catalog data gives — money as :class:`~decimal.Decimal`, date-times aware in Asia/Shanghai — without a
second, hand-written description that could drift from the data::

    Out1101 = output_model(catalog, "1101")
    person = Out1101.model_validate(response.output)     # person.baseinfo.psn_no, person.insuinfo[0].insutype

Generated models follow the catalog of the province they come from. Output models read whatever the platform
sends: every field is optional (a caller checks what it needs), fields the platform adds are kept, and the ``""``
platforms send for an absent number or date reads as None. Input models require what the catalog marks required,
forbid unknown fields and refuse floats. Validation errors never echo values (they may be
personal data). Models are cached per catalog and transaction.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)

from yibao.core.clock import as_shanghai

from .fields import FieldSpec, FieldType, TransactionSpec

__all__ = ["InputModel", "OutputModel", "output_model", "input_model", "model_for"]

Direction = Literal["input", "output"]

_SCALARS: dict[FieldType, Any] = {
    FieldType.STRING: str,
    FieldType.INTEGER: int,
    FieldType.DECIMAL: Decimal,
    FieldType.DATE: _dt.date,
    FieldType.DATETIME: Annotated[_dt.datetime, AfterValidator(as_shanghai)],
    FieldType.BYTES: bytes,
}


def _blank_as_none(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """An empty string for a field that is not text means absent (platforms and HIS write "")."""
    if isinstance(value, str) and not value.strip() and info.field_name in getattr(model, "__non_text__", ()):
        return None
    return value


class OutputModel(BaseModel):
    """Base of generated output models: extra fields kept, blanks of numbers and dates read as None."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, hide_input_in_errors=True)
    __non_text__: frozenset[str] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _blanks(cls, value: Any, info: ValidationInfo) -> Any:
        return _blank_as_none(cls, value, info)


class InputModel(BaseModel):
    """Base of generated input models: unknown fields are errors, floats are refused (money is never a float)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, hide_input_in_errors=True)
    __non_text__: frozenset[str] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float):
            raise ValueError("floats are refused; pass a Decimal, int or str")
        return _blank_as_none(cls, value, info)

    def to_input(self) -> dict[str, Any]:
        """The envelope ``input`` object (the spec's key spelling, absent optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _build(name: str, fields: tuple[FieldSpec, ...], base: type[BaseModel]) -> type[BaseModel]:
    strict = base is InputModel
    definitions: dict[str, Any] = {}
    non_text: set[str] = set()
    for f in fields:
        if f.type in (FieldType.OBJECT, FieldType.ARRAY):
            child = _build(name + _camel(f.name), f.fields, base)
            annotation: Any = list[child] if f.type is FieldType.ARRAY else child  # type: ignore[valid-type]
        else:
            annotation = _SCALARS[f.type]
        if f.type is not FieldType.STRING:
            non_text.add(f.name)
        # read under any accepted spelling (the wire key, the name, a province's aliases); written as the wire key
        keys = f.accepted_keys
        names: dict[str, Any] = {
            "validation_alias": AliasChoices(*keys) if len(keys) > 1 else keys[0],
            "serialization_alias": f.key,
            "description": f.label or None,
        }
        if f.required and strict:
            definitions[f.name] = (annotation, Field(..., **names))
        elif f.type is FieldType.ARRAY:
            definitions[f.name] = (annotation, Field(default_factory=list, **names))
        else:
            definitions[f.name] = (annotation | None, Field(None, **names))
    model = create_model(name, __base__=base, **definitions)  # type: ignore[call-overload]
    model.__non_text__ = frozenset(non_text)
    return model


#: (id of the catalog's data, infno, direction) → (that data, the model): catalogs are built once and shared
_CACHE: dict[tuple[int, str, str], tuple[Any, type[BaseModel]]] = {}


def model_for(spec: TransactionSpec, direction: Direction) -> type[BaseModel]:
    """The model of one transaction's ``input`` or ``output`` object."""
    fields = spec.input if direction == "input" else spec.output
    if fields is None:
        raise ValueError(f"{spec.infno}: the catalog has no {direction} schema")
    base = InputModel if direction == "input" else OutputModel
    return _build(f"{'In' if direction == 'input' else 'Out'}{spec.infno}", fields, base)


def _cached(catalog: Any, infno: str, direction: Direction) -> type[BaseModel]:
    data = catalog._data
    key = (id(data), infno, direction)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not data:
        hit = _CACHE[key] = (data, model_for(catalog.transaction(infno), direction))
    return hit[1]


def output_model(catalog: Any, infno: str) -> type[BaseModel]:
    """The output model of ``infno`` in ``catalog`` (cached)."""
    return _cached(catalog, infno, "output")


def input_model(catalog: Any, infno: str) -> type[BaseModel]:
    """The input model of ``infno`` in ``catalog`` (cached)."""
    return _cached(catalog, infno, "input")
