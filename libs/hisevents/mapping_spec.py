"""The mapping file format, as pydantic models: shape errors come back with the entry path that is wrong.

Semantic checks (does the event type exist, does the target field exist, does the transform fit it) happen
when the file is compiled, in :mod:`yibao.hisevents.mapping`. The format is documented in mappings/README.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from yibao.hisevents.transforms import DecimalMode, normalise_code

__all__ = ["OpName", "FieldSpec", "ItemSpec", "RuleSpec", "TableSpec", "MappingFile"]

OpName = Literal["c", "u", "d", "r"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _str_map(value: Any) -> Any:
    """YAML turns 1 into an int and yes into True; codes are text."""
    if isinstance(value, dict):
        return {normalise_code(k): normalise_code(v) for k, v in value.items()}
    return value


def _shorthand(value: Any) -> Any:
    """``target: COLUMN`` is short for ``target: {column: COLUMN}``."""
    if isinstance(value, dict):
        return {k: ({"column": v} if isinstance(v, str) else v) for k, v in value.items()}
    return value


class FieldSpec(_Spec):
    """Where one event field's value comes from, and how it is transformed."""

    column: str | None = None
    constant: Any = None
    template: str | None = None
    items: list[ItemSpec] | None = None
    type: str | None = None
    scale: int | None = Field(default=None, ge=0, le=18)
    unit: Literal["ms", "us", "ns", "days"] | None = None
    code_map: str | dict[str, str] | None = None
    default: Any = None
    required: bool | None = None
    separator: str | None = None

    @field_validator("code_map", mode="before")
    @classmethod
    def _codes_are_text(cls, value: Any) -> Any:
        return _str_map(value)


_FieldMap = Annotated[dict[str, FieldSpec], BeforeValidator(_shorthand)]


class ItemSpec(_Spec):
    """One element of a list-of-objects field (e.g. a diagnosis built from columns of the row)."""

    when_present: str | None = None
    fields: _FieldMap


class RuleSpec(_Spec):
    """Either ``event`` (the change becomes that canonical event) or ``refuse`` (the change is parked with this
    reason: a change the bridge must not guess the meaning of, e.g. a billed charge line edited in place)."""

    name: str | None = None
    event: str | None = None
    refuse: str | None = Field(default=None, min_length=1)
    ops: list[OpName] = Field(min_length=1)
    when: dict[str, Any] = Field(default_factory=dict)
    changed: list[str] = Field(default_factory=list)
    fields: _FieldMap = Field(default_factory=dict)


class TableSpec(_Spec):
    topics: list[str] = Field(default_factory=list)
    primary_key: list[str] = Field(min_length=1)
    common: _FieldMap = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(min_length=1)


class MappingFile(_Spec):
    vendor: str = Field(min_length=1)
    description: str = ""
    version: int = 1
    topic_prefix: str | None = Field(default=None, min_length=1)
    decimal_handling_mode: DecimalMode = "auto"
    #: the epoch unit of date-time columns in records without a schema, unless a field says ``unit``
    datetime_unit: Literal["ms", "us", "ns"] = "ms"
    code_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    ignore_tables: list[str] = Field(default_factory=list)
    tables: dict[str, TableSpec] = Field(min_length=1)

    @field_validator("code_maps", mode="before")
    @classmethod
    def _codes_are_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _str_map(v) for k, v in value.items()}
        return value


FieldSpec.model_rebuild()
