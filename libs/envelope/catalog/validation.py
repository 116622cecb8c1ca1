"""Walking an input against its schema (format + validate), and an output against its schema (warn only).

Input: one walk does both jobs. Each element is put in the platform's format (:mod:`.formatting`) and, when
validating, checked: required (present and not empty; a required array needs at least one item), length,
type, decimal precision/scale, dictionary (strict dictionaries only), unknown fields (when rejecting them).
The first problem raises :class:`~yibao.envelope.errors.EnvelopeValidationError` (infno, path, rule, detail)
— nothing is sent. Paths read like the payload: ``data.psn_no``, ``feedetail[3].det_item_fee_sumamt``
(array indexes count from 0). Keys are matched case-insensitively and written lower case, except the spec's
own mixed-case node names (``signIn`` …), written as the schema spells them.

Output: platforms add fields and vary in what they fill, so output checks never raise; they return readable
warnings (path and rule, never the value) for the caller to log.

Unknown input fields (not in the schema) are allowed by default and passed through formatted: provinces add
fields (``exp_content`` …) long before a catalog learns about them, and refusing them would block
settlements for no safety gain — missing *required* fields are what break a call, and those are caught.
``unknown_fields="reject"`` turns them into errors (useful in tests and for strict deployments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from yibao.envelope.errors import EnvelopeValidationError

from .fields import DictionarySpec, FieldSpec, FieldType, TransactionSpec
from .formatting import FormatProblem, decimal_digits, format_untyped, format_value, is_blank

__all__ = ["UnknownFields", "prepare_input", "check_output"]

UnknownFields = Literal["allow", "reject"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class _Walk:
    infno: str
    validate: bool
    unknown: UnknownFields
    dictionaries: Mapping[str, DictionarySpec]

    def error(self, path: str, rule: str, detail: str = "") -> EnvelopeValidationError:
        return EnvelopeValidationError(self.infno, path or "input", rule, detail)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return type(value).__name__


def prepare_input(
    spec: TransactionSpec,
    payload: Any,
    *,
    validate: bool,
    unknown: UnknownFields,
    dictionaries: Mapping[str, DictionarySpec],
) -> dict[str, Any]:
    """The formatted input; with ``validate`` also every rule checked. Raises EnvelopeValidationError."""
    walk = _Walk(spec.infno, validate, unknown, dictionaries)
    if not isinstance(payload, Mapping):
        raise walk.error("input", "type object", f"got {_kind(payload)}")
    if spec.input is None:
        return _untyped_mapping(payload, "", walk)
    return _object(spec.input, payload, "", walk)


def _lowered(raw: Mapping[Any, Any], path: str, walk: _Walk) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise walk.error(path, "type object", f"a key of type {_kind(key)}")
        lk = key.lower()
        if lk in out:
            raise walk.error(_join(path, lk), "duplicate field", "two keys differ only in case")
        out[lk] = value
    return out


def _object(fields: tuple[FieldSpec, ...], raw: Mapping[Any, Any], path: str, walk: _Walk) -> dict[str, Any]:
    given = _lowered(raw, path, walk)
    out: dict[str, Any] = {}
    for f in fields:
        child = _join(path, f.key)
        present, value = f.find_in(given)
        if f.type is FieldType.OBJECT:
            if value is None:
                if walk.validate and f.required:
                    raise walk.error(child, "required")
                continue
            if not isinstance(value, Mapping):
                raise walk.error(child, "type object", f"got {_kind(value)}")
            out[f.key] = _object(f.fields, value, child, walk)
        elif f.type is FieldType.ARRAY:
            if value is None:
                if walk.validate and f.required:
                    raise walk.error(child, "required")
                continue
            if not isinstance(value, (list, tuple)):
                raise walk.error(child, "type array", f"got {_kind(value)}")
            if walk.validate and f.required and not value:
                raise walk.error(child, "required", "at least one item")
            items = []
            for i, item in enumerate(value):
                where = f"{child}[{i}]"
                if not isinstance(item, Mapping):
                    raise walk.error(where, "type object", f"got {_kind(item)}")
                items.append(_object(f.fields, item, where, walk))
            out[f.key] = items
        else:
            if walk.validate and f.required and is_blank(value):
                raise walk.error(child, "required")
            if not present:
                continue
            try:
                formatted = format_value(f, value)
            except FormatProblem as problem:
                raise walk.error(child, problem.rule, problem.detail) from None
            if walk.validate:
                _check_scalar(f, formatted, child, walk)
            out[f.key] = formatted
    known = {k.lower() for f in fields for k in f.accepted_keys}
    for key, value in given.items():
        if key in known:
            continue
        child = _join(path, key)
        if walk.validate and walk.unknown == "reject":
            raise walk.error(child, "unknown field")
        out[key] = _untyped(value, child, walk)
    return out


def _check_scalar(f: FieldSpec, value: Any, path: str, walk: _Walk) -> None:
    if f.type is FieldType.STRING:
        assert isinstance(value, str) and f.max_length is not None
        if len(value) > f.max_length:
            raise walk.error(path, f"max_length {f.max_length}", f"{len(value)} characters")
        if value and f.dictionary is not None:
            dictionary = walk.dictionaries.get(f.dictionary)
            if dictionary is not None and not dictionary.allows(value):
                raise walk.error(path, f"dictionary {f.dictionary}", "code not in the list")
    elif f.type is FieldType.INTEGER and f.max_length is not None:
        digits = len(str(abs(value)))
        if digits > f.max_length:
            raise walk.error(path, f"max_length {f.max_length}", f"{digits} digits")


def _untyped_mapping(raw: Mapping[Any, Any], path: str, walk: _Walk) -> dict[str, Any]:
    return {key: _untyped(value, _join(path, key), walk) for key, value in _lowered(raw, path, walk).items()}


def _untyped(value: Any, path: str, walk: _Walk) -> Any:
    if isinstance(value, Mapping):
        return _untyped_mapping(value, path, walk)
    if isinstance(value, (list, tuple)):
        return [_untyped(v, f"{path}[{i}]", walk) for i, v in enumerate(value)]
    try:
        return format_untyped(value)
    except FormatProblem as problem:
        raise walk.error(path, problem.rule, problem.detail) from None


# ---------------------------------------------------------------------------------------------------- output

def check_output(
    spec: TransactionSpec, payload: Any, dictionaries: Mapping[str, DictionarySpec]
) -> list[str]:
    """Warnings for an output that does not match the catalogued schema. Never raises."""
    warnings: list[str] = []
    try:
        if spec.output is None:
            return warnings
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            return [f"{spec.infno} output: type object (got {_kind(payload)})"]
        _check_output_object(spec.output, payload, "", dictionaries, warnings)
    except Exception as exc:  # noqa: BLE001 - a checker that is only advisory must not break a call
        warnings.append(f"{spec.infno} output: not checked ({exc.__class__.__name__})")
    return [f"{spec.infno} output.{w}" for w in warnings]


def _check_output_object(
    fields: tuple[FieldSpec, ...],
    raw: Mapping[Any, Any],
    path: str,
    dictionaries: Mapping[str, DictionarySpec],
    warnings: list[str],
) -> None:
    given = {k.lower(): v for k, v in raw.items() if isinstance(k, str)}
    for f in fields:
        child = _join(path, f.key)
        present, value = f.find_in(given)
        if not present:
            if f.required:
                warnings.append(f"{child}: required (missing)")
            continue
        if f.type is FieldType.OBJECT:
            if value is None:
                if f.required:
                    warnings.append(f"{child}: required (null)")
            elif not isinstance(value, Mapping):
                warnings.append(f"{child}: type object (got {_kind(value)})")
            else:
                _check_output_object(f.fields, value, child, dictionaries, warnings)
        elif f.type is FieldType.ARRAY:
            if value is None:
                if f.required:
                    warnings.append(f"{child}: required (null)")
            elif not isinstance(value, (list, tuple)):
                warnings.append(f"{child}: type array (got {_kind(value)})")
            else:
                for i, item in enumerate(value):
                    where = f"{child}[{i}]"
                    if isinstance(item, Mapping):
                        _check_output_object(f.fields, item, where, dictionaries, warnings)
                    else:
                        warnings.append(f"{where}: type object (got {_kind(item)})")
        else:
            problem = _output_scalar_problem(f, value, dictionaries)
            if problem:
                warnings.append(f"{child}: {problem}")


def _output_scalar_problem(f: FieldSpec, value: Any, dictionaries: Mapping[str, DictionarySpec]) -> str | None:
    if is_blank(value):
        # the platform sends "" for an empty string and 0 for an empty number: blank only matters if required
        return "required (empty)" if f.required else None
    t = f.type
    if t is FieldType.STRING:
        if not isinstance(value, str):
            return f"type string (got {_kind(value)})"
        if f.max_length is not None and len(value) > f.max_length:
            return f"max_length {f.max_length} ({len(value)} characters)"
        if f.dictionary is not None:
            dictionary = dictionaries.get(f.dictionary)
            if dictionary is not None and not dictionary.allows(value):
                return f"dictionary {f.dictionary} (code not in the list)"
        return None
    if t is FieldType.DECIMAL:
        if isinstance(value, bool):
            return f"type {f.rule_type} (got bool)"
        try:
            number = Decimal(str(value).strip()) if isinstance(value, (str, int, float, Decimal)) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            return f"type {f.rule_type} (not a number)"
        assert f.precision is not None and f.scale is not None
        if decimal_digits(number) > f.precision - f.scale:
            return f"precision {f.rule_type}"
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > f.scale and number != number.quantize(Decimal(1).scaleb(-f.scale)):
            return f"scale {f.rule_type}"
        return None
    if t is FieldType.INTEGER:
        if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, str) and _INTEGER.match(value.strip())):
            return f"type integer (got {_kind(value)})"
        return None
    if t is FieldType.DATE:
        if not (isinstance(value, str) and _DATE.match(value.strip())):
            return "type date (expected yyyy-MM-dd)"
        return None
    if t is FieldType.DATETIME:
        if not (isinstance(value, str) and _DATETIME.match(value.strip())):
            return "type datetime (expected yyyy-MM-dd HH:mm:ss)"
        return None
    return None
