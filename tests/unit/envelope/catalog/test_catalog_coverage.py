"""Every national transaction is in the catalog, every field list in it is usable, and what is still missing is
said by name.

Issue 16 shares the 115 field lists between three branches (this one, the uploads one and the counter one); the
names the other two add are listed below, so this branch is green on its own and the merge shows, by name,
anything that is still missing.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

from support.catalog_samples import minimal_input
from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.typed import input_model, output_model

SPEC_TSV = Path("/work/shared/spec/national-transactions.tsv")
CATALOG = Catalog.load()
PROVINCES = sorted(Catalog.provinces())

#: field lists issue 16 gives to the other branches: uploads (1201, 13xx, 1901, 3301-3507, 4101-4701, 5101,
#: 7101-7105) and counter (备案 2501-2506, queries 5102 5202 5205 5206 5301 5302 5304). Empty after the merge.
ADDED_ELSEWHERE = frozenset(
    {"1201", *(str(n) for n in range(1301, 1320)), "1901", "3301", "3302", "3401", "3402", "3403",
     *(str(n) for n in range(3501, 3508)), "4101", "4201", "4301", "4302", "4401", "4402",
     *(str(n) for n in range(4501, 4507)), "4601", "4602", "4701", "5101", *(str(n) for n in range(7101, 7106)),
     "2501", "2501A", "2502", "2503", "2504", "2505", "2506", "5102", "5202", "5205", "5206", "5301", "5302",
     "5304"}
)


def _national_infnos() -> list[str]:
    if not SPEC_TSV.exists():
        pytest.skip("the shared spec folder is not mounted")
    with SPEC_TSV.open(encoding="utf-8") as fh:
        return [row["infno"] for row in csv.DictReader(fh, delimiter="\t")]


def test_every_national_transaction_of_the_spec_list_is_in_the_catalog() -> None:
    missing = [infno for infno in _national_infnos() if infno not in CATALOG]
    assert not missing, f"not in the catalog: {', '.join(missing)}"


def test_every_national_transaction_has_a_field_list_or_is_named_as_still_to_come() -> None:
    without = sorted(infno for infno in _national_infnos() if not CATALOG.has_schema(infno))
    unexpected = [infno for infno in without if infno not in ADDED_ELSEWHERE]
    assert not unexpected, f"no field list and nobody adds one: {', '.join(unexpected)}"
    if without:
        warnings.warn(f"{len(without)} transactions still without a field list (other branches of issue 16): "
                      f"{', '.join(without)}", stacklevel=1)


def test_the_names_left_to_other_branches_are_national_transactions() -> None:
    assert ADDED_ELSEWHERE <= set(_national_infnos())


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
