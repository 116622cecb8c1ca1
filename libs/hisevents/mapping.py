"""HIS mapping files: which HIS tables and changes become which canonical events, column by column.

One YAML (or JSON) file per HIS vendor; the format is documented in ``mappings/README.md`` and shown by
``mappings/example-oracle-his.yaml``. A file is validated completely when it is loaded — unknown event types,
unknown target fields, bad transforms, unknown code maps, required event fields left unmapped — and every
problem is a :class:`~yibao.core.errors.ConfigurationError` naming the file and the entry
(``tables.HIS.OUTP_REGISTER.rules[0].fields.med_type``).

The file format's pydantic models live in :mod:`.mapping_spec`; the compiled rules that run for every record
(matching a change, extracting fields, raising UnmappableEventError) in :mod:`.mapping_rules`. This module
compiles the one into the other and loads files.
"""

from __future__ import annotations

import datetime as _dt
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from yibao.core.errors import ConfigurationError
from yibao.hisevents.debezium import ChangeEvent
from yibao.hisevents.mapping_rules import TEMPLATE_REF, CompiledField, CompiledRule, Condition, TableMapping
from yibao.hisevents.mapping_spec import FieldSpec, ItemSpec, MappingFile, RuleSpec, TableSpec
from yibao.hisevents.models import EVENT_MODELS, HisEventBase
from yibao.hisevents.transforms import KINDS, DecimalMode, normalise_code

__all__ = [
    "FieldSpec",
    "ItemSpec",
    "RuleSpec",
    "TableSpec",
    "MappingFile",
    "CompiledField",
    "CompiledRule",
    "TableMapping",
    "HisMapping",
    "TopicResolution",
    "resolve_topics",
    "load_mapping",
    "mapping_from_dict",
    "available_mappings",
    "MAPPINGS_DIR",
]

MAPPINGS_DIR = Path(str(resources.files("yibao.hisevents") / "mappings"))

_COMMON_TARGETS = ("his_visit_id", "his_patient_id", "visit_kind", "occurred_at", "opter", "opter_name")


@dataclass(frozen=True)
class HisMapping:
    """A loaded, validated mapping file."""

    vendor: str
    origin: str
    description: str
    decimal_mode: DecimalMode
    tables: tuple[TableMapping, ...]
    ignore_tables: frozenset[str] = field(default_factory=frozenset)
    topic_prefix: str | None = None

    def topics(self, topic_prefix: str | None = None) -> list[str]:
        """The CDC topics to subscribe to: a table's listed topics, else ``<prefix>.<SCHEMA>.<TABLE>`` with the
        given prefix or the file's ``topic_prefix`` (Debezium's ``topic.prefix``)."""
        topic_prefix = topic_prefix or self.topic_prefix
        out: list[str] = []
        for t in self.tables:
            if t.topics:
                out.extend(t.topics)
            elif topic_prefix:
                out.append(f"{topic_prefix}.{t.name}")
        return sorted(set(out))

    def resolve_topics(self, existing: Iterable[str], topic_prefix: str | None = None,
                       wanted: Iterable[str] | None = None) -> TopicResolution:
        """Which CDC topics to subscribe to, given the topics the broker has (``wanted``: an explicit list that
        replaces :meth:`topics`). See :func:`resolve_topics`."""
        return resolve_topics(list(wanted) if wanted is not None else self.topics(topic_prefix), existing)

    def is_ignored(self, change: ChangeEvent) -> bool:
        return change.table.casefold() in self.ignore_tables or change.table_name.casefold() in self.ignore_tables

    def table_for(self, change: ChangeEvent) -> TableMapping | None:
        """By topic, then by SCHEMA.TABLE, then by bare table name when only one mapped table has it."""
        topic = change.topic.casefold()
        for t in self.tables:
            if any(topic == tp.casefold() for tp in t.topics):
                return t
        qualified = change.table.casefold()
        for t in self.tables:
            if t.name.casefold() == qualified:
                return t
        bare = [t for t in self.tables if t.table_name.casefold() == change.table_name.casefold()]
        if len(bare) == 1:
            return bare[0]
        return None


@dataclass(frozen=True)
class TopicResolution:
    """The CDC subscription: ``topics`` to consume; ``missing`` — wanted topics no topic on the broker answers
    to yet (subscribed under the wanted name; the connector creates a table's topic with its first row);
    ``respelled`` — wanted name → the spelling the broker has (PostgreSQL folds unquoted names to lower case)."""

    topics: tuple[str, ...]
    missing: tuple[str, ...] = ()
    respelled: tuple[tuple[str, str], ...] = ()


def resolve_topics(wanted: Iterable[str], existing: Iterable[str]) -> TopicResolution:
    """Match the wanted CDC topics against the broker's, case-insensitively: the connector, not the mapping,
    decides the case (Oracle upper, PostgreSQL lower unless quoted). A wanted ``<prefix>.<SCHEMA>.<TABLE>`` also
    finds ``<prefix>.<database>.<SCHEMA>.<TABLE>`` (Debezium's SQL Server naming). Several spellings of one
    topic on the broker are all consumed (an empty one costs nothing)."""
    have = sorted(set(existing))
    topics: list[str] = []
    missing: list[str] = []
    respelled: list[tuple[str, str]] = []
    for name in sorted(set(wanted)):
        folded = name.casefold()
        found = [t for t in have if t.casefold() == folded]
        if not found:
            head, _, tail = folded.partition(".")
            found = [t for t in have
                     if t.casefold().startswith(head + ".") and t.casefold().endswith("." + tail)
                     and t.count(".") == name.count(".") + 1] if tail else []
        if not found:
            topics.append(name)
            missing.append(name)
            continue
        topics.extend(found)
        respelled.extend((name, t) for t in found if t != name)
    return TopicResolution(tuple(dict.fromkeys(topics)), tuple(missing), tuple(respelled))


# ---------------------------------------------------------------------------------------------------------------
# compiling and validating a mapping file


def _unwrap_annotation(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) with Annotated and Optional peeled off."""
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation, optional


def _kind_of(annotation: Any) -> str:
    inner, _ = _unwrap_annotation(annotation)
    if typing.get_origin(inner) is list:
        (arg,) = typing.get_args(inner)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return "items"
        return "list"
    if inner is Decimal:
        return "decimal"
    if inner is _dt.datetime:
        return "datetime"
    if inner is _dt.date:
        return "date"
    if inner is int:
        return "int"
    return "str"


def _item_model(annotation: Any) -> type[BaseModel]:
    inner, _ = _unwrap_annotation(annotation)
    (arg,) = typing.get_args(inner)
    return arg


class _Compiler:
    def __init__(self, origin: str, data: MappingFile) -> None:
        self.origin = origin
        self.data = data

    def fail(self, entry: str, problem: str) -> ConfigurationError:
        return ConfigurationError(f"mapping {self.origin}: {entry}: {problem}")

    def compile(self) -> HisMapping:
        tables = tuple(self._table(name, spec) for name, spec in self.data.tables.items())
        return HisMapping(
            vendor=self.data.vendor,
            origin=self.origin,
            description=self.data.description,
            decimal_mode=self.data.decimal_handling_mode,
            tables=tables,
            ignore_tables=frozenset(t.casefold() for t in self.data.ignore_tables),
            topic_prefix=self.data.topic_prefix,
        )

    def _table(self, name: str, spec: TableSpec) -> TableMapping:
        entry = f"tables.{name}"
        schema, _, table_name = name.rpartition(".")
        for target in spec.common:
            if target not in _COMMON_TARGETS:
                allowed = ", ".join(_COMMON_TARGETS)
                raise self.fail(f"{entry}.common.{target}", f"not a common field (allowed: {allowed})")
        rules = []
        seen: set[str] = set()
        for i, rule in enumerate(spec.rules):
            compiled = self._rule(name, f"{entry}.rules[{i}]", i, rule, spec.common)
            if compiled.name in seen:
                raise self.fail(f"{entry}.rules[{i}].name", f"duplicate rule name {compiled.name}")
            seen.add(compiled.name)
            rules.append(compiled)
        primary_key: list[str] = []
        numeric_keys: set[str] = set()
        for i, entry_text in enumerate(spec.primary_key):
            column, _, kind = entry_text.partition(":")
            if kind not in ("", "decimal") or not column:
                raise self.fail(f"{entry}.primary_key[{i}]", "a key column is COLUMN or COLUMN:decimal")
            primary_key.append(column)
            if kind:
                numeric_keys.add(column.casefold())
        return TableMapping(
            name=name, schema=schema or None, table_name=table_name, topics=tuple(spec.topics),
            primary_key=tuple(primary_key), rules=tuple(rules),
            key_scales={**_key_scales(primary_key, rules), **{c: 0 for c in numeric_keys}},
        )

    def _rule(
        self, table: str, entry: str, index: int, rule: RuleSpec, common: dict[str, FieldSpec]
    ) -> CompiledRule:
        if (rule.event is None) == (rule.refuse is None):
            raise self.fail(entry, "give one of event (what the change becomes) or refuse (why it is parked)")
        if rule.refuse is not None:
            return self._refusal(table, entry, index, rule)
        model = EVENT_MODELS.get(rule.event)
        if model is None:
            raise self.fail(f"{entry}.event", f"unknown event type {rule.event!r} (known: {', '.join(EVENT_MODELS)})")
        merged: dict[str, FieldSpec] = {**common, **rule.fields}
        fields = tuple(
            self._field(f"{entry}.fields.{target}" if target in rule.fields else f"tables.{table}.common.{target}",
                        model, target, spec)
            for target, spec in merged.items()
        )
        mapped = {f.target for f in fields}
        for fname, finfo in model.model_fields.items():
            if fname in HisEventBase.SYSTEM_FIELDS or fname == "occurred_at":
                continue
            if finfo.is_required() and fname not in mapped:
                raise self.fail(f"{entry}.fields", f"event {rule.event} needs field {fname}, which is not mapped")
        conditions = tuple(self._condition(f"{entry}.when.{col}", col, cond) for col, cond in rule.when.items())
        name = rule.name or f"{rule.event}#{index}"
        return CompiledRule(
            table=table, name=name, event=rule.event, ops=frozenset(rule.ops), conditions=conditions,
            changed=tuple(rule.changed), fields=fields, decimal_mode=self.data.decimal_handling_mode,
        )

    def _refusal(self, table: str, entry: str, index: int, rule: RuleSpec) -> CompiledRule:
        if rule.fields:
            raise self.fail(f"{entry}.fields", "a refuse rule makes no event: it has no fields")
        if rule.changed and "u" not in rule.ops:
            raise self.fail(f"{entry}.changed", "changed applies to updates only: add u to ops")
        conditions = tuple(self._condition(f"{entry}.when.{col}", col, cond) for col, cond in rule.when.items())
        return CompiledRule(
            table=table, name=rule.name or f"refuse#{index}", event=None, ops=frozenset(rule.ops),
            conditions=conditions, changed=tuple(rule.changed), fields=(),
            decimal_mode=self.data.decimal_handling_mode, refusal=" ".join(str(rule.refuse).split()),
        )

    def _condition(self, entry: str, column: str, cond: Any) -> Condition:
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise self.fail(entry, "a condition object has exactly one of eq, ne, in, not_in, is_null")
            (op, arg), = cond.items()
            if op is None:  # YAML reads an unquoted `null:` key as None
                op = "null"
            if op in ("eq", "ne"):
                return Condition(column, op, frozenset({normalise_code(arg)}))
            if op in ("in", "not_in"):
                if not isinstance(arg, list) or not arg:
                    raise self.fail(entry, f"{op} needs a non-empty list")
                return Condition(column, op, frozenset(normalise_code(a) for a in arg))
            if op in ("null", "is_null"):
                if not isinstance(arg, bool):
                    raise self.fail(entry, f"{op} needs true or false")
                return Condition(column, "null" if arg else "not_null")
            raise self.fail(entry, f"unknown condition {op!r} (use eq, ne, in, not_in, is_null)")
        if isinstance(cond, list):
            if not cond:
                raise self.fail(entry, "an empty list matches nothing")
            return Condition(column, "in", frozenset(normalise_code(a) for a in cond))
        if cond is None:
            return Condition(column, "null")
        return Condition(column, "eq", frozenset({normalise_code(cond)}))

    def _field(self, entry: str, model: type[BaseModel], target: str, spec: FieldSpec) -> CompiledField:
        if target in HisEventBase.SYSTEM_FIELDS:
            raise self.fail(entry, f"{target} is set by the ingest, not by the mapping")
        if target not in model.model_fields:
            raise self.fail(entry, f"{model.__name__} has no field {target!r}")
        finfo = model.model_fields[target]
        kind = _kind_of(finfo.annotation)
        sources = [
            name for name in ("column", "template", "items") if getattr(spec, name) is not None
        ] + (["constant"] if "constant" in spec.model_fields_set else [])
        if len(sources) > 1:
            raise self.fail(entry, f"give one of column, constant, template, items (got {', '.join(sources)})")
        if not sources and "default" not in spec.model_fields_set:
            raise self.fail(entry, "give a column, a constant, a template, items or a default")
        if spec.type is not None:
            if spec.type not in KINDS:
                raise self.fail(f"{entry}.type", f"unknown type {spec.type!r} (known: {', '.join(KINDS)})")
            # a text field may be read as a number: a NUMERIC id (``type: decimal, scale: 0``) arrives as base64
            # of its unscaled value when the connector runs decimal.handling.mode=precise without schemas
            compatible = spec.type == kind or (kind == "str" and spec.type in ("str", "int", "decimal")) or (
                kind == "int" and spec.type == "decimal")
            if not compatible:
                raise self.fail(f"{entry}.type", f"type {spec.type} does not fit field {target} ({kind})")
        source_kind = spec.type if spec.type in ("decimal",) else kind
        if spec.scale is not None and source_kind != "decimal":
            raise self.fail(f"{entry}.scale",
                            f"scale applies to decimal fields (or `type: decimal`) only; {target} is {kind}")
        if spec.unit is not None and kind not in ("datetime", "date"):
            raise self.fail(f"{entry}.unit", f"unit applies to date/datetime fields only; {target} is {kind}")
        if spec.separator is not None and kind != "list":
            raise self.fail(f"{entry}.separator", f"separator applies to list fields only; {target} is {kind}")
        if spec.items is not None and kind != "items":
            raise self.fail(f"{entry}.items", f"items applies to list-of-object fields only; {target} is {kind}")
        if kind == "items" and spec.items is None and sources:
            raise self.fail(entry, f"{target} is a list of objects: map it with items")
        if spec.template is not None:
            if not TEMPLATE_REF.search(spec.template):
                raise self.fail(f"{entry}.template", "a template must reference at least one {COLUMN}")
            leftover = TEMPLATE_REF.sub("", spec.template)
            if "{" in leftover or "}" in leftover:
                raise self.fail(f"{entry}.template", "unbalanced or invalid {COLUMN} reference")
        code_map: Mapping[str, str] | None = None
        code_map_name: str | None = None
        if isinstance(spec.code_map, str):
            if spec.code_map not in self.data.code_maps:
                raise self.fail(f"{entry}.code_map", f"no code map named {spec.code_map!r}")
            code_map, code_map_name = self.data.code_maps[spec.code_map], spec.code_map
        elif isinstance(spec.code_map, dict):
            code_map, code_map_name = spec.code_map, f"(inline in {entry})"
        items: tuple[tuple[str | None, tuple[CompiledField, ...]], ...] = ()
        if spec.items is not None:
            if not spec.items:
                raise self.fail(f"{entry}.items", "items needs at least one item")
            item_model = _item_model(finfo.annotation)
            compiled_items = []
            for i, item in enumerate(spec.items):
                sub = tuple(
                    self._field(f"{entry}.items[{i}].fields.{t}", item_model, t, s) for t, s in item.fields.items()
                )
                mapped = {s.target for s in sub}
                for fname, sinfo in item_model.model_fields.items():
                    if sinfo.is_required() and fname not in mapped:
                        raise self.fail(f"{entry}.items[{i}].fields", f"{item_model.__name__} needs {fname}")
                compiled_items.append((item.when_present, sub))
            items = tuple(compiled_items)
        required = spec.required if spec.required is not None else (
            finfo.is_required() and "default" not in spec.model_fields_set
        )
        return CompiledField(
            target=target, kind=kind, read_as=source_kind if source_kind != kind else None, column=spec.column, constant=spec.constant,
            has_constant="constant" in spec.model_fields_set, template=spec.template, items=items,
            scale=spec.scale, unit=spec.unit or (self.data.datetime_unit if kind == "datetime" else None),
            code_map_name=code_map_name, code_map=code_map,
            default=spec.default, has_default="default" in spec.model_fields_set, required=bool(required),
            separator=spec.separator,
        )


def _key_scales(primary_key: list[str], rules: list[CompiledRule]) -> dict[str, int]:
    """Primary-key columns some field reads as a decimal (``type: decimal``), with that field's scale: the key
    is then decoded the same way, so a NUMERIC key has the same event id with or without schemas."""
    wanted = {c.casefold() for c in primary_key}
    out: dict[str, int] = {}
    for rule in rules:
        for f in rule.fields:
            if f.column and f.column.casefold() in wanted and f.read_as == "decimal" and f.scale is not None:
                out.setdefault(f.column.casefold(), f.scale)
            for m in TEMPLATE_REF.finditer(f.template or ""):
                if m.group(2) == "decimal" and m.group(1).casefold() in wanted:
                    out.setdefault(m.group(1).casefold(), 0)
    return out


def _entry_of(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def mapping_from_dict(data: Any, origin: str = "<dict>") -> HisMapping:
    """Validate and compile a mapping given as a dict (as read from YAML/JSON)."""
    if not isinstance(data, dict):
        raise ConfigurationError(f"mapping {origin}: (top level): must be a mapping of keys to values")
    try:
        parsed = MappingFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(err["loc"])
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigurationError(f"mapping {origin}: {_entry_of(loc)}: {err['msg']}{more}") from None
    return _Compiler(origin, parsed).compile()


def available_mappings() -> list[str]:
    """Names of the mapping files shipped with yibao-bridge (``load_mapping(name)`` loads one)."""
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(source: str | Path) -> HisMapping:
    """Load a mapping by shipped name (``"example-oracle-his"``) or by path to a .yaml/.yml/.json file."""
    path = Path(source)
    if not path.suffix and path.parent == Path("."):
        path = MAPPINGS_DIR / f"{source}.yaml"
    origin = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(available_mappings())
        raise ConfigurationError(f"mapping {source}: file not found (shipped mappings: {known})") from None
    except OSError as exc:
        raise ConfigurationError(f"mapping {origin}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ConfigurationError(f"mapping {origin}: not valid YAML/JSON{where}") from None
    return mapping_from_dict(data, origin)
