"""The pydantic models and the YAML catalog are one source of truth: every model field is checked against it."""

from __future__ import annotations

import datetime as dt
import types
import typing
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from yibao.envelope.catalog import Catalog, FieldSpec, FieldType
from yibao.envelope.catalog.models import (
    FILE_ROW_MODELS,
    INPUT_MODELS,
    OUTPUT_MODELS,
    Feedetail2204,
    In2204,
    In2207,
    In2207Data,
    Out2207,
    Wire,
)

_PY_TYPE = {
    FieldType.STRING: str,
    FieldType.INTEGER: int,
    FieldType.DECIMAL: Decimal,
    FieldType.DATE: dt.date,
    FieldType.DATETIME: dt.datetime,
    FieldType.BYTES: bytes,
}


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, annotation
        return args[0]
    return annotation


def _wire_and_type(annotation: Any, metadata: list[Any]) -> tuple[Wire | None, Any]:
    """The Wire marker and the bare Python type of a field, wherever pydantic left them."""
    wires = [m for m in metadata if isinstance(m, Wire)]
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        wires += [m for m in extra if isinstance(m, Wire)]
        annotation = base
    return (wires[0] if wires else None), annotation


def _compare(model: type[BaseModel], fields: tuple[FieldSpec, ...], where: str) -> list[str]:
    problems: list[str] = []
    by_key = {f.key: f for f in fields}
    model_keys = {(info.alias or name): (name, info) for name, info in model.model_fields.items()}
    for key in sorted(set(by_key) ^ set(model_keys)):
        side = "catalog only" if key in by_key else "model only"
        problems.append(f"{where}.{key}: {side}")
    for key, spec in by_key.items():
        if key not in model_keys:
            continue
        _, info = model_keys[key]
        here = f"{where}.{key}"
        if info.is_required() != spec.required:
            problems.append(f"{here}: required {info.is_required()} in the model, {spec.required} in the catalog")
        wire, py = _wire_and_type(info.annotation, list(info.metadata))
        if spec.type in (FieldType.OBJECT, FieldType.ARRAY):
            if spec.type is FieldType.ARRAY:
                if typing.get_origin(py) is not list:
                    problems.append(f"{here}: the catalog has an array, the model {py}")
                    continue
                (py,) = typing.get_args(py)
            if not (isinstance(py, type) and issubclass(py, BaseModel)):
                problems.append(f"{here}: the catalog has an {spec.type.value}, the model {py}")
                continue
            problems += _compare(py, spec.fields, here)
            continue
        if py is not _PY_TYPE[spec.type]:
            problems.append(f"{here}: python type {py} for catalog type {spec.type.value}")
        if wire is None:
            problems.append(f"{here}: no Wire marker")
            continue
        claimed = (wire.type, wire.max_length, wire.precision, wire.scale)
        actual = (spec.type.value, spec.max_length, spec.precision, spec.scale)
        if claimed != actual:
            problems.append(f"{here}: model claims {claimed}, catalog has {actual}")
    return problems


def test_every_transaction_with_a_schema_has_input_and_output_models(catalog: Catalog) -> None:
    with_schema = {t.infno for t in catalog if t.has_schema}
    assert set(INPUT_MODELS) == with_schema
    assert set(OUTPUT_MODELS) == with_schema - {"9102"}  # 9102 answers with a zip stream


@pytest.mark.parametrize("infno", sorted(INPUT_MODELS))
def test_input_model_agrees_with_the_catalog(catalog: Catalog, infno: str) -> None:
    spec = catalog.transaction(infno)
    assert spec.input is not None
    assert _compare(INPUT_MODELS[infno], spec.input, f"{infno} input") == []


@pytest.mark.parametrize("infno", sorted(OUTPUT_MODELS))
def test_output_model_agrees_with_the_catalog(catalog: Catalog, infno: str) -> None:
    spec = catalog.transaction(infno)
    assert spec.output is not None
    assert _compare(OUTPUT_MODELS[infno], spec.output, f"{infno} output") == []


@pytest.mark.parametrize(("infno", "name"), sorted(FILE_ROW_MODELS))
def test_file_row_model_agrees_with_the_catalog(catalog: Catalog, infno: str, name: str) -> None:
    rows = catalog.transaction(infno).files[name]
    assert _compare(FILE_ROW_MODELS[(infno, name)], rows, f"{infno} files.{name}") == []
    assert list(FILE_ROW_MODELS[(infno, name)].model_fields) == [f.name for f in rows]  # column order


def test_the_drift_check_notices_a_difference(catalog: Catalog) -> None:
    class Drifted(BaseModel):
        feedetail: list[Feedetail2204]
        extra: str

    spec = catalog.transaction("2204").input
    assert spec is not None
    assert _compare(Drifted, spec, "2204 input") == ["2204 input.extra: model only"]


def test_a_model_built_input_passes_the_catalog(catalog: Catalog, input_2207: dict) -> None:
    body = In2207(data=In2207Data(**input_2207["data"])).to_input()
    prepared = catalog.prepare_input("2207", body, unknown_fields="reject")
    assert prepared["data"]["medfee_sumamt"] == Decimal("120.50")


def test_model_datetimes_reach_the_wire_in_shanghai_time(catalog: Catalog, input_2204: dict) -> None:
    line = dict(input_2204["feedetail"][0], fee_ocur_time=dt.datetime(2024, 1, 2, 1, 30, tzinfo=dt.timezone.utc))
    body = In2204(feedetail=[Feedetail2204(**line)]).to_input()
    assert catalog.prepare_input("2204", body)["feedetail"][0]["fee_ocur_time"] == "2024-01-02 09:30:00"


def test_input_models_refuse_floats(input_2207: dict) -> None:
    with pytest.raises(ValidationError, match="floats are refused"):
        In2207Data(**dict(input_2207["data"], medfee_sumamt=120.5))


def test_input_models_refuse_unknown_fields(input_2207: dict) -> None:
    with pytest.raises(ValidationError):
        In2207Data(**dict(input_2207["data"], psn_nm="typo"))


def test_output_models_read_money_as_decimal_and_times_in_shanghai() -> None:
    setlinfo = {
        "mdtrt_id": "m", "setl_id": "s", "psn_no": "p", "psn_name": "n", "psn_cert_type": "01", "certno": "c",
        "gend": "", "psn_type": "11", "cvlserv_flag": "0", "setl_time": "2024-01-02 09:30:00", "med_type": "11",
        "medfee_sumamt": "120.50", "fulamt_ownpay_amt": "0", "overlmt_selfpay": 0, "preselfpay_amt": 0,
        "inscp_scp_amt": "120.50", "act_pay_dedc": "", "hifp_pay": "84.35", "pool_prop_selfpay": "0.7",
        "cvlserv_pay": 0, "hifes_pay": 0, "hifmi_pay": 0, "hifob_pay": 0, "maf_pay": 0, "oth_pay": 0,
        "fund_pay_sumamt": "84.35", "psn_part_amt": "36.15", "acct_pay": "36.15", "psn_cash_pay": 0,
        "hosp_part_amt": 0, "balc": "1000.00", "acct_mulaid_pay": 0, "medins_setl_id": "H44010100001202401020930001234",
        "clr_type": "11", "new_field_from_the_platform": "kept",
    }
    out = Out2207.model_validate({"setlinfo": setlinfo, "setldetail": [
        {"fund_pay_type": "310100", "inscp_scp_amt": "120.50", "crt_payb_lmt_amt": "0", "fund_payamt": "84.35"}]})
    info = out.setlinfo
    assert info.medfee_sumamt == Decimal("120.50") and isinstance(info.hifp_pay, Decimal)
    assert info.medfee_sumamt == info.fund_pay_sumamt + info.psn_part_amt
    assert info.setl_time.utcoffset() == dt.timedelta(hours=8)
    assert info.act_pay_dedc is None and info.gend == ""
    assert out.setldetail[0].fund_payamt == Decimal("84.35")


def test_model_errors_never_echo_personal_values(person: dict, input_2207: dict) -> None:
    data = dict(input_2207["data"], mdtrt_cert_no=12345)  # wrong type, a value that must not be echoed
    data["psn_no"] = person["certno"]
    data["medfee_sumamt"] = person["name"]
    with pytest.raises(ValidationError) as info:
        In2207Data(**data)
    assert person["name"] not in str(info.value)
    assert person["certno"] not in str(info.value)
