"""Fixtures for the catalog tests: the national and example-province catalogs, valid inputs to break."""

from __future__ import annotations

import copy
import shutil
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.loader import DATA_DIR, load_base

#: a name and a resident-id number that must never show up in a message
PERSON_NAME = "张三丰"
PERSON_CERTNO = "110101199003074518"


@pytest.fixture
def person() -> dict[str, str]:
    """Personal values that must never appear in an error message or warning."""
    return {"name": PERSON_NAME, "certno": PERSON_CERTNO}


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="session")
def guangdong() -> Catalog:
    return Catalog.load("guangdong")


#: the transaction the schema-less catalog below has no field list for
SCHEMALESS_INFNO = "7103"


@pytest.fixture(scope="session")
def schemaless_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packaged national data with one field list (7103's) taken out.

    Every national transaction has a field list, yet the raw-JSON path (``TransactionSpec.input is None``) stays
    for what a deployment may list without one; the tests of that path load this copy instead of relying on a
    gap in the shipped catalog.
    """
    folder = tmp_path_factory.mktemp("catalog") / "data"
    shutil.copytree(DATA_DIR, folder, ignore=shutil.ignore_patterns("__pycache__", "workinjury"))
    (folder / "schemas" / f"{SCHEMALESS_INFNO}.yaml").unlink()
    return folder


@pytest.fixture(scope="session")
def schemaless(schemaless_data_dir: Path) -> Catalog:
    """The national catalog without 7103's field list: 7103 is callable as raw JSON only."""
    catalog = Catalog(load_base(schemaless_data_dir))
    assert not catalog.has_schema(SCHEMALESS_INFNO)
    return catalog


def _input_2207() -> dict[str, Any]:
    return {
        "data": {
            "psn_no": "44000012345678901234567890",
            "mdtrt_cert_type": "02",
            "mdtrt_cert_no": PERSON_CERTNO,
            "med_type": "11",
            "medfee_sumamt": Decimal("120.50"),
            "psn_setlway": "01",
            "mdtrt_id": "440000000123",
            "chrg_bchno": "B20240102000001",
            "acct_used_flag": "1",
            "insutype": "310",
            "invono": "",
            "fulamt_ownpay_amt": Decimal("0"),
            "overlmt_selfpay": Decimal("0"),
            "preselfpay_amt": Decimal("0"),
            "inscp_scp_amt": Decimal("120.50"),
        }
    }


def _fee_line(sn: int) -> dict[str, Any]:
    return {
        "feedetl_sn": f"F{sn:04d}",
        "mdtrt_id": "440000000123",
        "psn_no": "44000012345678901234567890",
        "chrg_bchno": "B20240102000001",
        "rx_circ_flag": "0",
        "fee_ocur_time": "2024-01-02 09:30:00",
        "med_list_codg": "XA01ABD075A002010100483",
        "medins_list_codg": "H-0001",
        "det_item_fee_sumamt": Decimal("12.34"),
        "cnt": Decimal("2"),
        "pric": Decimal("6.17"),
        "bilg_dept_codg": "D01",
        "bilg_dept_name": "内科",
        "bilg_dr_codg": "D0001",
        "bilg_dr_name": "李医生",
        "hosp_appr_flag": "1",
    }


def _input_2204() -> dict[str, Any]:
    return {"feedetail": [_fee_line(i) for i in range(5)]}


@pytest.fixture
def input_2207() -> dict[str, Any]:
    """A valid 2207 (门诊结算) input; tests break one thing at a time."""
    return copy.deepcopy(_input_2207())


@pytest.fixture
def input_2204() -> dict[str, Any]:
    """A valid 2204 input with five fee lines."""
    return copy.deepcopy(_input_2204())


@pytest.fixture
def write_province(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``<name>.yaml`` with the given (dedented) text into a fresh directory; return the directory."""

    def write(name: str, text: str) -> Path:
        folder = tmp_path / "provinces-extra"
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return folder

    return write
