"""Compiled mapping rules at run time: does a change match a rule, and what are the event's fields?

A row that cannot be mapped raises :class:`~yibao.core.errors.UnmappableEventError` naming table, rule, field
and column — never the value of a personal column (values are only quoted for unknown codes of non-personal
fields).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from yibao.core.errors import UnmappableEventError
from yibao.core.privacy import is_personal_key
from yibao.hisevents.debezium import ChangeEvent, Row
from yibao.hisevents.models import PERSONAL_FIELDS
from yibao.hisevents.transforms import DecimalMode, TransformError, convert, normalise_code

__all__ = ["TEMPLATE_REF", "CompiledField", "Condition", "CompiledRule", "TableMapping"]

#: a ``{COLUMN}`` reference in a template (Oracle column names may contain $ and #); ``{COLUMN:decimal}`` reads
#: a NUMERIC id (base64 without schemas under decimal.handling.mode=precise) as a whole number
TEMPLATE_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_$#]*)(?::(decimal))?\}")


@dataclass(frozen=True)
class CompiledField:
    """A field spec checked against its target and ready to run."""

    target: str
    kind: str
    #: the kind the raw value is read as before it becomes ``kind`` (``decimal`` for a NUMERIC id in a text field)
    read_as: str | None = None
    column: str | None = None
    constant: Any = None
    has_constant: bool = False
    template: str | None = None
    items: tuple[tuple[str | None, tuple[CompiledField, ...]], ...] = ()
    scale: int | None = None
    unit: str | None = None
    code_map_name: str | None = None
    code_map: Mapping[str, str] | None = None
    default: Any = None
    has_default: bool = False
    required: bool = False
    separator: str | None = None

    @property
    def personal(self) -> bool:
        return self.target in PERSONAL_FIELDS or bool(self.column and is_personal_key(self.column))

    @property
    def source_label(self) -> str:
        if self.column:
            return f"column {self.column}"
        if self.template:
            return "template"
        if self.items:
            return "items"
        return "constant"


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # eq, ne, in, not_in, null, not_null
    values: frozenset[str | None] = frozenset()


@dataclass(frozen=True)
class CompiledRule:
    """One rule of a table: ``event`` is what a matching change becomes; a rule with ``refusal`` instead makes
    no event, and a change it matches is parked with that reason."""

    table: str
    name: str
    event: str | None
    ops: frozenset[str]
    conditions: tuple[Condition, ...]
    changed: tuple[str, ...]
    fields: tuple[CompiledField, ...]
    decimal_mode: DecimalMode = "auto"
    refusal: str | None = None

    @property
    def columns(self) -> frozenset[str]:
        """Every column the rule reads (conditions and fields, templates and items included), as the mapping
        spells them."""
        out = {c.column for c in self.conditions}

        def walk(fields: tuple[CompiledField, ...]) -> None:
            for f in fields:
                if f.column:
                    out.add(f.column)
                if f.template:
                    out.update(m.group(1) for m in TEMPLATE_REF.finditer(f.template))
                for when_present, sub in f.items:
                    if when_present:
                        out.add(when_present)
                    walk(sub)

        walk(self.fields)
        return frozenset(out)

    def cannot_see_change(self, change: ChangeEvent) -> bool:
        """An update this rule would match but whose ``changed`` columns cannot be compared: no before image."""
        return bool(self.changed) and change.op == "u" and change.before is None

    # -- matching ------------------------------------------------------------------------------------------------

    def matches(self, change: ChangeEvent) -> bool:
        if change.op is None:
            # unwrapped without __op: insert and update look alike; let the conditions decide. A refusal needs
            # to know the change is an update or a delete: it never matches a record that does not say.
            if self.refusal is not None or not (self.ops & {"c", "r", "u"}):
                return False
        elif change.op not in self.ops:
            return False
        row = change.row
        for cond in self.conditions:
            if not _holds(cond, row):
                return False
        if self.changed and change.op == "u" and change.before is not None and change.after is not None:
            before, after = change.before, change.after
            return any(normalise_code(before.get(col)) != normalise_code(after.get(col)) for col in self.changed)
        return True

    # -- extraction ----------------------------------------------------------------------------------------------

    def extract(self, change: ChangeEvent) -> dict[str, Any]:
        """The event's fields from the change's row. Raises UnmappableEventError naming table/rule/field/column."""
        row = change.row
        values: dict[str, Any] = {}
        for spec in self.fields:
            value = self._value(spec, row, change)
            if value is not None:
                values[spec.target] = value
        return values

    def _fail(self, spec: CompiledField, problem: str) -> UnmappableEventError:
        return UnmappableEventError(
            f"table {self.table}, rule {self.name}, field {spec.target} ({spec.source_label}): {problem}"
        )

    def _value(self, spec: CompiledField, row: Row, change: ChangeEvent) -> Any:
        if spec.items:
            return self._items(spec, row, change)
        if spec.column is not None:
            if spec.column not in row:
                if spec.required and not spec.has_default:
                    raise self._fail(spec, "required column missing from the row")
                raw = None
            else:
                raw = row[spec.column]
        elif spec.template is not None:
            raw = self._render(spec, row)
        elif spec.has_constant:
            raw = spec.constant
        else:
            raw = None
        if raw is not None and spec.code_map is not None:
            code = normalise_code(raw)
            if code == "":
                raw = None
            elif code not in spec.code_map:
                shown = "a code" if spec.personal else f"code {code[:20]!r}"
                raise self._fail(spec, f"{shown} not in code map {spec.code_map_name}")
            else:
                raw = spec.code_map[code]
        try:
            if spec.read_as is not None:
                raw = convert(raw, spec.read_as, scale=spec.scale, decimal_mode=self.decimal_mode)
            value = convert(
                raw, spec.kind if spec.kind != "items" else "str", scale=spec.scale if spec.read_as is None else None,
                unit=spec.unit, separator=spec.separator, decimal_mode=self.decimal_mode,
            )
        except TransformError as exc:
            raise self._fail(spec, f"bad value: {exc}") from None
        if value is None:
            if spec.has_default:
                return spec.default
            if spec.required:
                raise self._fail(spec, "required value is null")
        return value

    def _render(self, spec: CompiledField, row: Row) -> str | None:
        assert spec.template is not None
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            col = m.group(1)
            value = row.get(col) if col in row else None
            if m.group(2) == "decimal" and value is not None:
                value = convert(value, "decimal", scale=0, decimal_mode=self.decimal_mode)
            text = convert(value, "str")
            if text is None:
                missing.append(col)
                return ""
            return str(text)

        try:
            text = TEMPLATE_REF.sub(sub, spec.template)
        except TransformError as exc:
            raise self._fail(spec, f"bad value in template: {exc}") from None
        if missing:
            if spec.required and not spec.has_default:
                raise self._fail(spec, f"template column {missing[0]} is missing or null")
            return None
        return text

    def _items(self, spec: CompiledField, row: Row, change: ChangeEvent) -> list[dict[str, Any]] | None:
        out: list[dict[str, Any]] = []
        for when_present, item_fields in spec.items:
            if when_present is not None and normalise_code(row.get(when_present)) in (None, ""):
                continue
            item: dict[str, Any] = {}
            for sub in item_fields:
                value = self._value(sub, row, change)
                if value is not None:
                    item[sub.target] = value
            out.append(item)
        return out


def _holds(cond: Condition, row: Row) -> bool:
    actual = normalise_code(row.get(cond.column)) if cond.column in row else None
    if actual == "":
        actual = None
    if cond.op == "eq" or cond.op == "in":
        return actual in cond.values
    if cond.op == "ne" or cond.op == "not_in":
        return actual not in cond.values
    if cond.op == "null":
        return actual is None
    if cond.op == "not_null":
        return actual is not None
    raise AssertionError(cond.op)  # pragma: no cover


@dataclass(frozen=True)
class TableMapping:
    name: str
    schema: str | None
    table_name: str
    topics: tuple[str, ...]
    primary_key: tuple[str, ...]
    rules: tuple[CompiledRule, ...]
    #: primary-key column (case-folded) → scale, for NUMERIC keys read as decimals (see primary_key_of)
    key_scales: Mapping[str, int] = field(default_factory=dict)

    def match(self, change: ChangeEvent) -> list[CompiledRule]:
        return [r for r in self.rules if r.matches(change)]

    def _key_text(self, column: str, value: Any) -> str:
        scale = self.key_scales.get(column.casefold())
        if scale is not None and isinstance(value, str) and self.rules:
            try:  # a base64 NUMERIC key (precise decimals without schemas) as the number it is
                value = convert(value, "decimal", scale=scale, decimal_mode=self.rules[0].decimal_mode)
            except TransformError:
                pass
        return normalise_code(value) or ""

    def key_columns(self, change: ChangeEvent) -> frozenset[str]:
        """The row's key columns, case-folded: the mapping's primary key and the record key's columns."""
        cols = {c.casefold() for c in self.primary_key}
        if change.key is not None:
            cols.update(k.casefold() for k in change.key)
        return frozenset(cols)

    def visit_id_of(self, change: ChangeEvent) -> str | None:
        """The HIS visit id of the change's row, when a rule maps it and the row holds it (else None)."""
        for rule in self.rules:
            for spec in rule.fields:
                if spec.target != "his_visit_id":
                    continue
                try:
                    value = rule._value(spec, change.row, change)
                except Exception:  # unreadable here is simply unknown: the caller falls back to the record key
                    continue
                if isinstance(value, str) and value:
                    return value
        return None

    def primary_key_of(self, change: ChangeEvent) -> dict[str, str]:
        """The row's primary key (mapping columns first, the record key as fallback), as text."""
        row = change.row
        if all(col in row and row[col] is not None for col in self.primary_key):
            return {col: self._key_text(col, row[col]) for col in self.primary_key}
        if change.key is not None and len(change.key):
            return {k: normalise_code(change.key[k]) or "" for k in sorted(change.key, key=str.casefold)}
        missing = next(col for col in self.primary_key if col not in row or row[col] is None)
        raise UnmappableEventError(
            f"table {self.name}: primary key column {missing} is missing and the record has no key"
        )
