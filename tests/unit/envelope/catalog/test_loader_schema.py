"""The loader schema: every data file is validated at load time and a broken one is refused, file named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yibao.envelope.catalog.loader import DATA_DIR, load_base
from yibao.envelope.errors import CatalogError


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the packaged data directory to break."""
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _refused(data_dir: Path, *fragments: str) -> None:
    with pytest.raises(CatalogError) as info:
        load_base(data_dir)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_packaged_data_loads(data_copy: Path) -> None:
    data = load_base(data_copy)
    assert len(data.transactions) == 115


def test_a_string_without_a_length_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2201.yaml", "{name: dr_name, type: string, max_length: 50,", "{name: dr_name, type: string,")
    _refused(data_copy, "2201.yaml", "input.data.dr_name", "max_length")


def test_an_unknown_key_in_a_schema_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2202.yaml", "required: true, label: 人员编号}", "required: true, lable: 人员编号}")
    _refused(data_copy, "2202.yaml", "lable")


def test_an_unknown_type_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2202.yaml", "{name: psn_no, type: string", "{name: psn_no, type: varchar2")
    _refused(data_copy, "2202.yaml", "type")


def test_a_duplicate_field_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2404.yaml", "{name: psn_no,", "{name: mdtrt_id,")
    _refused(data_copy, "2404.yaml", "duplicate field 'mdtrt_id'")


def test_an_unknown_block_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2206.yaml", "use: setldetail", "use: setldetails")
    _refused(data_copy, "2206.yaml", "unknown block 'setldetails'")


def test_an_unknown_dictionary_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2201.yaml", "dictionary: caty", "dictionary: caty_list")
    _refused(data_copy, "2201.yaml", "unknown dictionary 'caty_list'")


def test_a_schema_for_an_infno_that_is_not_listed_is_refused(data_copy: Path) -> None:
    (data_copy / "schemas" / "2202.yaml").rename(data_copy / "schemas" / "2209.yaml")
    _edit(data_copy / "schemas" / "2209.yaml", 'infno: "2202"', 'infno: "2209"')
    _refused(data_copy, "2209.yaml", "not in transactions.yaml")


def test_a_schema_file_must_be_named_after_its_infno(data_copy: Path) -> None:
    _edit(data_copy / "schemas" / "2202.yaml", 'infno: "2202"', 'infno: "2205"')
    _refused(data_copy, "2202.yaml", "2205.yaml")


def test_a_transaction_listed_twice_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "transactions.yaml", '{infno: "1201"', '{infno: "1101"')
    _refused(data_copy, "transactions.yaml", "1101 is listed twice")


def test_an_unquoted_dictionary_code_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "dictionaries.yaml", '"01": 电子凭证令牌', "01: 电子凭证令牌")
    _refused(data_copy, "dictionaries.yaml", "must be quoted")


def test_a_decimal_without_scale_is_refused(data_copy: Path) -> None:
    _edit(data_copy / "blocks.yaml", "{name: fund_payamt, type: decimal, precision: 16, scale: 2,",
          "{name: fund_payamt, type: decimal, precision: 16,")
    _refused(data_copy, "fund_payamt", "precision and scale")
