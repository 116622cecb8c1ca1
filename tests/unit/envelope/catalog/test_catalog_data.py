"""The catalog's data: every national transaction, the chain schemas, the dictionaries, retry/reversal facts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from yibao.envelope.catalog import Catalog, FieldType
from yibao.envelope.catalog.loader import walk_fields
from yibao.envelope.errors import CatalogError

SPEC_TSV = Path("/work/shared/spec/national-transactions.tsv")
BUILTIN_TSV_ROWS = 115
#: the chain transactions national-platform.md / issue 3 require schemas for
CHAIN_INFNOS = (
    "9001", "9002", "1101", "2001", "2201", "2202", "2203", "2204", "2205", "2206", "2207", "2208",
    "2301", "2302", "2303", "2304", "2305", "2401", "2402", "2403", "2404", "2405", "2601",
    "3201", "3202", "5203", "5204", "9101", "9102",
)


def _tsv_rows() -> list[dict[str, str]]:
    if not SPEC_TSV.exists():
        pytest.skip("the shared spec folder is not mounted")
    with SPEC_TSV.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_tsv_row_is_in_the_catalog_with_its_attributes(catalog: Catalog) -> None:
    rows = _tsv_rows()
    assert len(rows) == BUILTIN_TSV_ROWS
    for row in rows:
        spec = catalog.transaction(row["infno"])
        assert (spec.category, spec.subcategory, spec.name) == (row["category"], row["subcategory"], row["name"])
        assert (spec.mode, spec.priority, spec.direction) == (row["mode"], int(row["priority"]), row["direction"])
        assert spec.note == row["note"]


def test_the_catalog_holds_exactly_the_115_national_transactions(catalog: Catalog) -> None:
    assert len(catalog) == BUILTIN_TSV_ROWS
    assert len(set(catalog.infnos)) == BUILTIN_TSV_ROWS


def test_every_chain_transaction_has_an_input_and_an_output_schema(catalog: Catalog) -> None:
    for infno in CHAIN_INFNOS:
        spec = catalog.transaction(infno)
        assert catalog.has_schema(infno), infno
        assert spec.input, f"{infno} has no input elements"
        assert spec.output is not None, f"{infno} has no output schema"


def test_every_transaction_has_a_field_list(catalog: Catalog) -> None:
    assert [t.infno for t in catalog if not t.has_schema] == []


def test_a_transaction_without_a_schema_is_still_in_the_catalog(schemaless: Catalog) -> None:
    without = [t for t in schemaless if not t.has_schema]
    assert [t.infno for t in without] == ["7103"]
    assert all(t.input is None and t.output is None for t in without)
    assert len(schemaless) == BUILTIN_TSV_ROWS


def test_9102_answers_with_a_zip_stream_not_a_json_output(catalog: Catalog) -> None:
    spec = catalog.transaction("9102")
    assert spec.output_stream == "zip"
    assert spec.output == ()


@pytest.mark.parametrize("infno", ["1101", "1201", "1301", "1319", "1901", "2001", "5203", "5204", "5401", "9102"])
def test_queries_and_downloads_are_safe_to_retry(catalog: Catalog, infno: str) -> None:
    assert catalog.transaction(infno).retry_safe


@pytest.mark.parametrize("infno", ["2201", "2204", "2207", "2208", "2304", "2305", "2601", "3202", "9001", "9101"])
def test_transactions_that_change_platform_state_are_not_safe_to_retry(catalog: Catalog, infno: str) -> None:
    assert not catalog.transaction(infno).retry_safe


def test_reversible_by_2601_are_the_spec_list(catalog: Catalog) -> None:
    reversible = {t.infno for t in catalog if t.reversible}
    assert reversible == {"2207", "2208", "2304", "2305", "2102", "2103"}


def test_gateway_paths_default_to_the_national_endpoint_with_file_endpoints_apart(catalog: Catalog) -> None:
    assert catalog.transaction("2207").path == "/fsi/api/rsfComIfsService/callService"
    assert catalog.transaction("9101").path == "/fsi/api/fileupload/upload"
    assert catalog.transaction("9102").path == "/fsi/api/fileupload/download"


def test_api_style_gateways_get_one_name_and_path_per_infno(catalog: Catalog) -> None:
    spec = catalog.transaction("2207")
    assert spec.api_name == "hsa-fsi-2207"
    assert spec.api_path.endswith("hsa-fsi-2207")


def test_every_field_name_is_lower_case_and_typed(catalog: Catalog) -> None:
    for spec in catalog:
        for group in (spec.input or (), spec.output or ()):
            for path, f in walk_fields(group):
                assert f.name == f.name.lower(), f"{spec.infno} {path}"
                assert isinstance(f.type, FieldType)
                if f.type is FieldType.STRING:
                    assert f.max_length, f"{spec.infno} {path}"


def test_money_count_price_and_ratio_fields_have_the_spec_scales(catalog: Catalog) -> None:
    fee = catalog.transaction("2204").input_field("feedetail")
    assert fee is not None
    scales = {n: (fee.child(n).precision, fee.child(n).scale) for n in ("det_item_fee_sumamt", "cnt", "pric")}
    assert scales == {"det_item_fee_sumamt": (16, 2), "cnt": (16, 4), "pric": (16, 6)}
    setlinfo = catalog.transaction("2207").output_field("setlinfo")
    assert setlinfo is not None
    ratio = setlinfo.child("pool_prop_selfpay")
    assert ratio is not None and (ratio.precision, ratio.scale) == (5, 4)


def test_settlement_output_carries_setl_id_only_after_settling(catalog: Catalog) -> None:
    pre = catalog.transaction("2206").output_field("setlinfo")
    done = catalog.transaction("2207").output_field("setlinfo")
    assert pre is not None and done is not None
    assert pre.child("setl_id") is None
    setl_id = done.child("setl_id")
    assert setl_id is not None and setl_id.required and setl_id.max_length == 30


def test_nested_blocks_follow_national_platform_md(catalog: Catalog) -> None:
    assert [f.name for f in catalog.transaction("2203").input or ()] == ["mdtrtinfo", "diseinfo"]
    assert catalog.transaction("2204").input_field("feedetail").type is FieldType.ARRAY  # type: ignore[union-attr]
    assert [f.name for f in catalog.transaction("2207").output or ()] == ["setlinfo", "setldetail"]
    assert [f.name for f in catalog.transaction("1101").output or ()] == ["baseinfo", "insuinfo", "idetinfo"]
    assert catalog.transaction("9001").input_field("signin").key == "signIn"  # type: ignore[union-attr]


def test_every_dictionary_a_field_names_exists(catalog: Catalog) -> None:
    for spec in catalog:
        for group in (spec.input or (), spec.output or (), *spec.files.values()):
            for path, f in walk_fields(group):
                if f.dictionary:
                    assert f.dictionary in catalog.dictionaries, f"{spec.infno} {path}"


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("insutype", {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险", "340": "离休人员医疗保障", "510": "生育保险"}),
        ("med_type", {"11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "21": "普通住院"}),
        ("mdtrt_cert_type", {"01": "电子凭证令牌", "02": "居民身份证", "03": "社会保障卡"}),
        ("psn_setlway", {"01": "按项目结算", "02": "按定额结算"}),
        ("opter_type", {"1": "经办人", "2": "自助终端", "3": "移动终端"}),
    ],
)
def test_dictionaries_hold_the_national_codes(catalog: Catalog, name: str, codes: dict[str, str]) -> None:
    values = catalog.dictionary(name).values
    for code, label in codes.items():
        assert values[code] == label


@pytest.mark.parametrize(
    "name",
    ["psn_cert_type", "clr_type", "clr_way", "acct_used_flag", "mid_setl_flag", "refd_setl_flag", "dscg_way",
     "diag_type", "gend", "stmt_rslt", "vali_flag"],
)
def test_the_briefed_dictionaries_exist(catalog: Catalog, name: str) -> None:
    assert catalog.dictionary(name).values


def test_3202_files_describe_the_detail_and_result_rows(catalog: Catalog) -> None:
    files = catalog.transaction("3202").files
    assert [f.name for f in files["detail"]][:3] == ["setl_id", "mdtrt_id", "psn_no"]
    assert "stmt_rslt" in [f.name for f in files["result"]]


def test_an_unknown_infno_is_a_catalog_error_that_is_also_a_key_error(catalog: Catalog) -> None:
    with pytest.raises(CatalogError) as info:
        catalog.transaction("9999")
    assert isinstance(info.value, KeyError)
    assert "9999" in str(info.value)
    assert "9999" not in catalog and "2207" in catalog


def test_the_catalog_is_shared_not_reloaded() -> None:
    assert Catalog.load() is not None
    assert Catalog.load()._data is Catalog.load()._data


def test_the_prescription_centre_feedback_names_the_prescription_by_hi_rxno(catalog: Catalog) -> None:
    """7102/7103 come from the prescription centre (direction in) about a 7101 prescription: data.hi_rxno."""
    for infno in ("7102", "7103"):
        spec = catalog.transaction(infno)
        assert spec.direction == "in" and spec.output == ()
        data = {f.name: f for f in spec.input}["data"]
        hi_rxno = {f.name: f for f in data.fields}["hi_rxno"]
        assert (hi_rxno.required, hi_rxno.max_length) == (True, 30)
    review = {f.name: f for f in catalog.transaction("7102").input[0].fields}
    assert review["rx_chk_stas_codg"].required and review["phar_cert_type"].dictionary == "psn_cert_type"
    bought = {f.name: f for f in catalog.transaction("7103").input}["seltdelts"]
    assert bought.type == "array" and bought.assumed
    assert {f.name: (f.precision, f.scale) for f in bought.fields}["pric"] == (16, 4)
