"""5201 就诊信息查询 and 5303 在院信息查询 in the catalog: the queries that resolve a lost 2201/2401 answer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from yibao.envelope.catalog import Catalog, FieldType
from yibao.envelope.catalog.typed import input_model, output_model
from yibao.envelope.errors import EnvelopeValidationError

WINDOW = {"begntime": "2024-05-01 00:00:00", "endtime": "2024-05-01 23:59:59"}


@pytest.mark.parametrize("infno", ["5201", "5303"])
def test_visit_queries_are_safe_to_retry_and_not_reversible(catalog: Catalog, infno: str) -> None:
    spec = catalog.transaction(infno)
    assert spec.retry_safe and not spec.reversible and spec.has_schema


@pytest.mark.parametrize("infno", ["5201", "5303"])
def test_visit_queries_name_their_sources(catalog: Catalog, infno: str) -> None:
    assert any("[medical]" in s for s in catalog.transaction(infno).sources)


def test_5201_asks_for_a_person_and_a_time_window(catalog: Catalog) -> None:
    data = catalog.transaction("5201").input_field("data")
    assert data is not None
    required = {f.name for f in data.fields if f.required}
    assert required == {"psn_no", "begntime", "endtime"}
    assert {f.name for f in data.fields} == required | {"med_type", "mdtrt_id"}
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.validate_input("5201", {"data": {"psn_no": "P1", "begntime": WINDOW["begntime"]}})
    assert (info.value.path, info.value.rule) == ("data.endtime", "required")


def test_5201_answers_a_list_of_visits_under_mdtrtinfo(catalog: Catalog) -> None:
    (node,) = catalog.transaction("5201").output or ()
    assert (node.name, node.type) == ("mdtrtinfo", FieldType.ARRAY)
    ipt_otp_no, mdtrt_id = node.child("ipt_otp_no"), node.child("mdtrt_id")
    assert ipt_otp_no is not None and ipt_otp_no.max_length == 30
    assert mdtrt_id is not None and mdtrt_id.required
    vali_flag = node.child("vali_flag")
    assert vali_flag is not None and vali_flag.dictionary == "vali_flag" and not vali_flag.required


def test_5303_lists_the_institution_when_psn_no_is_left_out(catalog: Catalog) -> None:
    catalog.validate_input("5303", {"data": dict(WINDOW)})
    catalog.validate_input("5303", {"data": {"psn_no": "P1", **WINDOW}})


def test_5303_answers_open_admissions_under_data(catalog: Catalog) -> None:
    (node,) = catalog.transaction("5303").output or ()
    assert (node.name, node.type) == ("data", FieldType.ARRAY)
    assert {"mdtrt_id", "psn_no", "begndate", "med_type", "ipt_otp_no", "endtime"} <= {f.name for f in node.fields}


def test_model_built_query_inputs_pass_the_catalog(catalog: Catalog) -> None:
    begin = dt.datetime(2024, 5, 1, 0, 0, 0)
    end = dt.datetime(2024, 5, 1, 23, 59, 59)
    q5201 = input_model(catalog, "5201").model_validate(
        {"data": {"psn_no": "P1", "begntime": begin, "endtime": end, "mdtrt_id": "M1"}}).to_input()  # type: ignore[attr-defined]
    assert catalog.prepare_input("5201", q5201, unknown_fields="reject")["data"]["begntime"] == WINDOW["begntime"]
    q5303 = input_model(catalog, "5303").model_validate({"data": {"begntime": begin, "endtime": end}}).to_input()  # type: ignore[attr-defined]
    assert catalog.prepare_input("5303", q5303, unknown_fields="reject")["data"] == WINDOW


def test_5201_output_reads_an_open_visit_and_a_cancelled_one(catalog: Catalog) -> None:
    row = {"mdtrt_id": "M1", "psn_no": "P1", "psn_cert_type": "01", "certno": "c", "psn_name": "n", "gend": "1",
           "insutype": "310", "psn_type": "11", "cvlserv_flag": "0", "begntime": "2024-05-01 09:00:00",
           "endtime": "", "med_type": "12", "ipt_otp_no": "MZ1", "age": "44.0", "ipt_days": ""}
    out: Any = output_model(catalog, "5201").model_validate(
        {"mdtrtinfo": [row, {**row, "mdtrt_id": "M2", "vali_flag": "0"}]})
    first, second = out.mdtrtinfo
    assert first.endtime is None and first.ipt_days is None and first.age == Decimal("44.0")
    assert first.begntime.utcoffset() == dt.timedelta(hours=8)
    assert first.vali_flag is None and second.vali_flag == "0"


def test_5303_output_reads_the_discharge_time_when_there_is_one(catalog: Catalog) -> None:
    row = {"mdtrt_id": "M1", "psn_no": "P1", "psn_cert_type": "01", "certno": "c", "psn_name": "n", "gend": "1",
           "age": 44, "insutype": "310", "begndate": "2024-05-01", "med_type": "21", "ipt_otp_no": "ZY1",
           "endtime": ""}
    out: Any = output_model(catalog, "5303").model_validate(
        {"data": [row, {**row, "mdtrt_id": "M2", "endtime": "2024-05-05 10:00:00"}]})
    assert out.data[0].endtime is None
    assert out.data[1].endtime == dt.datetime(2024, 5, 5, 10, tzinfo=out.data[1].endtime.tzinfo)
