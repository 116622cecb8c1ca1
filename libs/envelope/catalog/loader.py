"""Reading the catalog's data files into frozen specs, then applying a province's overrides.

Why a loader of its own rather than pydantic alone: the files refer to each other (schemas ``use:`` shared
blocks, fields name dictionaries, a province copies one transaction onto another), and every such reference
must be checked once, at load time, with the offending file named in the error. Anything wrong raises
:class:`~yibao.envelope.errors.CatalogError` — a deployment problem, never something to retry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from yibao.envelope.errors import CatalogError

from .fields import DictionarySpec, FieldSpec, GatewayDefaults, LostAnswer, TransactionSpec
from .files import (
    BlocksFile,
    DictionariesFile,
    PlatformSchemaFile,
    PlatformTransactionsFile,
    RawField,
    SchemaFile,
    TransactionsFile,
)

__all__ = [
    "DATA_DIR",
    "CatalogData",
    "load_base",
    "load_platform",
    "platform_dir",
    "find_province_file",
    "available_provinces",
    "read_yaml",
    "parse_file",
    "resolve_fields",
    "walk_fields",
    "check_dictionaries",
    "describe_validation_error",
]

#: the packaged data files
DATA_DIR = Path(__file__).resolve().parent / "data"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CatalogData:
    """Everything a :class:`~yibao.envelope.catalog.catalog.Catalog` is built from."""

    transactions: Mapping[str, TransactionSpec]
    dictionaries: Mapping[str, DictionarySpec]
    blocks: Mapping[str, tuple[RawField, ...]]
    gateway: GatewayDefaults
    province: str | None = None
    sources: tuple[Path, ...] = ()
    #: how the platform words the answers the bridge acts on: list name → phrases (lower case)
    wording: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the province's defaults of the envelope settings (``platform:`` of its file)
    platform_defaults: Mapping[str, Any] = field(default_factory=dict)
    #: whose transactions these are: the national platform, or another one (``data/<platform>/``)
    platform: str = "national"


def read_yaml(path: Path) -> Any:
    try:
        with path.open("r", encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader / SafeLoader)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise CatalogError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from exc


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """Short, value-free summary of a pydantic error: where and what (data files hold no personal data,
    but echoing inputs back is still noise)."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"… and {more} more")
    return "; ".join(parts)


def parse_file(path: Path, model: type[M], data: Any = None) -> M:
    """Validate one data file against its loader schema, naming the file on failure."""
    raw = read_yaml(path) if data is None else data
    if raw is None:
        raise CatalogError(f"{path}: the file is empty")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {describe_validation_error(exc)}") from exc


# ---------------------------------------------------------------------------------------------------- fields

def resolve_fields(
    raws: Iterable[RawField], blocks: Mapping[str, Sequence[RawField]], *, where: str
) -> tuple[FieldSpec, ...]:
    """Turn written fields into specs: expand ``use:`` blocks, apply ``omit``/``add``, validate each field."""
    return tuple(_resolve(raw, blocks, f"{where}.{raw.name}" if where else raw.name, depth=0) for raw in raws)


def _resolve(raw: RawField, blocks: Mapping[str, Sequence[RawField]], where: str, *, depth: int) -> FieldSpec:
    if depth > 8:
        raise CatalogError(f"{where}: fields nested too deeply (a block that uses itself?)")
    if raw.use is not None:
        if raw.fields is not None:
            raise CatalogError(f"{where}: give either fields or use, not both")
        block = blocks.get(raw.use)
        if block is None:
            raise CatalogError(f"{where}: unknown block {raw.use!r}")
        names = {f.name for f in block}
        for name in raw.omit:
            if name not in names:
                raise CatalogError(f"{where}: omit names {name!r}, which block {raw.use!r} does not have")
        children_raw = [f for f in block if f.name not in raw.omit] + list(raw.add)
    else:
        if raw.omit or raw.add:
            raise CatalogError(f"{where}: omit/add only work together with use")
        children_raw = list(raw.fields or [])
    children = tuple(_resolve(c, blocks, f"{where}.{c.name}", depth=depth + 1) for c in children_raw)
    try:
        return FieldSpec(
            name=raw.name,
            type=raw.type,
            label=raw.label,
            required=raw.required,
            max_length=raw.max_length,
            precision=raw.precision,
            scale=raw.scale,
            dictionary=raw.dictionary,
            note=raw.note,
            assumed=raw.assumed,
            wire_name=raw.wire_name,
            aliases=tuple(raw.aliases),
            fields=children,
        )
    except ValidationError as exc:
        raise CatalogError(f"{where}: {describe_validation_error(exc)}") from exc


def walk_fields(fields: Iterable[FieldSpec], prefix: str = "") -> Iterable[tuple[str, FieldSpec]]:
    for f in fields:
        path = f"{prefix}.{f.name}" if prefix else f.name
        yield path, f
        yield from walk_fields(f.fields, path)


def check_dictionaries(
    tx: TransactionSpec, dictionaries: Mapping[str, DictionarySpec], *, origin: str
) -> None:
    groups: list[tuple[str, tuple[FieldSpec, ...]]] = [("input", tx.input or ()), ("output", tx.output or ())]
    groups += [(f"files.{k}", v) for k, v in tx.files.items()]
    for prefix, fields in groups:
        for path, f in walk_fields(fields, prefix):
            if f.dictionary is not None and f.dictionary not in dictionaries:
                raise CatalogError(f"{origin}: {tx.infno} {path}: unknown dictionary {f.dictionary!r}")


# ---------------------------------------------------------------------------------------------------- base

def load_base(data_dir: Path = DATA_DIR) -> CatalogData:
    """The national catalog: transactions.yaml + dictionaries.yaml + blocks.yaml + schemas/*.yaml."""
    tx_path = data_dir / "transactions.yaml"
    tx_file = parse_file(tx_path, TransactionsFile)
    gateway = GatewayDefaults(**tx_file.gateway.model_dump())

    dict_path = data_dir / "dictionaries.yaml"
    raw_dicts = read_yaml(dict_path)
    dict_file = parse_file(dict_path, DictionariesFile, data={"dictionaries": raw_dicts})
    dictionaries = {
        name: DictionarySpec(name=name, **entry.model_dump()) for name, entry in dict_file.dictionaries.items()
    }

    blocks_path = data_dir / "blocks.yaml"
    blocks = {k: tuple(v) for k, v in parse_file(blocks_path, BlocksFile).blocks.items()}

    transactions: dict[str, TransactionSpec] = {}
    for row in tx_file.transactions:
        if row.infno in transactions:
            raise CatalogError(f"{tx_path}: transaction {row.infno} is listed twice")
        transactions[row.infno] = TransactionSpec(
            **row.model_dump(exclude={"path"}),
            path=row.path or gateway.path_for(row.infno),
            api_name=gateway.api_name(row.infno),
            api_path=gateway.api_path(row.infno),
        )

    _apply_lost_answers(transactions, tx_file.lost_answers, tx_path)
    wording = {name: normalize_phrases(phrases, origin=f"{tx_path}: wording.{name}")
               for name, phrases in tx_file.wording.items()}

    sources = [tx_path, dict_path, blocks_path]
    sources += _apply_schemas(transactions, data_dir / "schemas", SchemaFile, blocks, dictionaries, tx_path)

    return CatalogData(transactions=transactions, dictionaries=dictionaries, blocks=blocks, gateway=gateway,
                       sources=tuple(sources), wording=wording)


def check_lost_answer(tx: TransactionSpec, query: str | None, transactions: Mapping[str, TransactionSpec], *,
                      origin: str) -> None:
    """A lost-answer query must be a listed query that is safe to send again."""
    if query is None:
        return
    q = transactions.get(query)
    if q is None:
        raise CatalogError(f"{origin}: {tx.infno} lost_answer.query {query} is not a listed transaction")
    if not q.retry_safe:
        raise CatalogError(f"{origin}: {tx.infno} lost_answer.query {query} is not retry_safe (a query must be)")


def normalize_phrases(phrases: Iterable[str], *, origin: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(p.strip().lower() for p in phrases if p and p.strip()))
    if not out:
        raise CatalogError(f"{origin}: a wording list needs at least one phrase")
    return out


def _schema_update(schema: SchemaFile, blocks: Mapping[str, Sequence[RawField]], *, origin: str) -> dict[str, Any]:
    def res(raws: Sequence[RawField], where: str) -> tuple[FieldSpec, ...]:
        try:
            fields = resolve_fields(raws, blocks, where=where)
        except CatalogError as exc:
            raise CatalogError(f"{origin}: {exc}") from exc
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise CatalogError(f"{origin}: {where}: duplicate field {f.name!r}")
            seen.add(f.name)
        return fields

    update: dict[str, Any] = {
        "input": res(schema.input, "input"),
        "output": res(schema.output, "output"),
        "output_stream": schema.output_stream,
        "files": {name: res(rows, f"files.{name}") for name, rows in schema.files.items()},
        "sources": tuple(schema.sources),
    }
    if schema.file_format is not None:
        update["file_format"] = schema.file_format
    return update


def _apply_lost_answers(transactions: dict[str, TransactionSpec], lost_answers: Mapping[str, Any],
                        tx_path: Path) -> None:
    """Each listed transaction's lost-answer rule, its query checked against the listed transactions."""
    for infno, lost in lost_answers.items():
        tx = transactions.get(infno)
        if tx is None:
            raise CatalogError(f"{tx_path}: lost_answers names {infno}, which is not a listed transaction")
        check_lost_answer(tx, lost.query, transactions, origin=str(tx_path))
        transactions[infno] = tx.model_copy(update={"lost_answer": LostAnswer(**lost.model_dump())})


def _apply_schemas(transactions: dict[str, TransactionSpec], folder: Path, model: type[Any],
                   blocks: Mapping[str, Sequence[RawField]], dictionaries: Mapping[str, DictionarySpec],
                   tx_path: Path) -> list[Path]:
    """Every ``<infno>.yaml`` of ``folder`` (file model ``model``) merged into its listed transaction, its
    dictionaries checked; the files read."""
    read: list[Path] = []
    for schema_path in sorted(folder.glob("*.yaml")):
        schema = parse_file(schema_path, model)
        if schema.infno != schema_path.stem:
            raise CatalogError(f"{schema_path}: describes {schema.infno}; the file must be named {schema.infno}.yaml")
        base = transactions.get(schema.infno)
        if base is None:
            raise CatalogError(f"{schema_path}: {schema.infno} is not in {tx_path.name}")
        tx = base.model_copy(update=_schema_update(schema, blocks, origin=str(schema_path)))
        check_dictionaries(tx, dictionaries, origin=str(schema_path))
        transactions[schema.infno] = tx
        read.append(schema_path)
    return read


# ---------------------------------------------------------------------------------------------------- platforms

def platform_dir(platform: str, data_dir: Path = DATA_DIR) -> Path:
    """The data folder of another platform's catalog (``data/<platform>/``)."""
    if not _PROVINCE_NAME.match(platform or "") or platform == "national":
        raise CatalogError(f"platform name {platform!r} must be lower case letters, digits, '-' or '_' (not national)")
    folder = data_dir / platform
    if not (folder / "transactions.yaml").is_file():
        raise CatalogError(f"platform {platform!r}: no {folder / 'transactions.yaml'}")
    return folder


def load_platform(folder: Path) -> CatalogData:
    """Another platform's catalog (e.g. data/workinjury/): its transactions.yaml (rows, lost answers, wording,
    gateway), optional dictionaries.yaml and blocks.yaml, and schemas/*.yaml — checked by the same rules as the
    national files (lost-answer queries must be listed and retry_safe, dictionaries must exist, one schema file
    per listed transaction, named after it). The national catalog is not read or changed."""
    tx_path = folder / "transactions.yaml"
    tx_file = parse_file(tx_path, PlatformTransactionsFile)
    gateway = GatewayDefaults(**tx_file.gateway.model_dump())
    sources = [tx_path]

    dictionaries: dict[str, DictionarySpec] = {}
    dict_path = folder / "dictionaries.yaml"
    if dict_path.is_file():
        dict_file = parse_file(dict_path, DictionariesFile, data={"dictionaries": read_yaml(dict_path)})
        dictionaries = {name: DictionarySpec(name=name, **entry.model_dump())
                        for name, entry in dict_file.dictionaries.items()}
        sources.append(dict_path)
    blocks: dict[str, tuple[RawField, ...]] = {}
    blocks_path = folder / "blocks.yaml"
    if blocks_path.is_file():
        blocks = {k: tuple(v) for k, v in parse_file(blocks_path, BlocksFile).blocks.items()}
        sources.append(blocks_path)

    transactions: dict[str, TransactionSpec] = {}
    for row in tx_file.transactions:
        if row.infno in transactions:
            raise CatalogError(f"{tx_path}: transaction {row.infno} is listed twice")
        values = row.model_dump(exclude={"path", "kind"})
        transactions[row.infno] = TransactionSpec(
            **values, kind=row.kind, platform=tx_file.platform, mode="realtime", priority=1,
            direction="out", path=row.path or gateway.path_for(row.infno), api_name=gateway.api_name(row.infno),
            api_path=gateway.api_path(row.infno))
    _apply_lost_answers(transactions, tx_file.lost_answers, tx_path)
    wording = {name: normalize_phrases(phrases, origin=f"{tx_path}: wording.{name}")
               for name, phrases in tx_file.wording.items()}

    sources += _apply_schemas(transactions, folder / "schemas", PlatformSchemaFile, blocks, dictionaries, tx_path)

    return CatalogData(transactions=transactions, dictionaries=dictionaries, blocks=blocks, gateway=gateway,
                       sources=tuple(sources), wording=wording, platform=tx_file.platform)


# ---------------------------------------------------------------------------------------------------- provinces

_PROVINCE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def _province_folders(extra_dirs: Sequence[Path], data_dir: Path) -> list[Path]:
    folders: list[Path] = []
    for directory in map(Path, extra_dirs):
        folders += [directory, directory / "provinces"]
    folders.append(data_dir / "provinces")
    return folders


def find_province_file(province: str, extra_dirs: Sequence[Path] = (), data_dir: Path = DATA_DIR) -> Path:
    """The file defining ``province``: the first ``<province>.yaml`` in ``extra_dirs`` (or their
    ``provinces/`` sub-folder) — deployment-supplied files win — then the packaged ``data/provinces``."""
    if not _PROVINCE_NAME.match(province or ""):
        raise CatalogError(f"province name {province!r} must be lower case letters, digits, '-' or '_'")
    for folder in _province_folders(extra_dirs, data_dir):
        candidate = folder / f"{province}.yaml"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(available_provinces(extra_dirs, data_dir))) or "none"
    raise CatalogError(f"province {province!r}: no {province}.yaml found (known: {known})")


def available_provinces(extra_dirs: Sequence[Path] = (), data_dir: Path = DATA_DIR) -> set[str]:
    names: set[str] = set()
    for folder in _province_folders(extra_dirs, data_dir):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml") if _PROVINCE_NAME.match(p.stem))
    return names
