"""The transaction catalog: what every national transaction looks like, for one province.

The envelope calls this before sending anything::

    catalog = Catalog.load("guangdong")
    spec = catalog.transaction("2207")          # path, retry_safe, reversible, resolution …
    catalog.says("reversal_nothing_done", err_msg)  # the platform's wording, per province
    body = catalog.prepare_input("2207", raw)   # formatted + validated in one walk (or the two calls below)
    catalog.validate_input("2207", raw)         # EnvelopeValidationError(infno, path, rule, detail)
    body = catalog.normalize_input("2207", raw) # lower-case keys, yyyy-MM-dd HH:mm:ss, Decimal("12.50") …
    warnings = catalog.validate_output("2207", output)

A catalog is immutable and cheap to share: ``Catalog.load`` caches one per (province, extra_dirs) so every
worker of a service uses the same object.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yibao.envelope.errors import CatalogError

from .fields import DictionarySpec, GatewayDefaults, TransactionSpec
from .keys import to_names, to_wire
from .loader import (
    DATA_DIR,
    CatalogData,
    available_provinces,
    find_province_file,
    load_base,
    load_platform,
    platform_dir,
)
from .overrides import apply_province_file
from .validation import UnknownFields, check_output, prepare_input

__all__ = ["Catalog", "UnknownTransactionError"]


class UnknownTransactionError(CatalogError, KeyError):
    """An infno the catalog does not know. A CatalogError that also behaves like a KeyError for lookups."""

    code = "unknown_transaction"

    def __init__(self, infno: str, province: str | None) -> None:
        self.infno = infno
        where = f"the {province} catalog" if province else "the national catalog"
        super().__init__(f"transaction {infno!r} is not in {where}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Catalog:
    """National transactions + their schemas + dictionaries, with one province's overrides applied."""

    def __init__(self, data: CatalogData, *, unknown_fields: UnknownFields = "allow") -> None:
        if unknown_fields not in ("allow", "reject"):
            raise CatalogError(f"unknown_fields must be 'allow' or 'reject', not {unknown_fields!r}")
        self._data = data
        self._unknown_fields: UnknownFields = unknown_fields

    # ------------------------------------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        province: str | None = None,
        *,
        extra_dirs: Sequence[Path] = (),
        unknown_fields: UnknownFields = "allow",
        platform: str = "national",
    ) -> Catalog:
        """The packaged national catalog, with ``province``'s overrides when given.

        ``extra_dirs`` are searched first for ``<province>.yaml`` (directly or under ``provinces/``), so a
        deployment can ship its own province file without touching the package. Any problem in any file raises
        CatalogError naming the file.

        ``platform`` other than ``national`` loads that platform's own catalog instead (``data/<platform>/``,
        e.g. ``workinjury``: the 39 GY* transactions), with its province file from ``extra_dirs`` or
        ``data/<platform>/provinces``.
        """
        dirs = tuple(Path(d).resolve() for d in extra_dirs)
        return cls(_load_cached(province, dirs, platform), unknown_fields=unknown_fields)

    @staticmethod
    def provinces(extra_dirs: Sequence[Path] = ()) -> set[str]:
        """Province names that :meth:`load` can find."""
        return available_provinces(tuple(Path(d) for d in extra_dirs))

    # ------------------------------------------------------------------------------------------------ lookups

    @property
    def province(self) -> str | None:
        return self._data.province

    @property
    def platform(self) -> str:
        """Whose transactions: ``national`` or another platform's catalog (``workinjury``)."""
        return self._data.platform

    @property
    def gateway(self) -> GatewayDefaults:
        return self._data.gateway

    @property
    def platform_defaults(self) -> Mapping[str, Any]:
        """The province's defaults of the envelope settings (gateway kind, infver, sign_over …; empty nationally)."""
        return MappingProxyType(dict(self._data.platform_defaults))

    @property
    def sources(self) -> tuple[Path, ...]:
        """The data files this catalog was built from (for diagnostics)."""
        return self._data.sources

    def transaction(self, infno: str) -> TransactionSpec:
        spec = self._data.transactions.get(str(infno).strip().upper())
        if spec is None:
            raise UnknownTransactionError(str(infno), self.province)
        return spec

    def has_schema(self, infno: str) -> bool:
        return self.transaction(infno).has_schema

    def __contains__(self, infno: object) -> bool:
        return isinstance(infno, str) and infno.strip().upper() in self._data.transactions

    def __iter__(self) -> Iterator[TransactionSpec]:
        return iter(self._data.transactions.values())

    def __len__(self) -> int:
        return len(self._data.transactions)

    @property
    def infnos(self) -> tuple[str, ...]:
        return tuple(self._data.transactions)

    def wording(self, name: str) -> tuple[str, ...]:
        """The phrases (lower case) with which the platform words one kind of answer (``reversal_nothing_done``,
        ``nothing_to_revoke``, ``not_found``, ``sign_in_invalid`` …): the national list with the province's."""
        phrases = self._data.wording.get(name)
        if phrases is None:
            raise CatalogError(f"wording {name!r} is not in the catalog (known: {', '.join(sorted(self._data.wording))})")
        return phrases

    def says(self, name: str, text: str | None) -> bool:
        """Whether an err_msg contains one of the phrases of wording ``name``."""
        low = (text or "").lower()
        return any(phrase in low for phrase in self.wording(name))

    @property
    def wording_lists(self) -> Mapping[str, tuple[str, ...]]:
        return MappingProxyType(dict(self._data.wording))

    def dictionary(self, name: str) -> DictionarySpec:
        d = self._data.dictionaries.get(name)
        if d is None:
            raise CatalogError(f"dictionary {name!r} is not in the catalog")
        return d

    @property
    def dictionaries(self) -> Mapping[str, DictionarySpec]:
        return MappingProxyType(dict(self._data.dictionaries))

    # ------------------------------------------------------------------------------------------------ inputs

    def validate_input(
        self, infno: str, payload: Mapping[str, Any], *, unknown_fields: UnknownFields | None = None
    ) -> None:
        """Check ``payload`` (the envelope's ``input`` object) against the schema; raise on the first problem.

        Raises :class:`~yibao.envelope.errors.EnvelopeValidationError` (infno, path, rule, detail) — rules:
        ``required``, ``max_length N``, ``type <t>`` (``type decimal(16,2)`` …), ``precision decimal(p,s)``,
        ``scale decimal(p,s)``, ``dictionary <name>``, ``unknown field``, ``duplicate field``. Transactions
        without a schema are only checked for what can be checked untyped (no floats, string keys).
        """
        self.prepare_input(infno, payload, unknown_fields=unknown_fields)

    def normalize_input(self, infno: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` in the platform's format, without the required/length/dictionary checks.

        Keys lower case at every level (the spec's mixed-case node names as the schema spells them);
        date-time → ``yyyy-MM-dd HH:mm:ss`` (Asia/Shanghai), date → ``yyyy-MM-dd``; empty numeric → 0 (an
        ``int`` or a ``Decimal`` at the field's scale), empty string → ""; decimals → ``Decimal`` quantized to
        the field's scale (refused if that would round); ints stay ints; floats refused. Values that cannot be
        formatted raise EnvelopeValidationError. Raw-JSON transactions (no schema): keys lower-cased, dates
        formatted, floats refused, the rest untouched.
        """
        spec = self.transaction(infno)
        return prepare_input(spec, payload, validate=False, unknown="allow", dictionaries=self._data.dictionaries)

    def prepare_input(
        self, infno: str, payload: Mapping[str, Any], *, unknown_fields: UnknownFields | None = None
    ) -> dict[str, Any]:
        """:meth:`validate_input` and :meth:`normalize_input` in one walk: the formatted, checked input."""
        spec = self.transaction(infno)
        return prepare_input(
            spec,
            payload,
            validate=True,
            unknown=unknown_fields or self._unknown_fields,
            dictionaries=self._data.dictionaries,
        )

    # ------------------------------------------------------------------------------------------------ outputs

    def validate_output(self, infno: str, payload: Any) -> list[str]:
        """Warnings (path and rule, never values) where ``payload`` (the envelope's ``output``) departs from the
        catalogued schema. Lenient: platforms add fields, so extra fields are fine; never raises."""
        try:
            spec = self.transaction(infno)
        except CatalogError:
            return [f"{infno}: not in the catalog, output not checked"]
        return check_output(spec, payload, self._data.dictionaries)

    # ------------------------------------------------------------------------------------------------ spellings

    def read_output(self, infno: str, output: Any) -> Any:
        """An answer's ``output`` with every catalogued element under the name the code uses, whichever of its
        accepted spellings the platform chose (2401's ``result`` read as ``data`` …). Keys the catalog does not
        describe, and outputs of transactions without a schema, are returned as they are."""
        return to_names(self._fields(infno, "output"), output)

    def read_input(self, infno: str, payload: Any) -> Any:
        """A request's ``input`` as received (the simulator's side) with the catalogued keys under their names."""
        return to_names(self._fields(infno, "input"), payload)

    def write_output(self, infno: str, output: Any) -> Any:
        """An answer written with the names, spelled as this province's platform spells it (the simulator's
        side: 2401 answering under ``result`` where the province file says so)."""
        return to_wire(self._fields(infno, "output"), output)

    def _fields(self, infno: str, direction: str) -> Any:
        spec = self._data.transactions.get(str(infno).strip().upper())
        return None if spec is None else getattr(spec, direction)

    def __repr__(self) -> str:
        if self.platform != "national":
            return f"Catalog(platform={self.platform!r}, province={self.province!r}, transactions={len(self)})"
        return f"Catalog(province={self.province!r}, transactions={len(self)})"


@functools.lru_cache(maxsize=32)
def _load_cached(province: str | None, extra_dirs: tuple[Path, ...], platform: str = "national") -> CatalogData:
    if platform != "national":
        folder = platform_dir(platform)
        base = load_platform(folder)
        if province is None:
            return base
        return apply_province_file(base, find_province_file(province, extra_dirs, folder))
    base = _load_base_cached()
    if province is None:
        return base
    return apply_province_file(base, find_province_file(province, extra_dirs, DATA_DIR))


@functools.lru_cache(maxsize=1)
def _load_base_cached() -> CatalogData:
    return load_base(DATA_DIR)
