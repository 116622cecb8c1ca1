"""The work-injury catalog (data/workinjury): the 39 GY* transactions of seed 002, as data the engine and the client
derive their policies from — fields, required flags and lengths, lost-answer facts, deadlines and record limits."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from yibao.envelope.catalog import Catalog, FieldType
from yibao.envelope.catalog.loader import DATA_DIR, load_platform, walk_fields
from yibao.envelope.errors import CatalogError, EnvelopeValidationError

SPEC = Path("/work/shared/spec/workinjury.md")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(platform="workinjury")


def _spec_rows() -> dict[str, tuple[str, str]]:
    if not SPEC.exists():
        pytest.skip("the shared spec folder is not mounted")
    rows = {}
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| (GY[UDR]\d{3}) \| ([^|]+) \| ([^|]+) \|", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return rows


def test_the_catalog_holds_exactly_the_39_transactions_of_the_spec(catalog: Catalog) -> None:
    rows = _spec_rows()
    assert len(rows) == 39
    assert set(catalog.infnos) == set(rows)
    for infno, (name, _) in rows.items():
        assert catalog.transaction(infno).name == name, infno
        assert catalog.transaction(infno).platform == "workinjury"


def test_the_national_catalog_is_unchanged_by_it() -> None:
    national = Catalog.load()
    assert len(national) == 115 and national.platform == "national"
    assert not any(infno.startswith("GY") for infno in national.infnos)


def test_every_transaction_has_an_input_and_an_output_schema(catalog: Catalog) -> None:
    for spec in catalog:
        assert spec.has_schema and spec.input, spec.infno
        assert spec.output is not None, spec.infno


def test_every_string_has_a_length_and_every_name_is_lower_case(catalog: Catalog) -> None:
    for spec in catalog:
        for group in (spec.input or (), spec.output or ()):
            for path, f in walk_fields(group):
                assert f.name == f.name.lower(), f"{spec.infno} {path}"
                if f.type is FieldType.STRING:
                    assert f.max_length, f"{spec.infno} {path}"


def test_a_lost_answer_of_anything_that_changes_the_platform_is_looked_up_with_gyd053(catalog: Catalog) -> None:
    for spec in catalog:
        if spec.retry_safe:
            assert spec.resolution == "retry", spec.infno
        else:
            assert spec.resolution == "query", spec.infno
            assert spec.lost_answer is not None and spec.lost_answer.query == "GYD053", spec.infno
        assert not spec.reversible, f"{spec.infno}: the work-injury platform has no 冲正"


@pytest.mark.parametrize("infno", ["GYD001", "GYD006", "GYD101", "GYD103", "GYU008", "GYR005"])
def test_downloads_confirmations_and_redownloads_are_not_blindly_repeated(catalog: Catalog, infno: str) -> None:
    assert not catalog.transaction(infno).retry_safe


@pytest.mark.parametrize("infno", ["GYU000", "GYD051", "GYD052", "GYD055", "GYU010", "GYD053", "GYD008", "GYD104",
                                   "GYD054"])
def test_checks_and_queries_are_safe_to_repeat(catalog: Catalog, infno: str) -> None:
    assert catalog.transaction(infno).retry_safe


def test_uploads_carry_their_30_minute_deadline_and_record_limits(catalog: Catalog) -> None:
    uploads = [s for s in catalog if s.kind == "upload"]
    assert {s.infno for s in uploads} == {"GYU008", "GYU001", "GYU006", "GYU007", "GYU101", "GYU102", "GYU103",
                                          "GYU303", "GYU004", "GYU003", "GYU009", "GYU002"}
    for spec in uploads:
        assert spec.deadline_s == 1800, spec.infno
        assert spec.max_records == (10 if spec.infno == "GYU002" else 500), spec.infno


def test_downloads_are_confirmed_with_gyu008_except_by_person(catalog: Catalog) -> None:
    downloads = {s.infno for s in catalog if s.kind == "download"}
    assert downloads == {"GYD001", "GYD006", "GYD101", "GYD102", "GYD103", "GYD004", "GYD401", "GYD402", "GYD403",
                         "GYD404", "GYD003", "GYD005", "GYD009"}
    assert all(catalog.transaction(i).feedback for i in downloads)
    assert not catalog.transaction("GYD104").feedback


def test_a_missing_required_field_is_refused_with_its_path(catalog: Catalog) -> None:
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.prepare_input("GYU101", {"adm_list": [{"ipt_no": "ZY1"}]})
    assert info.value.path == "adm_list[0].org_code" and info.value.rule == "required"


def test_an_over_length_value_is_refused_with_its_path_and_never_its_value(catalog: Catalog) -> None:
    line = {"fee_sn": "1", "ipt_no": "ZY1", "org_code": "H1", "fee_time": "2026-01-01 10:00:00",
            "item_code": "X" * 51, "item_name": "n", "price": Decimal("1"), "cnt": Decimal("2"),
            "amount": Decimal("2"), "pool_amt": Decimal("2"), "self_amt": Decimal("0")}
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.prepare_input("GYU102", {"fee_list": [line]})
    assert info.value.path == "fee_list[0].item_code" and info.value.rule == "max_length 50"
    assert "XXXX" not in str(info.value)


def test_amounts_keep_their_scale_and_floats_are_refused(catalog: Catalog) -> None:
    line = {"fee_sn": "1", "ipt_no": "ZY1", "org_code": "H1", "fee_time": "2026-01-01 10:00:00",
            "item_code": "X", "item_name": "n", "price": Decimal("12.5"), "cnt": Decimal("2"),
            "amount": Decimal("25"), "pool_amt": Decimal("20"), "self_amt": Decimal("5")}
    body = catalog.prepare_input("GYU102", {"fee_list": [line]})
    assert body["fee_list"][0]["amount"] == Decimal("25.00") and str(body["fee_list"][0]["amount"]) == "25.00"
    with pytest.raises(EnvelopeValidationError):
        catalog.prepare_input("GYU102", {"fee_list": [{**line, "amount": 25.0}]})


def test_a_strict_code_list_refuses_an_unknown_code(catalog: Catalog) -> None:
    row = {"apply_no": "A1", "audit_result": "9", "auditor": "x", "audit_time": "2026-01-01 10:00:00"}
    with pytest.raises(EnvelopeValidationError) as info:
        catalog.prepare_input("GYU001", {"audit_list": [row]})
    assert info.value.path == "audit_list[0].audit_result" and info.value.rule == "dictionary wi_audit_result"


def test_a_province_file_changes_a_work_injury_field_without_code(tmp_path: Path) -> None:
    (tmp_path / "fujian.yaml").write_text(
        "province: fujian\ntransactions:\n  GYU101:\n    change:\n      input.adm_list.adm_diag_name: {max_length: 100}\n",
        encoding="utf-8")
    catalog = Catalog.load("fujian", extra_dirs=[tmp_path], platform="workinjury")
    field = catalog.transaction("GYU101").input_field("adm_list").child("adm_diag_name")  # type: ignore[union-attr]
    assert field is not None and field.max_length == 100
    assert catalog.platform == "workinjury" and catalog.province == "fujian"


def test_a_lost_answer_query_that_is_not_retry_safe_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "workinjury"
    shutil.copytree(DATA_DIR / "workinjury", folder)
    path = folder / "transactions.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("GYU102: {query: GYD053", "GYU102: {query: GYD001"),
                    encoding="utf-8")
    with pytest.raises(CatalogError, match="not retry_safe"):
        load_platform(folder)


def test_a_schema_for_an_unlisted_transaction_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "workinjury"
    shutil.copytree(DATA_DIR / "workinjury", folder)
    (folder / "schemas" / "GYU999.yaml").write_text(
        (folder / "schemas" / "GYU000.yaml").read_text(encoding="utf-8").replace("infno: GYU000", "infno: GYU999"),
        encoding="utf-8")
    with pytest.raises(CatalogError, match="GYU999 is not in transactions.yaml"):
        load_platform(folder)


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(CatalogError, match="platform 'nowhere'"):
        Catalog.load(platform="nowhere")
