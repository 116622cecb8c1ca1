"""The loader schema: pydantic models of the catalog's data files, exactly as they are written.

Every YAML file is validated against one of these before anything is built from it, so a typo in a data file
(an unknown key, a bad type name, a string without a length) fails at load time with the file named, never at
the first settlement. ``extra="forbid"`` everywhere for the same reason.

Files (under ``data/``):

* ``transactions.yaml`` → :class:`TransactionsFile` (the 115 national transactions + gateway defaults);
* ``dictionaries.yaml`` → :class:`DictionariesFile`;
* ``blocks.yaml`` → :class:`BlocksFile` (field lists shared by several schemas);
* ``schemas/<infno>.yaml`` → :class:`SchemaFile`;
* ``provinces/<name>.yaml`` → :class:`ProvinceFile` (overrides).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .fields import FieldType, FileFormat

__all__ = [
    "RawField",
    "TransactionRow",
    "LostAnswerRow",
    "GatewayFile",
    "TransactionsFile",
    "DictionaryEntry",
    "DictionariesFile",
    "BlocksFile",
    "SchemaFile",
    "FieldChange",
    "TransactionOverride",
    "DictionaryOverride",
    "GatewayOverride",
    "WordingOverride",
    "ProvinceFile",
    "PLATFORM_INFNO",
    "PlatformTransactionRow",
    "PlatformLostAnswerRow",
    "PlatformTransactionsFile",
    "PlatformSchemaFile",
]

_STRICT = ConfigDict(extra="forbid")


class RawField(BaseModel):
    """A field as written: like :class:`~yibao.envelope.catalog.fields.FieldSpec`, plus block reuse.

    ``use: <block>`` takes the fields of a shared block (blocks.yaml); ``omit`` drops some of them and ``add``
    appends more. ``fields`` and ``use`` may not both be given.
    """

    model_config = _STRICT

    name: str
    type: FieldType
    label: str = ""
    required: bool = False
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    dictionary: str | None = None
    note: str | None = None
    assumed: bool = False  #: length or requiredness not confirmed by a public source (a reasoned choice)
    wire_name: str | None = None
    aliases: list[str] = Field(default_factory=list)
    fields: list[RawField] | None = None
    use: str | None = None
    omit: list[str] = Field(default_factory=list)
    add: list[RawField] = Field(default_factory=list)


class TransactionRow(BaseModel):
    model_config = _STRICT

    infno: str = Field(pattern=r"^\d{4}[A-Z]?$")
    category: str
    subcategory: str
    name: str
    mode: Literal["realtime", "daily"]
    priority: int = Field(ge=1, le=3)
    direction: Literal["out", "in"]
    retry_safe: bool
    reversible: bool
    path: str | None = None
    note: str = ""


class LostAnswerRow(BaseModel):
    """How a lost answer of a state-changing transaction is resolved (transactions.yaml ``lost_answers``)."""

    model_config = _STRICT

    resend: bool = False
    query: str | None = Field(default=None, pattern=r"^\d{4}[A-Z]?$")
    why: str

    @model_validator(mode="after")
    def _one_way(self) -> LostAnswerRow:
        if self.resend == (self.query is not None):
            raise ValueError("give exactly one of resend: true or query: <infno>")
        return self


class GatewayFile(BaseModel):
    model_config = _STRICT

    default_path: str = Field(pattern=r"^/")
    api_name_template: str = "hsa-fsi-{infno}"
    api_path_template: str = "/fsi/api/{api_name}"


class TransactionsFile(BaseModel):
    model_config = _STRICT

    gateway: GatewayFile
    transactions: list[TransactionRow]
    lost_answers: dict[str, LostAnswerRow] = Field(default_factory=dict)
    wording: dict[str, list[str]] = Field(default_factory=dict)


class DictionaryEntry(BaseModel):
    model_config = _STRICT

    label: str
    strict: bool
    values: dict[str, str]
    source: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _codes_are_text(cls, v: object) -> object:
        # YAML reads an unquoted 01 as the integer 1: insist on quoted codes rather than guess the padding.
        if isinstance(v, dict):
            for code in v:
                if not isinstance(code, str):
                    raise ValueError(f"code {code!r} must be quoted (codes are text: \"01\", not 01)")
        return v


class DictionariesFile(BaseModel):
    model_config = _STRICT

    dictionaries: dict[str, DictionaryEntry]


class BlocksFile(BaseModel):
    model_config = _STRICT

    blocks: dict[str, list[RawField]]


class SchemaFile(BaseModel):
    model_config = _STRICT

    infno: str = Field(pattern=r"^\d{4}[A-Z]?$")
    sources: list[str] = Field(default_factory=list)
    input: list[RawField]
    output: list[RawField]
    output_stream: Literal["zip"] | None = None
    files: dict[str, list[RawField]] = Field(default_factory=dict)
    file_format: FileFormat | None = None


class FieldChange(BaseModel):
    """Attributes a province may change on an existing field (anything not given stays)."""

    model_config = _STRICT

    type: FieldType | None = None
    label: str | None = None
    required: bool | None = None
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    dictionary: str | None = None
    note: str | None = None
    wire_name: str | None = None
    aliases: list[str] | None = None
    assumed: bool | None = None


class TransactionOverride(BaseModel):
    """One transaction in a province file.

    * infno not in the catalog: a new transaction; ``based_on`` (an existing infno) is required and its
      metadata and schema are copied before the changes below are applied;
    * infno in the catalog: the changes apply to it; ``based_on`` copies another transaction's schema onto it
      (how 2203A — listed nationally without a schema — gets 2203's layout).

    Field paths start with ``input.`` or ``output.`` and name nested fields by name (no array indexes):
    ``input.mdtrtinfo.med_type``, ``input.feedetail.med_list_codg``. ``add`` keys name the parent (``input`` for
    the top level).
    """

    model_config = _STRICT

    based_on: str | None = None
    category: str | None = None
    subcategory: str | None = None
    name: str | None = None
    mode: Literal["realtime", "daily"] | None = None
    priority: int | None = Field(default=None, ge=1, le=3)
    direction: Literal["out", "in"] | None = None
    note: str | None = None
    retry_safe: bool | None = None
    reversible: bool | None = None
    path: str | None = Field(default=None, pattern=r"^/")
    api_path: str | None = Field(default=None, pattern=r"^/")
    lost_answer: LostAnswerRow | None = None
    file_format: FileFormat | None = None
    change: dict[str, FieldChange] = Field(default_factory=dict)
    add: dict[str, list[RawField]] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class DictionaryOverride(BaseModel):
    """Add codes to a dictionary (or create one: then ``label`` and ``strict`` are needed)."""

    model_config = _STRICT

    label: str | None = None
    strict: bool | None = None
    source: str | None = None
    add: dict[str, str] = Field(default_factory=dict)

    @field_validator("add", mode="before")
    @classmethod
    def _codes_are_text(cls, v: object) -> object:
        if isinstance(v, dict):
            for code in v:
                if not isinstance(code, str):
                    raise ValueError(f"code {code!r} must be quoted (codes are text)")
        return v


class GatewayOverride(BaseModel):
    model_config = _STRICT

    default_path: str | None = Field(default=None, pattern=r"^/")
    api_name_template: str | None = None
    api_path_template: str | None = None


class WordingOverride(BaseModel):
    """A province's own phrases for one wording list: ``add`` to the national ones, or ``replace`` them."""

    model_config = _STRICT

    add: list[str] = Field(default_factory=list)
    replace: list[str] | None = None


class ProvinceFile(BaseModel):
    model_config = _STRICT

    province: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    label: str = ""
    sources: list[str] = Field(default_factory=list)
    gateway: GatewayOverride | None = None
    transactions: dict[str, TransactionOverride] = Field(default_factory=dict)
    dictionaries: dict[str, DictionaryOverride] = Field(default_factory=dict)
    wording: dict[str, WordingOverride] = Field(default_factory=dict)
    #: defaults of the envelope settings in this province (yibao.envelope.settings.PROVINCE_DEFAULTS: gateway kind,
    #: infver, recer_sys_code, sign_over …); a setting given by the environment wins
    platform: dict[str, str | bool] = Field(default_factory=dict)

    @field_validator("transactions", mode="before")
    @classmethod
    def _infno_keys(cls, v: object) -> object:
        if isinstance(v, dict):
            for key in v:
                if not isinstance(key, str):
                    raise ValueError(f"transaction key {key!r} must be quoted (\"2203A\", \"2204\")")
        return v


# --- other platforms' catalogs (data/<platform>/, read by loader.load_platform) -----------------------------------

#: transaction codes of the other platforms: the work-injury platform's GYU000 … GYR005
PLATFORM_INFNO = r"^(\d{4}[A-Z]?|GY[UDR]\d{3})$"


class PlatformTransactionRow(BaseModel):
    """One transaction of another platform (data/<platform>/transactions.yaml). Category and name as the national
    rows; instead of the national mode/priority/direction, the platform's own ``kind``, an upload's deadline, the
    records a call may carry, and whether a download is confirmed."""

    model_config = _STRICT

    infno: str = Field(pattern=PLATFORM_INFNO)
    category: str
    subcategory: str
    name: str
    kind: Literal["check", "download", "upload", "realtime", "revocation", "query"]
    retry_safe: bool
    reversible: bool = False
    deadline_s: int | None = Field(default=None, gt=0)
    max_records: int | None = Field(default=None, gt=0)
    feedback: bool = False
    path: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _coherent(self) -> PlatformTransactionRow:
        if self.kind == "upload" and self.deadline_s is None:
            raise ValueError(f"{self.infno}: an upload needs its deadline_s")
        if self.feedback and self.kind != "download":
            raise ValueError(f"{self.infno}: only a download is confirmed (feedback)")
        return self


class PlatformLostAnswerRow(LostAnswerRow):
    query: str | None = Field(default=None, pattern=PLATFORM_INFNO)


class PlatformTransactionsFile(BaseModel):
    model_config = _STRICT

    platform: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    gateway: GatewayFile
    transactions: list[PlatformTransactionRow]
    lost_answers: dict[str, PlatformLostAnswerRow] = Field(default_factory=dict)
    wording: dict[str, list[str]] = Field(default_factory=dict)


class PlatformSchemaFile(SchemaFile):
    infno: str = Field(pattern=PLATFORM_INFNO)
