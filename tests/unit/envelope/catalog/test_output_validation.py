"""validate_output: lenient — warnings (path and rule, never values), never an exception."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from yibao.envelope.catalog import Catalog


def _out_2201(**data: Any) -> dict[str, Any]:
    return {"data": {"mdtrt_id": "440000000123", "psn_no": "p1", "ipt_otp_no": "O1", **data}}


def test_a_matching_output_has_no_warnings(catalog: Catalog) -> None:
    assert catalog.validate_output("2201", _out_2201()) == []


def test_extra_fields_the_platform_adds_are_fine(catalog: Catalog) -> None:
    out = _out_2201(exp_content="x")
    out["warn_info"] = {"anything": 1}
    assert catalog.validate_output("2201", out) == []


def test_a_missing_required_field_is_a_warning(catalog: Catalog) -> None:
    out = _out_2201()
    del out["data"]["mdtrt_id"]
    assert catalog.validate_output("2201", out) == ["2201 output.data.mdtrt_id: required (missing)"]


def test_type_length_scale_and_dictionary_problems_are_warnings(catalog: Catalog) -> None:
    out = {"stmtinfo": {"setl_optins": "4401001", "stmt_rslt": "7", "stmt_rslt_dscr": 5}}
    warnings = catalog.validate_output("3201", out)
    assert "3201 output.stmtinfo.setl_optins: max_length 6 (7 characters)" in warnings
    assert "3201 output.stmtinfo.stmt_rslt: dictionary stmt_rslt (code not in the list)" in warnings
    assert "3201 output.stmtinfo.stmt_rslt_dscr: type string (got int)" in warnings

    detail = [{"fund_pay_type": "310100", "inscp_scp_amt": "1.234", "crt_payb_lmt_amt": 0, "fund_payamt": "x"}]
    warnings = catalog.validate_output("2207", {"setldetail": detail})
    assert "2207 output.setldetail[0].inscp_scp_amt: scale decimal(16,2)" in warnings
    assert "2207 output.setldetail[0].fund_payamt: type decimal(16,2) (not a number)" in warnings


def test_numbers_parsed_as_floats_are_tolerated_in_outputs(catalog: Catalog) -> None:
    detail = [{"fund_pay_type": "310100", "inscp_scp_amt": 12.5, "crt_payb_lmt_amt": 0, "fund_payamt": 12.5}]
    warnings = catalog.validate_output("2207", {"setlinfo": None, "setldetail": detail})
    assert not [w for w in warnings if "setldetail" in w]


@pytest.mark.parametrize("garbage", [None, "not json", 12, ["a"], {"setlinfo": "x", "setldetail": {"a": 1}}])
def test_garbage_never_raises(catalog: Catalog, garbage: Any) -> None:
    assert isinstance(catalog.validate_output("2207", garbage), list)


def test_an_unknown_infno_is_a_warning_not_an_error(catalog: Catalog) -> None:
    assert catalog.validate_output("9999", {}) == ["9999: not in the catalog, output not checked"]


def test_outputs_without_schema_are_not_checked(catalog: Catalog) -> None:
    assert catalog.validate_output("6101", {"whatever": 1}) == []


def test_warnings_never_contain_personal_values(catalog: Catalog, person: dict) -> None:
    out = {"baseinfo": {"psn_no": "p", "psn_cert_type": "01", "certno": person["certno"] * 3,
                        "psn_name": person["name"] * 30, "gend": "1", "age": Decimal("34.5")}}
    warnings = catalog.validate_output("1101", out)
    assert any("baseinfo.certno" in w for w in warnings)
    assert any("baseinfo.psn_name" in w for w in warnings)
    joined = "\n".join(warnings)
    assert person["certno"] not in joined and person["name"] not in joined
