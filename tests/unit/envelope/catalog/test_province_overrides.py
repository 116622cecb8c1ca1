"""Province overrides: what a province file can do, and every bad file refused with the file named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.loader import load_base
from yibao.envelope.catalog.overrides import apply_province_file
from yibao.envelope.errors import CatalogError, EnvelopeValidationError

WriteProvince = Callable[[str, str], Path]


# ---------------------------------------------------------------------------------------------- the example file

def test_2203a_is_2203s_layout_with_the_extension_element(catalog: Catalog, guangdong: Catalog) -> None:
    spec = guangdong.transaction("2203A")
    base = guangdong.transaction("2203")
    assert spec.has_schema and catalog.has_schema("2203A")
    mdtrtinfo = spec.input_field("mdtrtinfo")
    assert mdtrtinfo is not None and mdtrtinfo.child("exp_content") is not None
    assert base.input_field("mdtrtinfo").child("exp_content") is None  # type: ignore[union-attr]
    assert spec.input_field("diseinfo") == base.input_field("diseinfo")


def test_province_renames_the_gateway_path(catalog: Catalog, guangdong: Catalog) -> None:
    assert catalog.transaction("2207").path == "/fsi/api/rsfComIfsService/callService"
    assert guangdong.transaction("2207").path == "/ebus/gdyb_inf/poc/hsa/hgs/2207"
    assert guangdong.transaction("9101").path == "/ebus/gdyb_inf/poc/hsa/hgs/9101"


def test_province_changes_a_field_length(catalog: Catalog, guangdong: Catalog, input_2204: dict) -> None:
    input_2204["feedetail"][0]["med_list_codg"] = "X" * 55
    with pytest.raises(EnvelopeValidationError, match="max_length 50"):
        catalog.validate_input("2204", input_2204)
    guangdong.validate_input("2204", input_2204)


def test_province_adds_dictionary_values(catalog: Catalog, guangdong: Catalog) -> None:
    assert "9903" not in catalog.dictionary("med_type").values
    assert guangdong.dictionary("med_type").values["9903"] == "意外伤害门诊"
    assert guangdong.dictionary("med_type").values["11"] == "普通门诊"


def test_the_national_catalog_is_untouched_by_a_province(catalog: Catalog) -> None:
    Catalog.load("guangdong")
    assert catalog.province is None
    assert Catalog.load().transaction("2204").input_field("feedetail").child("med_list_codg").max_length == 50  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- the mechanism

def test_province_file_from_extra_dirs_is_used(write_province: WriteProvince) -> None:
    folder = write_province("testland", """
        province: testland
        transactions:
          "2207":
            retry_safe: false
            path: /custom/settle
            change:
              input.data.invono: {max_length: 40, required: true}
            add:
              input.data:
                - {name: local_flag, type: string, max_length: 1, label: 地方标志}
            remove: [output.setlinfo.hosp_part_amt]
          "9999":
            based_on: "2207"
            name: 地方结算
        dictionaries:
          local_codes:
            label: 地方代码
            strict: true
            add: {"A": 甲}
          insutype:
            add: {"311": 地方险种}
    """)
    cat = Catalog.load("testland", extra_dirs=[folder])
    assert cat.province == "testland"
    spec = cat.transaction("2207")
    assert spec.path == "/custom/settle"
    invono = spec.input_field("data").child("invono")  # type: ignore[union-attr]
    assert invono is not None and (invono.max_length, invono.required) == (40, True)
    assert spec.input_field("data").child("local_flag") is not None  # type: ignore[union-attr]
    assert spec.output_field("setlinfo").child("hosp_part_amt") is None  # type: ignore[union-attr]
    added = cat.transaction("9999")
    assert added.name == "地方结算" and added.input == spec.input and added.api_name == "hsa-fsi-9999"
    assert cat.dictionary("local_codes").strict
    assert cat.dictionary("insutype").values["311"] == "地方险种"


def test_an_unknown_province_is_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(CatalogError, match="guangdong"):
        Catalog.load("atlantis")


def test_a_province_name_cannot_walk_out_of_the_folders() -> None:
    with pytest.raises(CatalogError, match="province name"):
        Catalog.load("../schemas/2207")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('transactions:\n  "9998":\n    name: x\n', "unknown transaction"),
        ('transactions:\n  "9998":\n    based_on: "9997"\n', "based_on names 9997"),
        ('transactions:\n  "2207":\n    change:\n      input.data.no_such_field: {max_length: 9}\n', "no such field"),
        ('transactions:\n  "2207":\n    change:\n      input.data.psn_no: {type: varchar}\n', "psn_no.type: Input should be"),
        ('transactions:\n  "2207":\n    change:\n      input.data.psn_no: {type: decimal}\n', "precision and scale"),
        ('transactions:\n  "2207":\n    add:\n      input.data:\n        - {name: psn_no, type: string, max_length: 30}\n',
         "duplicate field 'psn_no'"),
        ('transactions:\n  "2207":\n    add:\n      input.data:\n        - {name: x, type: string}\n', "max_length"),
        ('transactions:\n  "2207":\n    change:\n      input.data.psn_no: {dictionary: nowhere}\n', "unknown dictionary"),
        ('transactions:\n  "2207":\n    change:\n      data.psn_no: {max_length: 9}\n', "starts with input"),
        ('transactions:\n  "2207":\n    colour: blue\n', "colour"),
        ("transactions:\n  2207:\n    retry_safe: true\n", "must be quoted"),
        ("dictionaries:\n  nowhere:\n    add: {\"1\": x}\n", "unknown dictionary"),
        ("dictionaries:\n  insutype:\n    add: {311: x}\n", "must be quoted"),
        ("transactions: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_override_is_refused_naming_the_file(write_province: WriteProvince, body: str, problem: str) -> None:
    folder = write_province("badland", "province: badland\n" + body)
    with pytest.raises(CatalogError) as info:
        Catalog.load("badland", extra_dirs=[folder])
    message = str(info.value)
    assert "badland.yaml" in message
    assert problem in message


def test_changing_a_transaction_without_schema_is_refused(
    write_province: WriteProvince, schemaless_data_dir: Path
) -> None:
    folder = write_province("badland", 'province: badland\ntransactions:\n  "7103":\n    change:\n'
                                       '      input.setlinfo.x: {max_length: 9}\n')
    with pytest.raises(CatalogError) as info:
        apply_province_file(load_base(schemaless_data_dir), folder / "badland.yaml")
    assert "badland.yaml" in str(info.value)
    assert "7103 has no schema to change" in str(info.value)


def test_based_on_gives_a_transaction_without_schema_one(
    write_province: WriteProvince, schemaless_data_dir: Path
) -> None:
    folder = write_province("copyland", 'province: copyland\ntransactions:\n  "7103":\n    based_on: "7102"\n')
    catalog = Catalog(apply_province_file(load_base(schemaless_data_dir), folder / "copyland.yaml"))
    assert catalog.has_schema("7103")
    assert catalog.transaction("7103").input == catalog.transaction("7102").input


def test_a_province_file_must_declare_its_own_name(write_province: WriteProvince) -> None:
    folder = write_province("oddland", "province: evenland\n")
    with pytest.raises(CatalogError, match="oddland.yaml.*evenland"):
        Catalog.load("oddland", extra_dirs=[folder])
