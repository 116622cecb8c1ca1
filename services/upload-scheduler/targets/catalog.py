"""The scheduler's catalog: the national one plus every target's transactions (data/targets.yaml) as
:class:`~yibao.envelope.catalog.fields.TransactionSpec` — so the chain engine resolves a target's lost answer
by the same rule as a national one (``lost_answer`` → :attr:`TransactionSpec.resolution`), the steps validate a
target record against its fields before sending it, and ``catalog.says(...)`` knows each target's wording."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.envelope.catalog import Catalog, FieldSpec, TransactionSpec
from yibao.envelope.catalog.fields import LostAnswer
from yibao.envelope.catalog.loader import CatalogData
from yibao.upload_scheduler.errors import LaneConfigError

__all__ = ["TargetTransaction", "TargetSpec", "load_targets", "build_catalog", "target_of"]

#: a transaction's name is journalled like a national infno (chain_calls.infno, platform_calls.infno: 10 characters)
MAX_NAME = 10
#: transaction prefix → target
PREFIXES = {"ZF": "zifei", "YMT": "yimatong", "DRG": "drg", "YQ": "epidemic", "FLU": "flu", "FEVER": "flu"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetLostAnswer(_Spec):
    resend: bool = False
    query: str | None = None
    why: str = ""


class TargetTransaction(_Spec):
    name: str
    path: str
    note: str = ""
    retry_safe: bool = False
    based_on: str | None = None
    lost_answer: TargetLostAnswer | None = None
    input: list[dict[str, Any]] = Field(default_factory=list)


class TargetSpec(_Spec):
    label: str
    source: str
    auth: Literal["hmac", "token", "register", "bearer", "none"]
    wording: dict[str, list[str]] = Field(default_factory=dict)
    transactions: dict[str, TargetTransaction]


def target_of(infno: str) -> str:
    """The target a transaction belongs to ("national" for national infnos)."""
    prefix = infno.split(".", 1)[0].upper() if "." in infno else ""
    return PREFIXES.get(prefix, "national")


def load_targets(path: Path | None = None) -> dict[str, TargetSpec]:
    if path is None:
        text = resources.files("yibao.upload_scheduler.data").joinpath("targets.yaml").read_text(encoding="utf-8")
        where = "data/targets.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise LaneConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        raw = yaml.safe_load(text) or {}
        return {name: TargetSpec.model_validate(spec) for name, spec in (raw.get("targets") or {}).items()}
    except yaml.YAMLError as exc:
        raise LaneConfigError(f"{where}: not YAML ({exc.__class__.__name__})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LaneConfigError(f"{where}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def _fields(raw: list[dict[str, Any]], where: str) -> tuple[FieldSpec, ...]:
    try:
        return tuple(FieldSpec.model_validate(f) for f in raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LaneConfigError(f"data/targets.yaml: {where}: {'.'.join(str(p) for p in first['loc'])}: "
                              f"{first['msg']}") from None


def _transactions(targets: dict[str, TargetSpec]) -> dict[str, TransactionSpec]:
    out: dict[str, TransactionSpec] = {}
    for target, spec in targets.items():
        for infno, tx in spec.transactions.items():
            if len(infno) > MAX_NAME:
                raise LaneConfigError(f"data/targets.yaml: {target}.{infno}: a transaction name is at most {MAX_NAME} "
                                      "characters (the call journal's infno)")
            raw = tx.input
            if tx.based_on is not None:
                base = spec.transactions.get(tx.based_on)
                if base is None:
                    raise LaneConfigError(f"data/targets.yaml: {target}.{infno}: based_on {tx.based_on} is not a "
                                          f"transaction of {target}")
                raw = raw or base.input
            lost = tx.lost_answer
            if lost is not None and lost.query is not None:
                query = spec.transactions.get(lost.query)
                if query is None or not query.retry_safe:
                    raise LaneConfigError(f"data/targets.yaml: {target}.{infno}: lost_answer.query {lost.query} is "
                                          "not a retry_safe transaction of the target")
            out[infno.upper()] = TransactionSpec(
                infno=infno.upper(), category=f"target {target}", subcategory=spec.label, name=tx.name,
                mode="realtime", priority=2, direction="out", note=tx.note, retry_safe=tx.retry_safe,
                reversible=False, path=tx.path, api_name=infno.upper(), api_path=tx.path,
                input=_fields(raw, f"{target}.{infno}.input"), output=(), sources=(spec.source,),
                lost_answer=LostAnswer(**lost.model_dump()) if lost is not None else None)
    return out


def build_catalog(national: Catalog, targets: dict[str, TargetSpec] | None = None) -> Catalog:
    """The national catalog with the targets' transactions and wording added (nothing national changes)."""
    targets = targets if targets is not None else load_targets()
    data: CatalogData = national._data  # noqa: SLF001 - the catalog exposes no builder for additions
    transactions = dict(data.transactions)
    for infno, tx in _transactions(targets).items():
        if infno in transactions:
            raise LaneConfigError(f"data/targets.yaml: {infno} is a national transaction")
        transactions[infno] = tx
    wording = {name: tuple(phrases) for name, phrases in data.wording.items()}
    for spec in targets.values():
        for name, phrases in spec.wording.items():
            wording[name] = tuple(dict.fromkeys(wording.get(name, ()) + tuple(p.lower() for p in phrases)))
    merged = CatalogData(transactions=transactions, dictionaries=data.dictionaries, blocks=data.blocks,
                         gateway=data.gateway, province=data.province, sources=data.sources, wording=wording)
    return Catalog(merged)
