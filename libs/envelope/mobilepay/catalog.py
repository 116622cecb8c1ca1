"""The mobile-pay catalog: 6201 … 6401 as data (``data/transactions.yaml``), read by the national catalog's loader.

The chain engine asks a catalog how a lost answer of each transaction is resolved
(:attr:`~yibao.envelope.catalog.fields.TransactionSpec.resolution`) and how the platform words its answers
(:meth:`~yibao.envelope.catalog.Catalog.says`). Mobile pay's numbers mean other things in the national catalog
(6201/6202 are the platform's calls to a pharmacy there), so mobile pay has a catalog of its own, in the same
file format, loaded by the same loader::

    catalog = load_catalog()
    catalog.transaction("6202").resolution   # "query" (6301), never a 2601: nothing is reversible here
    catalog.says("repeat_upload", err_msg)
"""

from __future__ import annotations

import functools
from pathlib import Path

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.loader import load_base

__all__ = ["DATA_DIR", "load_catalog", "INFNOS"]

#: the packaged data files
DATA_DIR = Path(__file__).resolve().parent / "data"

#: the mobile-pay transactions the bridge sends
INFNOS = ("6201", "6202", "6203", "6301", "6401")


@functools.lru_cache(maxsize=4)
def _load(data_dir: Path) -> Catalog:
    return Catalog(load_base(data_dir))


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """The mobile-pay catalog (cached, immutable); ``data_dir`` replaces the packaged data (a province's own)."""
    return _load((data_dir or DATA_DIR).resolve())
