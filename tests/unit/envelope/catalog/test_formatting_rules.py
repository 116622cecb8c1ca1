"""normalize_input: the platform's formatting rules, one per test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.formatting import format_value
from yibao.envelope.errors import EnvelopeValidationError

UTC = dt.timezone.utc


def test_keys_are_lower_case_at_every_level(catalog: Catalog, input_2204: dict) -> None:
    shouting = {"FeeDetail": [{k.upper(): v for k, v in line.items()} for line in input_2204["feedetail"]]}
    body = catalog.normalize_input("2204", shouting)
    assert list(body) == ["feedetail"]
    assert all(k == k.lower() for line in body["feedetail"] for k in line)


def test_keys_of_raw_json_transactions_are_lower_cased_too(catalog: Catalog) -> None:
    body = catalog.normalize_input("6101", {"SetlInfo": {"PSN_NO": "p", "Items": [{"A": 1}]}})
    assert body == {"setlinfo": {"psn_no": "p", "items": [{"a": 1}]}}


def test_the_specs_own_mixed_case_node_names_are_kept(catalog: Catalog) -> None:
    body = catalog.normalize_input("9001", {"signin": {"OPTER_NO": "op1", "ip": "10.0.0.1"}})
    assert body == {"signIn": {"opter_no": "op1", "ip": "10.0.0.1"}}


def test_datetimes_are_formatted_in_shanghai_time(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][0]["fee_ocur_time"] = dt.datetime(2024, 1, 2, 1, 30, 0, tzinfo=UTC)
    body = catalog.normalize_input("2204", input_2204)
    assert body["feedetail"][0]["fee_ocur_time"] == "2024-01-02 09:30:00"


def test_naive_datetimes_are_read_as_shanghai_time(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][0]["fee_ocur_time"] = dt.datetime(2024, 1, 2, 9, 30, 0)
    body = catalog.normalize_input("2204", input_2204)
    assert body["feedetail"][0]["fee_ocur_time"] == "2024-01-02 09:30:00"


def test_a_bare_date_is_refused_for_a_datetime_field(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][0]["fee_ocur_time"] = dt.date(2024, 1, 2)
    with pytest.raises(EnvelopeValidationError, match="type datetime"):
        catalog.normalize_input("2204", input_2204)


def test_dates_are_formatted_yyyy_mm_dd(catalog: Catalog) -> None:
    late_evening_utc = dt.datetime(2024, 3, 31, 17, 0, tzinfo=UTC)  # already 1 April in Shanghai
    body = catalog.normalize_input("3201", {"data": {"stmt_begndate": dt.date(2024, 3, 1),
                                                     "stmt_enddate": late_evening_utc}})
    assert body["data"] == {"stmt_begndate": "2024-03-01", "stmt_enddate": "2024-04-01"}


def test_dates_in_raw_json_are_formatted_as_well(catalog: Catalog) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    body = catalog.normalize_input("6101", {"a": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=shanghai),
                                            "b": dt.date(2024, 1, 2)})
    assert body == {"a": "2024-01-02 03:04:05", "b": "2024-01-02"}


def test_empty_numeric_becomes_zero_of_the_right_kind(catalog: Catalog) -> None:
    body = catalog.normalize_input("3201", {"data": {"medfee_sumamt": None, "fixmedins_setl_cnt": ""}})
    assert body["data"]["medfee_sumamt"] == Decimal("0.00")
    assert str(body["data"]["medfee_sumamt"]) == "0.00"
    assert body["data"]["fixmedins_setl_cnt"] == 0 and type(body["data"]["fixmedins_setl_cnt"]) is int


def test_empty_string_becomes_empty_text(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["invono"] = None
    body = catalog.normalize_input("2207", input_2207)
    assert body["data"]["invono"] == ""


def test_absent_optional_fields_stay_absent(catalog: Catalog, input_2207: dict) -> None:
    del input_2207["data"]["invono"]
    assert "invono" not in catalog.normalize_input("2207", input_2207)["data"]


@pytest.mark.parametrize(
    ("field", "given", "wire"),
    [
        ("det_item_fee_sumamt", Decimal("12.3"), "12.30"),
        ("cnt", Decimal("2"), "2.0000"),
        ("pric", "6.17", "6.170000"),
        ("det_item_fee_sumamt", 5, "5.00"),
    ],
)
def test_decimals_are_quantized_to_the_field_scale(
    catalog: Catalog, input_2204: dict, field: str, given: object, wire: str
) -> None:
    input_2204["feedetail"][0][field] = given
    value = catalog.normalize_input("2204", input_2204)["feedetail"][0][field]
    assert isinstance(value, Decimal)
    assert str(value) == wire


def test_ratio_fields_get_four_places(catalog: Catalog) -> None:
    # no chain *input* carries a ratio: format a ratio field's value directly
    setlinfo = catalog.transaction("2207").output_field("setlinfo")
    assert setlinfo is not None
    assert str(format_value(setlinfo.child("pool_prop_selfpay"), Decimal("0.8"))) == "0.8000"  # type: ignore[arg-type]


def test_ints_stay_ints(catalog: Catalog) -> None:
    body = catalog.normalize_input("3201", {"data": {"fixmedins_setl_cnt": "42"}})
    assert body["data"]["fixmedins_setl_cnt"] == 42 and type(body["data"]["fixmedins_setl_cnt"]) is int


def test_floats_are_refused(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][1]["cnt"] = 2.0
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.normalize_input("2204", input_2204)
    assert info.value.path == "feedetail[1].cnt"
    assert "float" in info.value.detail


def test_normalize_does_not_check_required_fields(catalog: Catalog) -> None:
    assert catalog.normalize_input("2207", {"data": {"psn_no": "p"}}) == {"data": {"psn_no": "p"}}


def test_normalize_returns_a_new_object(catalog: Catalog, input_2207: dict) -> None:
    body = catalog.normalize_input("2207", input_2207)
    body["data"]["psn_no"] = "changed"
    assert input_2207["data"]["psn_no"] != "changed"
