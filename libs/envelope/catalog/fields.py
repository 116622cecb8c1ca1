"""The resolved shape of one field, one dictionary and one transaction, as the rest of the code sees them.

These models are what :class:`~yibao.envelope.catalog.catalog.Catalog` hands out. They are frozen: a catalog
is built once (base data + a province's overrides) and shared by every worker of a service, so nothing may
change it after loading. The raw shapes of the data files (with ``use:`` blocks and override verbs) live in
:mod:`yibao.envelope.catalog.files`; the loader turns those into these.
"""

from __future__ import annotations

import re
from enum import StrEnum
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FieldType",
    "FieldSpec",
    "DictionarySpec",
    "TransactionSpec",
    "LostAnswer",
    "Resolution",
    "GatewayDefaults",
    "FileFormat",
    "SCALAR_TYPES",
    "CONTAINER_TYPES",
    "NAME_PATTERN",
    "WIRE_PATTERN",
]

#: field names are lower case identifiers (the spec's rule "keys lower case at every level")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: a key on the wire: the name, or a province's own spelling of it (``dscgTime``, ``REFD_SETL_FLAG``, ``expContent``)
WIRE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class FieldType(StrEnum):
    """Wire types. ``bytes`` exists only for 9101's file content, which travels as a stream."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    OBJECT = "object"
    ARRAY = "array"
    BYTES = "bytes"


SCALAR_TYPES = frozenset(
    {FieldType.STRING, FieldType.INTEGER, FieldType.DECIMAL, FieldType.DATE, FieldType.DATETIME, FieldType.BYTES}
)
CONTAINER_TYPES = frozenset({FieldType.OBJECT, FieldType.ARRAY})


class FieldSpec(BaseModel):
    """One element of an input/output: a scalar, or an object / array of objects with its own fields.

    ``name`` is how the bridge's code names the element (lower case, one spelling everywhere). ``wire_name`` is
    the key sent and read when the platform spells it otherwise: the spec's mixed-case nodes (9001 ``signIn``,
    9101 ``fsUploadIn``) or a province's own spelling (2303 ``dscgTime`` for ``dscg_time``, 3201
    ``REFD_SETL_FLAG``, ``expContent``). ``aliases`` are further keys accepted for it on the way in (an answer
    that carries 2401's ``data`` as ``result``; an input a simulator receives in another spelling) and read as
    ``name``. ``assumed`` marks a field whose length or requiredness no public source confirmed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: FieldType
    label: str = ""
    required: bool = False
    max_length: int | None = Field(default=None, gt=0)
    precision: int | None = Field(default=None, gt=0, le=28)
    scale: int | None = Field(default=None, ge=0)
    dictionary: str | None = None
    note: str | None = None
    assumed: bool = False  #: length or requiredness not confirmed by a public source
    wire_name: str | None = None
    aliases: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> FieldSpec:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"field name {self.name!r} must be lower case letters, digits and '_'")
        for key in (self.wire_name, *self.aliases):
            if key is not None and not WIRE_PATTERN.match(key):
                raise ValueError(f"{self.name}: {key!r} is not a key (letters, digits and '_')")
        t = self.type
        if t is FieldType.DECIMAL:
            if self.precision is None or self.scale is None:
                raise ValueError(f"{self.name}: a decimal needs precision and scale")
            if self.scale > self.precision:
                raise ValueError(f"{self.name}: scale {self.scale} exceeds precision {self.precision}")
        elif self.precision is not None or self.scale is not None:
            raise ValueError(f"{self.name}: precision/scale only apply to decimals")
        if t is FieldType.STRING and self.max_length is None:
            raise ValueError(f"{self.name}: a string needs max_length")
        if t in (FieldType.DECIMAL, FieldType.DATE, FieldType.DATETIME, FieldType.BYTES) and self.max_length:
            raise ValueError(f"{self.name}: max_length does not apply to {t.value}")
        if self.dictionary is not None and t is not FieldType.STRING:
            raise ValueError(f"{self.name}: only strings can be coded by a dictionary")
        if t in CONTAINER_TYPES:
            if not self.fields:
                raise ValueError(f"{self.name}: an {t.value} needs fields")
            if self.max_length is not None:
                raise ValueError(f"{self.name}: max_length does not apply to {t.value}")
        elif self.fields:
            raise ValueError(f"{self.name}: only objects and arrays have fields")
        seen: set[str] = set()
        for child in self.fields:
            if child.name in seen:
                raise ValueError(f"{self.name}: duplicate field {child.name!r}")
            seen.add(child.name)
        return self

    @property
    def key(self) -> str:
        """The key on the wire."""
        return self.wire_name or self.name

    @property
    def accepted_keys(self) -> tuple[str, ...]:
        """Every key read as this field: the wire key, then the name (when it differs), then the aliases."""
        keys: dict[str, str] = {}
        for key in (self.key, self.name, *self.aliases):
            keys.setdefault(key.lower(), key)
        return tuple(keys.values())

    def find_in(self, given: Mapping[str, Any]) -> tuple[bool, Any]:
        """(present, value) of this field in ``given``, an object whose keys are lower-cased."""
        for key in self.accepted_keys:
            low = key.lower()
            if low in given:
                return True, given[low]
        return False, None

    def child(self, name: str) -> FieldSpec | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def rule_type(self) -> str:
        """How the type is named in validation rules: ``decimal(16,2)``, ``string``, ``date`` …"""
        if self.type is FieldType.DECIMAL:
            return f"decimal({self.precision},{self.scale})"
        return self.type.value


class FileFormat(BaseModel):
    """How the TXT files exchanged around a transaction (3202's detail file) are written: what stands for an empty
    value (the spec says ``null``; some platforms read an empty cell) and whether the last row ends with a line
    break. A province file changes it (``transactions.3202.file_format``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    empty_value: Literal["null", ""] = "null"
    final_newline: bool = True


class DictionarySpec(BaseModel):
    """A code list. ``strict`` lists are closed (unknown codes refused); others document known codes only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str
    strict: bool
    values: dict[str, str]
    source: str | None = None

    def allows(self, code: str) -> bool:
        return not self.strict or code in self.values


class GatewayDefaults(BaseModel):
    """Where transactions are POSTed when a transaction does not name its own path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_path: str
    api_name_template: str = "hsa-fsi-{infno}"
    api_path_template: str = "/fsi/api/{api_name}"

    def path_for(self, infno: str) -> str:
        """The default path of one transaction (``default_path`` may contain ``{infno}`` for gateways with
        one path per transaction)."""
        return self.default_path.format(infno=infno)

    def api_name(self, infno: str) -> str:
        return self.api_name_template.format(infno=infno)

    def api_path(self, infno: str) -> str:
        return self.api_path_template.format(infno=infno, api_name=self.api_name(infno))


#: how a lost answer is resolved (derived from the catalog's facts: see :attr:`TransactionSpec.resolution`)
Resolution = Literal["retry", "query", "reverse", "query_then_reverse", "manual"]


class LostAnswer(BaseModel):
    """The catalog's fact about resolving a lost answer: send again (``resend``) or ask ``query``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resend: bool = False
    query: str | None = None
    why: str = ""


class TransactionSpec(BaseModel):
    """Everything the envelope needs to know about one transaction.

    ``input`` / ``output`` are the top-level elements of the envelope's ``input`` / ``output`` objects.
    ``None`` means "no schema catalogued" (the transaction is still callable as raw JSON); an empty tuple
    means "catalogued: this transaction has no elements there" (e.g. 2202 answers with no output node).
    ``path`` is the gateway path for the common national gateway, ``api_path`` the per-transaction REST path of
    "_api" style gateways. ``files`` describes the TXT files exchanged around it (3202 detail/result rows).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    infno: str
    category: str
    subcategory: str
    name: str
    mode: Literal["realtime", "daily"]
    priority: int
    direction: Literal["out", "in"]
    note: str = ""
    retry_safe: bool
    reversible: bool
    path: str
    api_name: str
    api_path: str
    input: tuple[FieldSpec, ...] | None = None
    output: tuple[FieldSpec, ...] | None = None
    output_stream: Literal["zip"] | None = None
    files: dict[str, tuple[FieldSpec, ...]] = Field(default_factory=dict)
    file_format: FileFormat = FileFormat()
    sources: tuple[str, ...] = ()
    lost_answer: LostAnswer | None = None
    #: which platform the transaction belongs to (its catalog): ``national``, ``workinjury`` …
    platform: str = "national"
    #: a platform's own classification (work injury: check, download, upload, realtime, revocation, query)
    kind: str | None = None
    #: uploads: at most this many seconds after the business event (work injury: 1800)
    deadline_s: int | None = Field(default=None, gt=0)
    #: records one call may carry (work injury: 500, attachments 10)
    max_records: int | None = Field(default=None, gt=0)
    #: a download whose records are confirmed once stored (work injury: GYU008)
    feedback: bool = False

    @property
    def resolution(self) -> Resolution:
        """How a lost answer of this transaction is resolved, from the facts: a query or a download is sent again
        (``retry``); so is a transaction the platform overwrites (``resend``); one with a ``query`` is looked up
        and, when reversible, 冲正 2601 before it is sent again (``query_then_reverse``); a reversible one without
        a query is reversed, then sent again; anything else needs a person (``manual``)."""
        lost = self.lost_answer
        if self.retry_safe or (lost is not None and lost.resend):
            return "retry"
        if lost is not None and lost.query:
            return "query_then_reverse" if self.reversible else "query"
        return "reverse" if self.reversible else "manual"

    @property
    def has_schema(self) -> bool:
        return self.input is not None

    def input_field(self, name: str) -> FieldSpec | None:
        return _find(self.input or (), name)

    def output_field(self, name: str) -> FieldSpec | None:
        return _find(self.output or (), name)


def _find(fields: tuple[FieldSpec, ...], name: str) -> FieldSpec | None:
    name = name.lower()
    for f in fields:
        if f.name == name:
            return f
    return None
