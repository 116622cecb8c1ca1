"""Typed models are generated from the catalog data: the same fields, types and spellings as the data, for every
transaction with a schema — so there is nothing hand-written to drift from it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.typed import input_model, output_model

CATALOG = Catalog.load()


@pytest.mark.parametrize("infno", [t.infno for t in CATALOG if t.has_schema])
def test_every_schema_has_its_input_and_output_model_with_the_catalogs_fields(infno: str) -> None:
    spec = CATALOG.transaction(infno)
    inp, out = input_model(CATALOG, infno), output_model(CATALOG, infno)
    assert set(inp.model_fields) == {f.name for f in spec.input or ()}
    assert set(out.model_fields) == {f.name for f in spec.output or ()}


def test_output_models_read_money_as_decimal_and_times_in_shanghai() -> None:
    out: Any = output_model(CATALOG, "2207").model_validate(
        {"setlinfo": {"setl_id": "S1", "medfee_sumamt": "120.50", "setl_time": "2026-03-02 09:00:00"}})
    assert out.setlinfo.medfee_sumamt == Decimal("120.50")
    assert out.setlinfo.setl_time.utcoffset() == dt.timedelta(hours=8)


def test_output_models_keep_what_the_platform_adds_and_read_blanks_as_absent() -> None:
    out: Any = output_model(CATALOG, "2207").model_validate(
        {"setlinfo": {"setl_id": "S1", "medfee_sumamt": "", "local_field": "x"}})
    assert out.setlinfo.medfee_sumamt is None and out.setlinfo.model_extra == {"local_field": "x"}


def test_input_models_require_what_the_catalog_requires_and_refuse_floats() -> None:
    model = input_model(CATALOG, "2207")
    with pytest.raises(ValidationError):
        model.model_validate({"data": {"psn_no": "P1"}})
    with pytest.raises(ValidationError, match="floats are refused"):
        model.model_validate({"data": {"medfee_sumamt": 1.5}})


def test_input_models_use_the_specs_mixed_case_node_names() -> None:
    body = input_model(CATALOG, "9001").model_validate(
        {"signIn": {"opter_no": "OP01", "mac": "00", "ip": "127.0.0.1"}}).to_input()  # type: ignore[attr-defined]
    assert CATALOG.prepare_input("9001", body)["signIn"]["opter_no"] == "OP01"


def test_a_province_gets_its_own_models() -> None:
    guangdong = Catalog.load("guangdong")
    row: Any = input_model(guangdong, "2203A").model_fields["mdtrtinfo"].annotation
    assert "exp_content" in row.model_fields  # the province's extension element of 2203's layout
