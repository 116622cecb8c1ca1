"""The national transaction catalog: every transaction, its field schemas and code lists — as data.

Facts about the platform change per province and per spec revision, so they live in YAML under ``data/``
(validated at load time by :mod:`.files`), never in code. This package reads them (:mod:`.loader`), applies a
province's overrides (:mod:`.overrides`), and formats/validates inputs and checks outputs against them
(:mod:`.formatting`, :mod:`.validation`) through one object, :class:`Catalog`. It also holds how a lost answer of
each transaction is resolved (``lost_answers``: :attr:`TransactionSpec.resolution`) and how the platform words the
answers the bridge acts on (``wording``: :meth:`Catalog.says`). Typed pydantic models of any transaction are
generated from the data (:mod:`.typed`), never written by hand.
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
