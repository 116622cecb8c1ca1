"""The national transaction catalog: every transaction, its field schemas and code lists — as data.

Facts about the platform change per province and per spec revision, so they live in YAML under ``data/``
(validated at load time by :mod:`.files`), never in code. This package reads them (:mod:`.loader`), applies a
province's overrides (:mod:`.overrides`), and formats/validates inputs and checks outputs against them
(:mod:`.formatting`, :mod:`.validation`) through one object, :class:`Catalog`. Typed pydantic models of the
chain transactions for services are in :mod:`yibao.envelope.catalog.models` (checked against the catalog by
the unit tests, so the two cannot drift).
"""

from .catalog import Catalog, UnknownTransactionError
from .fields import DictionarySpec, FieldSpec, FieldType, GatewayDefaults, TransactionSpec
from .validation import UnknownFields

__all__ = [
    "Catalog",
    "UnknownTransactionError",
    "TransactionSpec",
    "FieldSpec",
    "FieldType",
    "DictionarySpec",
    "GatewayDefaults",
    "UnknownFields",
]
