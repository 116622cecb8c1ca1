"""Applying a province file to the national catalog.

A real deployment receives the province's own interface document; it differs from the national baseline in
small, typical ways — an extra regional transaction (中山 2203A), another gateway path, a longer code field, an
added element, local dictionary codes. A province file states exactly those differences, and this module
applies them with the same rigour as the base files: every infno, field path and dictionary it names must
exist (or be created explicitly), every changed field must still be a valid field, and any problem raises
:class:`~yibao.envelope.errors.CatalogError` naming the province file and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from yibao.envelope.errors import CatalogError

from .fields import CONTAINER_TYPES, DictionarySpec, FieldSpec, GatewayDefaults, LostAnswer, TransactionSpec
from .files import FieldChange, ProvinceFile, RawField, TransactionOverride
from .loader import (
    CatalogData,
    check_dictionaries,
    check_lost_answer,
    describe_validation_error,
    normalize_phrases,
    parse_file,
    resolve_fields,
)

__all__ = ["apply_province_file", "apply_province"]

_INFNO = re.compile(r"^(\d{4}[A-Z]?|GY[UDR]\d{3})$")  # national, or the work-injury GY* codes
_META = ("category", "subcategory", "name", "mode", "priority", "direction", "note", "retry_safe", "reversible")


class _NoSuchField(Exception):
    pass


def apply_province_file(base: CatalogData, path: Path) -> CatalogData:
    province = parse_file(path, ProvinceFile)
    if province.province != path.stem:
        raise CatalogError(f"{path}: declares province {province.province!r}; the file must be named "
                           f"{province.province}.yaml")
    return apply_province(base, province, origin=str(path), path=path)


def apply_province(base: CatalogData, province: ProvinceFile, *, origin: str, path: Path | None = None) -> CatalogData:
    gateway = _gateway(base.gateway, province, origin)
    transactions = {k: _rehome(v, base.gateway, gateway) for k, v in base.transactions.items()}
    dictionaries = dict(base.dictionaries)

    for name, ov in province.dictionaries.items():
        dictionaries[name] = _dictionary(dictionaries.get(name), name, ov, origin)

    for infno, ov in province.transactions.items():
        where = f"{origin}: transactions.{infno}"
        transactions[infno] = _transaction(infno, ov, transactions, gateway, base.blocks, where)

    for tx in transactions.values():
        check_dictionaries(tx, dictionaries, origin=origin)

    wording = dict(base.wording)
    for name, ov in province.wording.items():
        where = f"{origin}: wording.{name}"
        if name not in wording and ov.replace is None:
            raise CatalogError(f"{where}: unknown wording list (known: {', '.join(sorted(wording))})")
        phrases = list(ov.replace) if ov.replace is not None else list(wording[name])
        wording[name] = normalize_phrases(phrases + list(ov.add), origin=where)

    return CatalogData(
        transactions=transactions,
        dictionaries=dictionaries,
        blocks=base.blocks,
        gateway=gateway,
        province=province.province,
        sources=base.sources + ((path,) if path is not None else ()),
        wording=wording,
        platform_defaults=_platform(province, origin),
        platform=base.platform,
    )


def _platform(province: ProvinceFile, origin: str) -> dict[str, Any]:
    from yibao.envelope.settings import PROVINCE_DEFAULTS

    unknown = sorted(set(province.platform) - PROVINCE_DEFAULTS)
    if unknown:
        raise CatalogError(f"{origin}: platform: {', '.join(unknown)} cannot be set by a province file "
                           f"(allowed: {', '.join(sorted(PROVINCE_DEFAULTS))})")
    return dict(province.platform)


# ---------------------------------------------------------------------------------------------------- gateway

def _gateway(old: GatewayDefaults, province: ProvinceFile, origin: str) -> GatewayDefaults:
    if province.gateway is None:
        return old
    changes = province.gateway.model_dump(exclude_none=True)
    try:
        new = GatewayDefaults(**{**old.model_dump(), **changes})
        new.api_path("0000")  # the templates must format
        new.path_for("0000")
    except (ValidationError, KeyError, IndexError, ValueError) as exc:
        raise CatalogError(f"{origin}: gateway: unusable template or path ({exc.__class__.__name__})") from exc
    return new


def _rehome(tx: TransactionSpec, old: GatewayDefaults, new: GatewayDefaults) -> TransactionSpec:
    """Move transactions that used the old defaults onto the new ones; explicit paths stay."""
    if old == new:
        return tx
    update: dict[str, Any] = {}
    if tx.path == old.path_for(tx.infno):
        update["path"] = new.path_for(tx.infno)
    if tx.api_name == old.api_name(tx.infno):
        update["api_name"] = new.api_name(tx.infno)
    if tx.api_path == old.api_path(tx.infno):
        update["api_path"] = new.api_path(tx.infno)
    return tx.model_copy(update=update) if update else tx


# ---------------------------------------------------------------------------------------------------- dictionaries

def _dictionary(current: DictionarySpec | None, name: str, ov: Any, origin: str) -> DictionarySpec:
    where = f"{origin}: dictionaries.{name}"
    if current is None:
        if ov.label is None or ov.strict is None:
            raise CatalogError(f"{where}: unknown dictionary (to create one give label and strict)")
        return DictionarySpec(name=name, label=ov.label, strict=ov.strict, values=dict(ov.add), source=ov.source)
    return DictionarySpec(
        name=name,
        label=ov.label if ov.label is not None else current.label,
        strict=ov.strict if ov.strict is not None else current.strict,
        values={**current.values, **ov.add},
        source=ov.source if ov.source is not None else current.source,
    )


# ---------------------------------------------------------------------------------------------------- transactions

def _transaction(
    infno: str,
    ov: TransactionOverride,
    transactions: Mapping[str, TransactionSpec],
    gateway: GatewayDefaults,
    blocks: Mapping[str, Sequence[RawField]],
    where: str,
) -> TransactionSpec:
    if not _INFNO.match(infno):
        raise CatalogError(f"{where}: {infno!r} is not an infno (4 digits and an optional letter)")
    current = transactions.get(infno)
    source = None
    if ov.based_on is not None:
        source = transactions.get(ov.based_on)
        if source is None:
            raise CatalogError(f"{where}: based_on names {ov.based_on}, which is not in the catalog")

    if current is None:
        if source is None:
            raise CatalogError(f"{where}: unknown transaction (not in the national list; give based_on to add it)")
        tx = source.model_copy(update={
            "infno": infno,
            "name": f"{source.name}（{infno}）",
            "note": "",
            "path": gateway.path_for(infno) if source.path == gateway.path_for(source.infno) else source.path,
            "api_name": gateway.api_name(infno),
            "api_path": gateway.api_path(infno),
        })
    else:
        tx = current
        if source is not None:
            tx = tx.model_copy(update={"input": source.input, "output": source.output,
                                       "output_stream": source.output_stream, "files": dict(source.files)})

    update: dict[str, Any] = {k: getattr(ov, k) for k in _META if getattr(ov, k) is not None}
    if ov.path is not None:
        update["path"] = ov.path
    if ov.api_path is not None:
        update["api_path"] = ov.api_path
    if source is not None:
        update["sources"] = tuple(source.sources) + (where.split(":", 1)[0],)
    if ov.file_format is not None:
        update["file_format"] = ov.file_format
    if ov.lost_answer is not None:
        check_lost_answer(tx, ov.lost_answer.query, transactions, origin=where)
        update["lost_answer"] = LostAnswer(**ov.lost_answer.model_dump())
    tx = tx.model_copy(update=update)

    if ov.remove or ov.change or ov.add:
        if tx.input is None or tx.output is None:
            raise CatalogError(f"{where}: {infno} has no schema to change (give based_on to copy one)")
        groups = {"input": tx.input, "output": tx.output}
        for path in ov.remove:
            groups = _edit(groups, path, lambda f: None, where, "remove")
        for path, change in ov.change.items():
            groups = _edit(groups, path, _changer(change, f"{where}: change {path}"), where, "change")
        for parent, raws in ov.add.items():
            added = _resolve_added(raws, blocks, f"{where}: add {parent}")
            groups = _append(groups, parent, added, where)
        tx = tx.model_copy(update={"input": groups["input"], "output": groups["output"]})
    return tx


def _split(path: str, where: str, verb: str) -> tuple[str, list[str]]:
    parts = [p for p in path.strip().lower().split(".") if p]
    if not parts or parts[0] not in ("input", "output"):
        raise CatalogError(f"{where}: {verb} {path!r}: a field path starts with input. or output.")
    return parts[0], parts[1:]


def _edit(
    groups: dict[str, tuple[FieldSpec, ...]],
    path: str,
    fn: Callable[[FieldSpec], FieldSpec | None],
    where: str,
    verb: str,
) -> dict[str, tuple[FieldSpec, ...]]:
    group, segments = _split(path, where, verb)
    if not segments:
        raise CatalogError(f"{where}: {verb} {path!r}: name a field, not the whole {group}")
    try:
        new = _replace_at(groups[group], segments, fn)
    except _NoSuchField:
        raise CatalogError(f"{where}: {verb} {path!r}: no such field") from None
    except ValidationError as exc:
        raise CatalogError(f"{where}: {verb} {path!r}: {describe_validation_error(exc)}") from exc
    return {**groups, group: new}


def _replace_at(
    fields: tuple[FieldSpec, ...], segments: list[str], fn: Callable[[FieldSpec], FieldSpec | None]
) -> tuple[FieldSpec, ...]:
    head, rest = segments[0], segments[1:]
    out: list[FieldSpec] = []
    found = False
    for f in fields:
        if f.name != head:
            out.append(f)
            continue
        found = True
        if rest:
            if f.type not in CONTAINER_TYPES:
                raise _NoSuchField
            out.append(_remake(f, fields=_replace_at(f.fields, rest, fn)))
        else:
            replacement = fn(f)
            if replacement is not None:
                out.append(replacement)
    if not found:
        raise _NoSuchField
    return tuple(out)


def _remake(f: FieldSpec, **changes: Any) -> FieldSpec:
    data = {name: getattr(f, name) for name in FieldSpec.model_fields}
    data.update(changes)
    return FieldSpec(**data)


def _changer(change: FieldChange, where: str) -> Callable[[FieldSpec], FieldSpec]:
    changes = change.model_dump(exclude_unset=True)

    def apply(f: FieldSpec) -> FieldSpec:
        try:
            return _remake(f, **changes)
        except ValidationError as exc:
            raise CatalogError(f"{where}: {describe_validation_error(exc)}") from exc

    return apply


def _resolve_added(raws: Sequence[RawField], blocks: Mapping[str, Sequence[RawField]], where: str) -> tuple[FieldSpec, ...]:
    try:
        return resolve_fields(raws, blocks, where="")
    except CatalogError as exc:
        raise CatalogError(f"{where}: {exc}") from exc


def _append(
    groups: dict[str, tuple[FieldSpec, ...]], parent: str, added: tuple[FieldSpec, ...], where: str
) -> dict[str, tuple[FieldSpec, ...]]:
    group, segments = _split(parent, where, "add to")

    def merge(existing: tuple[FieldSpec, ...]) -> tuple[FieldSpec, ...]:
        names = {f.name for f in existing}
        for f in added:
            if f.name in names:
                raise CatalogError(f"{where}: add to {parent!r}: duplicate field {f.name!r}")
            names.add(f.name)
        return existing + added

    if not segments:
        return {**groups, group: merge(groups[group])}

    def into(f: FieldSpec) -> FieldSpec:
        if f.type not in CONTAINER_TYPES:
            raise CatalogError(f"{where}: add to {parent!r}: {f.name} is a {f.type.value}, not an object or array")
        return _remake(f, fields=merge(f.fields))

    return _edit(groups, parent, into, where, "add to")
