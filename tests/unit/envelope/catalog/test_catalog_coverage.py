"""Every national transaction is in the catalog, has a field list, and every field list in it is usable.

The 115 field lists of issue 16 are all there (the last two, 7102/7103, are the prescription centre's feedback to
the hospital): a transaction without one is a failure, named by infno.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from support.catalog_samples import minimal_input
from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.typed import input_model, output_model

SPEC_TSV = Path("/work/shared/spec/national-transactions.tsv")
CATALOG = Catalog.load()
PROVINCES = sorted(Catalog.provinces())


def _national_infnos() -> list[str]:
    if not SPEC_TSV.exists():
        pytest.skip("the shared spec folder is not mounted")
    with SPEC_TSV.open(encoding="utf-8") as fh:
        return [row["infno"] for row in csv.DictReader(fh, delimiter="\t")]


def test_every_national_transaction_of_the_spec_list_is_in_the_catalog() -> None:
    missing = [infno for infno in _national_infnos() if infno not in CATALOG]
    assert not missing, f"not in the catalog: {', '.join(missing)}"


def test_every_national_transaction_has_a_field_list() -> None:
    for catalog in (CATALOG, *(Catalog.load(p) for p in PROVINCES)):
        without = sorted(infno for infno in _national_infnos() if not catalog.has_schema(infno))
        where = catalog.province or "national"
        assert not without, f"{where}: national transactions without a field list: {', '.join(without)}"


@pytest.mark.parametrize("province", [None, *PROVINCES])
@pytest.mark.parametrize("infno", sorted(t.infno for t in CATALOG if t.has_schema))
def test_every_field_list_accepts_its_least_input_and_builds_its_models(province: str | None, infno: str) -> None:
    catalog = Catalog.load(province)
    body = catalog.prepare_input(infno, minimal_input(catalog, infno))  # required, lengths, types, dictionaries
    model = input_model(catalog, infno)
    typed = model.model_validate(body, by_alias=True).to_input()  # type: ignore[attr-defined]
    assert set(body) <= set(typed)  # the wire keys, as the catalog writes them (optional lists come as [])
    output_model(catalog, infno).model_validate({})  # an answer may leave anything out


@pytest.mark.parametrize("infno", sorted(t.infno for t in CATALOG if t.has_schema))
def test_every_field_list_names_its_sources(infno: str) -> None:
    assert CATALOG.transaction(infno).sources, f"{infno}: the schema file lists no sources"
