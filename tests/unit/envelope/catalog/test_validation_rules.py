"""Input validation: each rule, the path and rule named in the error, nothing sent on failure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import EnvelopeValidationError, PlatformError


def _fails(catalog: Catalog, infno: str, payload: Any, **kw: Any) -> EnvelopeValidationError:
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.validate_input(infno, payload, **kw)
    return info.value


def test_a_valid_input_passes(catalog: Catalog, input_2207: dict, input_2204: dict) -> None:
    catalog.validate_input("2207", input_2207)
    catalog.validate_input("2204", input_2204)


def test_the_error_names_infno_path_and_rule(catalog: Catalog, input_2207: dict) -> None:
    del input_2207["data"]["psn_no"]
    err = _fails(catalog, "2207", input_2207)
    assert (err.infno, err.path, err.rule) == ("2207", "data.psn_no", "required")
    assert str(err).startswith("2207: data.psn_no: required")
    assert isinstance(err, PlatformError) and err.code == "invalid_input"


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_required_rejects_missing_null_and_blank(catalog: Catalog, input_2207: dict, empty: Any) -> None:
    input_2207["data"]["mdtrt_id"] = empty
    assert _fails(catalog, "2207", input_2207).rule == "required"


def test_required_numeric_must_be_given_even_though_empty_numbers_format_as_zero(
    catalog: Catalog, input_2207: dict
) -> None:
    input_2207["data"]["medfee_sumamt"] = None
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.medfee_sumamt", "required")


def test_required_zero_amount_is_a_value(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["fulamt_ownpay_amt"] = 0
    catalog.validate_input("2207", input_2207)


def test_required_block_must_be_present(catalog: Catalog) -> None:
    err = _fails(catalog, "2207", {})
    assert (err.path, err.rule) == ("data", "required")


def test_required_array_needs_at_least_one_item(catalog: Catalog) -> None:
    err = _fails(catalog, "2204", {"feedetail": []})
    assert (err.path, err.rule) == ("feedetail", "required")


def test_optional_field_may_be_absent_or_empty(catalog: Catalog, input_2207: dict) -> None:
    del input_2207["data"]["invono"]
    catalog.validate_input("2207", input_2207)
    input_2207["data"]["invono"] = None
    catalog.validate_input("2207", input_2207)


def test_max_length_counts_characters(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["mdtrt_id"] = "9" * 31
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule, err.detail) == ("data.mdtrt_id", "max_length 30", "31 characters")
    input_2207["data"]["mdtrt_id"] = "就" * 30  # characters, not bytes
    catalog.validate_input("2207", input_2207)


def test_max_length_of_an_integer_counts_digits(catalog: Catalog) -> None:
    payload = {
        "mdtrtinfo": {"mdtrt_id": "m", "psn_no": "p", "med_type": "11", "begntime": "2024-01-02 08:00:00",
                      "geso_val": 123},
        "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00", "diag_name": "感冒",
                      "diag_dept": "内科", "dise_dor_no": "D1", "dise_dor_name": "医生",
                      "diag_time": "2024-01-02 08:00:00", "vali_flag": "1"}],
    }
    err = _fails(catalog, "2203", payload)
    assert (err.path, err.rule) == ("mdtrtinfo.geso_val", "max_length 2")


def test_type_decimal_refuses_floats(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["medfee_sumamt"] = 120.5
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.medfee_sumamt", "type decimal(16,2)")
    assert "float" in err.detail


def test_type_decimal_refuses_text_that_is_not_a_number(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["medfee_sumamt"] = "12,50"
    assert _fails(catalog, "2207", input_2207).rule == "type decimal(16,2)"


def test_decimal_scale_is_never_rounded_silently(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["medfee_sumamt"] = Decimal("120.505")
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.medfee_sumamt", "scale decimal(16,2)")


def test_decimal_scale_allows_trailing_zeros(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["medfee_sumamt"] = Decimal("120.5000")
    catalog.validate_input("2207", input_2207)


def test_decimal_precision_limits_the_integer_digits(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["medfee_sumamt"] = Decimal("1" + "0" * 14)  # 15 digits > 16-2
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.medfee_sumamt", "precision decimal(16,2)")
    input_2207["data"]["medfee_sumamt"] = Decimal("9" * 14 + ".99")
    input_2207["data"]["inscp_scp_amt"] = Decimal("0")
    catalog.validate_input("2207", input_2207)


def test_type_string_refuses_numbers_for_codes(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["insutype"] = 310
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.insutype", "type string")


def test_type_datetime_wants_the_platform_format(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][0]["fee_ocur_time"] = "2024-01-02T09:30:00"
    err = _fails(catalog, "2204", input_2204)
    assert (err.path, err.rule) == ("feedetail[0].fee_ocur_time", "type datetime")


def test_type_date_wants_a_calendar_date(catalog: Catalog) -> None:
    payload = {"data": {"insutype": "310", "clr_type": "11", "setl_optins": "440100", "stmt_begndate": "2024-02-30",
                        "stmt_enddate": "2024-03-01", "medfee_sumamt": 0, "fund_pay_sumamt": 0, "acct_pay": 0,
                        "fixmedins_setl_cnt": 0}}
    err = _fails(catalog, "3201", payload)
    assert (err.path, err.rule) == ("data.stmt_begndate", "type date")


def test_type_object_and_array_are_checked(catalog: Catalog) -> None:
    assert _fails(catalog, "2207", {"data": ["not", "an", "object"]}).rule == "type object"
    assert _fails(catalog, "2204", {"feedetail": {"feedetl_sn": "1"}}).rule == "type array"
    assert _fails(catalog, "2207", "data=...").rule == "type object"


def test_dictionary_rejects_a_code_outside_a_strict_list(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["insutype"] = "999"
    err = _fails(catalog, "2207", input_2207)
    assert (err.path, err.rule) == ("data.insutype", "dictionary insutype")


def test_dictionary_lets_regional_codes_through_an_open_list(catalog: Catalog, input_2207: dict) -> None:
    assert not catalog.dictionary("med_type").strict
    input_2207["data"]["med_type"] = "9901"
    catalog.validate_input("2207", input_2207)


def test_the_error_path_names_the_array_item(catalog: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][3]["det_item_fee_sumamt"] = Decimal("1.001")
    err = _fails(catalog, "2204", input_2204)
    assert err.path == "feedetail[3].det_item_fee_sumamt"
    assert str(err).startswith("2204: feedetail[3].det_item_fee_sumamt: scale decimal(16,2)")


def test_unknown_fields_are_allowed_by_default(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["exp_content"] = '{"er_flag": "0"}'
    catalog.validate_input("2207", input_2207)


def test_unknown_fields_are_rejected_when_asked(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["psn_nо"] = "typo with a Cyrillic o"
    err = _fails(catalog, "2207", input_2207, unknown_fields="reject")
    assert err.rule == "unknown field"
    strict = Catalog.load(unknown_fields="reject")
    with pytest.raises(EnvelopeValidationError, match="unknown field"):
        strict.validate_input("2207", input_2207)


def test_keys_are_matched_whatever_their_case(catalog: Catalog, input_2207: dict) -> None:
    upper = {"DATA": {k.upper(): v for k, v in input_2207["data"].items()}}
    catalog.validate_input("2207", upper)


def test_two_keys_differing_only_in_case_are_refused(catalog: Catalog, input_2207: dict) -> None:
    input_2207["data"]["PSN_NO"] = "other"
    assert _fails(catalog, "2207", input_2207).rule == "duplicate field"


def test_a_transaction_without_schema_is_callable_as_raw_json(schemaless: Catalog) -> None:
    schemaless.validate_input("7103", {"setlinfo": {"anything": "goes", "amount": Decimal("1.5")}})
    err = _fails(schemaless, "7103", {"setlinfo": {"amount": 1.5}})
    assert (err.path, err.rule) == ("setlinfo.amount", "type number")
    body = schemaless.prepare_input("7103", {"SETLINFO": {"Amount": Decimal("1.5"), "anything": "goes"}})
    assert body == {"setlinfo": {"amount": Decimal("1.5"), "anything": "goes"}}  # keys lower-cased, rest untouched


def test_prepare_input_validates_and_formats_in_one_walk(catalog: Catalog, input_2207: dict) -> None:
    body = catalog.prepare_input("2207", input_2207)
    assert body["data"]["medfee_sumamt"] == Decimal("120.50")
    del input_2207["data"]["psn_no"]
    with pytest.raises(EnvelopeValidationError):
        catalog.prepare_input("2207", input_2207)


def test_messages_never_contain_personal_values(catalog: Catalog, input_2207: dict, person: dict) -> None:
    long_certno = person["certno"] * 3
    input_2207["data"]["mdtrt_cert_no"] = long_certno
    err = _fails(catalog, "2207", input_2207)
    assert err.rule == "max_length 50"
    assert person["certno"] not in str(err) and person["certno"] not in repr(err.args)

    payload = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x", "psn_name": person["name"] * 20}}
    err = _fails(catalog, "1101", payload)
    assert err.path == "data.psn_name"
    assert person["name"] not in str(err)

    payload = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": 110101199003074518}}
    err = _fails(catalog, "1101", payload)
    assert err.rule == "type string"
    assert "110101199003074518" not in str(err)
