"""Masking of personal data (yibao.core.privacy): by shape in free text, by key everywhere.

The resident ids below are made up (area 110105, the sample birth date of GB 11643); the mobile numbers are in
the 138 range with made-up subscriber digits.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from yibao.core.privacy import is_personal_key, mask_obj, mask_text, mask_value

CERTNO = "110105194912310021"
CERTNO_X = "11010519491231002X"
OLD_CERTNO = "110105491231002"  # 15 digits: area(6) + yyMMdd + sequence(3), issued before 1999
MOBILE = "13812345678"
NAME = "张三"

#: identifiers and figures of the platforms that must survive masking unchanged
MSGID = "H44010600001202401011200000001"  # fixmedins_code(12) + yyyyMMddHHmmss + serial(4)
MDTRT_ID = "4401002024010112000000000001"  # the simulator's: admdvs(6) + time(14) + serial(8)
INF_REFMSGID = "440100202401011200000000000001"  # admdvs(6) + time(14) + serial(10)
PSN_NO = "44000012345678901234"


# --- by shape -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("certno", [CERTNO, CERTNO_X, CERTNO_X.lower()])
def test_an_18_digit_resident_id_is_masked_in_free_text(certno: str) -> None:
    text = f"settlement for certno {certno} refused"
    masked = mask_text(text)
    assert certno not in masked
    assert masked.startswith("settlement for certno ") and masked.endswith(" refused")


def test_a_resident_id_inside_chinese_text_is_masked() -> None:
    masked = mask_text(f"患者身份证号{CERTNO_X}未参保")
    assert CERTNO_X not in masked and masked.startswith("患者身份证号") and masked.endswith("未参保")


def test_a_masked_resident_id_keeps_only_its_ends() -> None:
    masked = mask_text(CERTNO_X)
    assert len(masked) == 18 and masked[:3] == "110" and masked[-2:] == "2X" and set(masked[3:-2]) == {"*"}


def test_an_old_15_digit_resident_id_is_masked() -> None:
    assert OLD_CERTNO not in mask_text(f"old card {OLD_CERTNO} on file")


@pytest.mark.parametrize("text", [f"call {MOBILE} now", f"联系电话{MOBILE}。", f"tel:{MOBILE}", f"+86 {MOBILE}",
                                  f"0086-{MOBILE}"])
def test_a_mobile_number_is_masked(text: str) -> None:
    masked = mask_text(text)
    assert MOBILE not in masked and "1234" not in masked


@pytest.mark.parametrize("written", ["+8613812345678", "138-1234-5678", "138 1234 5678"])
def test_a_mobile_number_in_its_usual_written_forms_is_masked(written: str) -> None:
    assert "1234" not in mask_text(f"patient reachable at {written}")


@pytest.mark.parametrize("identifier", [MSGID, MDTRT_ID, INF_REFMSGID, PSN_NO, "440100202401011200000012"])
def test_platform_identifiers_are_not_mangled(identifier: str) -> None:
    for text in (identifier, f"msgid={identifier}", f'{{"mdtrt_id": "{identifier}"}}', f"id {identifier}."):
        assert mask_text(text) == text


@pytest.mark.parametrize("figure", ["123456789", "123456789.00", "-123456789.99", "20240101", "2024-01-01 12:00:00",
                                    "20240101120000", "1704081600000", "0.1235"])
def test_amounts_dates_and_timestamps_are_not_mangled(figure: str) -> None:
    text = f"medfee_sumamt={figure} setl_time {figure}"
    assert mask_text(text) == text


# --- by key in text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        (f"psn_name={NAME}", NAME),
        (f'"psn_name": "{NAME}"', NAME),
        (f"'psn_name': '{NAME}'", NAME),
        (f"psn_name = {NAME}, dept=内科", NAME),
        ("certno: E12345678", "E12345678"),  # a passport number: only its key says it is personal
        (f'{{"userName": "{NAME}", "idNo": "C1234567"}}', "C1234567"),  # mobile-pay camelCase keys
        ('"tel": "020-87654321"', "020-87654321"),  # a landline: only its key says it is personal
    ],
)
def test_a_personal_key_value_pair_is_masked_by_its_key(text: str, value: str) -> None:
    masked = mask_text(text)
    assert value not in masked
    key = text.split("=")[0].split(":")[0]
    assert masked.startswith(key)


@pytest.mark.parametrize("name", ["John Smith", "阿依古丽 买买提"])
def test_a_quoted_personal_value_with_a_space_is_masked(name: str) -> None:
    masked = mask_text(f'{{"psn_name": "{name}", "med_type": "11"}}')
    assert name.split()[0] not in masked and name.split()[1] not in masked


def test_values_of_other_keys_are_kept() -> None:
    text = 'dept_name=内科 med_type=11 "insutype": "310" msgid=' + MSGID
    assert mask_text(text) == text


# --- structures ---------------------------------------------------------------------------------------------


def test_mask_obj_masks_personal_keys_at_any_depth() -> None:
    payload = {
        "infno": "2401",
        "input": {
            "mdtrtinfo": {"psn_no": PSN_NO, "coner_name": "李四", "tel": MOBILE, "mdtrt_cert_no": CERTNO},
            "diseinfo": [{"diag_name": "肺炎", "psn_name": NAME}, {"nested": [{"certno": CERTNO_X}]}],
        },
    }
    masked = mask_obj(payload)
    text = repr(masked)
    for personal in ("李四", MOBILE, CERTNO, NAME, CERTNO_X, PSN_NO):
        assert personal not in text
    assert masked["input"]["diseinfo"][0]["diag_name"] == "肺炎"


@pytest.mark.parametrize(
    "key, value",
    [("certno", "E12345678"), ("psn_name", "Li"), ("tel", "020-87654321"), ("name", 12345),
     ("PSN_NAME", "王五"), ("psnName", "王五"), ("addr", "北京市朝阳区某路1号")],
)
def test_values_of_personal_keys_are_masked_even_when_they_do_not_look_personal(key: str, value: Any) -> None:
    masked = mask_obj({key: value})
    assert masked[key] != value and str(value) not in str(masked[key])


def test_mask_obj_masks_personal_data_in_free_text_values() -> None:
    masked = mask_obj({"memo": f"call {MOBILE}, id {CERTNO}"})
    assert MOBILE not in masked["memo"] and CERTNO not in masked["memo"]


def test_mask_obj_leaves_everything_else_as_it_was() -> None:
    payload = {"msgid": MSGID, "medfee_sumamt": Decimal("123.45"), "cnt": 2, "flag": True, "none": None,
               "feedetail": [{"feedetl_sn": "0001", "pric": "12.500000"}]}
    assert mask_obj(payload) == payload


def test_mask_obj_does_not_modify_its_input() -> None:
    payload = {"psn_name": NAME, "list": [{"certno": CERTNO}]}
    before = copy.deepcopy(payload)
    mask_obj(payload)
    assert payload == before


def test_everything_under_a_personal_key_is_masked() -> None:
    masked = mask_obj({"psn_name": [NAME, "李四"], "tel": {"home": "020-87654321"}})
    text = repr(masked)
    assert NAME not in text and "李四" not in text and "020-87654321" not in text


def _personal_columns_of(mapping: Any, personal_fields: frozenset[str]) -> set[str]:
    """Columns a mapping file maps onto personal event fields (``field: COLUMN`` or ``field: {column: …}``)."""
    found: set[str] = set()
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            if key in personal_fields and isinstance(value, str):
                found.add(value)
            elif key in personal_fields and isinstance(value, dict) and isinstance(value.get("column"), str):
                found.add(value["column"])
            else:
                found |= _personal_columns_of(value, personal_fields)
    elif isinstance(mapping, list):
        for item in mapping:
            found |= _personal_columns_of(item, personal_fields)
    return found


def test_the_shipped_his_mappings_personal_columns_are_masked_by_key() -> None:
    import yibao.hisevents.mappings as mappings
    from yibao.hisevents.models import PERSONAL_FIELDS

    columns: set[str] = set()
    for path in sorted(Path(mappings.__file__).parent.glob("*.yaml")):
        columns |= _personal_columns_of(yaml.safe_load(path.read_text(encoding="utf-8")), PERSONAL_FIELDS)
    assert columns, "the shipped mappings name no personal column: the test reads them wrongly"
    assert sorted(c for c in columns if not is_personal_key(c)) == []


# --- issue 11: what the filter used to miss ------------------------------------------------------------------


@pytest.mark.parametrize("text", [f"certno{CERTNO}abc", f"{CERTNO_X}abc", f"id:{CERTNO}号码", f"ID{CERTNO}",
                                  f"patient_{CERTNO}_visit", f"{OLD_CERTNO}abc"])
def test_a_resident_id_glued_to_letters_is_masked(text: str) -> None:
    masked = mask_text(text)
    assert CERTNO not in masked and CERTNO_X not in masked and OLD_CERTNO not in masked


@pytest.mark.parametrize("text, name", [
    ("registration refused for patient Zhang San today", "Zhang San"),
    ("insured person Li Xiaoming has no active insurance", "Xiaoming"),
    ("contact: John Smith", "Smith"),
    ("参保人[张三]不存在", NAME),
    ("人员姓名【王小明】与证件号码不符", "王小明"),
])
def test_a_name_in_free_text_after_a_word_for_a_person_is_masked(text: str, name: str) -> None:
    assert name not in mask_text(text)


@pytest.mark.parametrize("text, value", [
    (f"姓名：{NAME}，性别：男", NAME),
    (f"患者姓名: {NAME}", NAME),
    (f"联系人={NAME}", NAME),
    (f"身份证号：{CERTNO}", CERTNO),
    ("证件号码:E12345678", "E12345678"),
    ("联系电话：020-87654321", "87654321"),
    ("家庭住址：北京市朝阳区某路1号，邮编100000", "朝阳区某路1号"),
    ("出生日期：1949-12-31", "1949-12-31"),
    ("工作单位：某某科技有限公司", "某某科技有限公司"),
])
def test_a_value_under_a_chinese_label_is_masked(text: str, value: str) -> None:
    masked = mask_text(text)
    assert value not in masked
    assert masked.startswith(text.split("：")[0].split(":")[0].split("=")[0])


def test_a_chinese_platform_message_without_a_value_is_left_readable() -> None:
    text = "人员姓名与证件号码不符，请核对后重试"
    assert mask_text(text) == text


def _nested_json(levels: int) -> str:
    """A payload written as JSON text inside a JSON string, ``levels`` deep (each level escapes the quotes again)."""
    import json

    text = json.dumps({"psn_name": NAME, "certno": "E12345678", "visit": "V1"}, ensure_ascii=False)
    for n in range(levels):
        text = json.dumps({f"level{n}": text}, ensure_ascii=False)
    return text


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_personal_keys_in_json_escaped_inside_a_json_string_are_masked(levels: int) -> None:
    text = _nested_json(levels)
    assert '\\"psn_name' in text, "the inner keys are escaped"
    masked = mask_text(text)
    assert NAME not in masked and "E12345678" not in masked and "V1" in masked


def test_personal_keys_in_a_json_string_value_of_a_structure_are_masked() -> None:
    import json

    inner = json.dumps({"psn_name": NAME, "certno": "E12345678", "visit": "V1"}, ensure_ascii=False)
    outer = json.dumps({"input": inner, "n": 1}, ensure_ascii=False)  # JSON inside a JSON string
    for masked in (mask_text(outer), repr(mask_obj({"payload": outer})), repr(mask_obj(json.loads(outer)))):
        assert NAME not in masked and "E12345678" not in masked and "V1" in masked


@pytest.mark.parametrize("key, value", [
    ("psn_no", PSN_NO), ("brdy", "1949-12-31"), ("emp_name", "某某科技有限公司"), ("gend", "1"), ("naty", "01"),
    ("age", "76"), ("coner_tel", "020-87654321"), ("card_sn", "K12345678"), ("psnNo", PSN_NO),
    ("mdtrt_cert_no", "E12345678"), ("addr", "北京市朝阳区"),
])
def test_the_personal_fields_of_the_national_spec_are_masked_by_key(key: str, value: str) -> None:
    assert f'"{key}": "{value}"' not in mask_text(f'{{"{key}": "{value}", "insutype": "310"}}')
    assert f"{key}={value} " not in mask_text(f"{key}={value} insutype=310")
    assert str(mask_obj({key: value})[key]) != value


def test_the_spec_catalogs_personal_fields_are_all_personal_keys() -> None:
    """Every field the transaction catalog labels as a person's (人员编号 证件号码 人员姓名 性别 民族 出生日期 年龄 联系电话
    联系人姓名 单位名称 卡识别码 就诊凭证编号) is masked by key."""
    labels = ("人员编号", "证件号码", "人员姓名", "性别", "民族", "出生日期", "年龄", "联系电话", "联系人姓名", "单位名称",
              "卡识别码", "就诊凭证编号")
    import re as _re

    import yibao.envelope.catalog as catalog

    data = Path(catalog.__file__).parent / "data"
    found: set[str] = set()
    for path in data.rglob("*.yaml"):
        for m in _re.finditer(r"name: ([a-z_0-9]+),[^}]*label: ([^,}]+)", path.read_text(encoding="utf-8")):
            if any(m.group(2).strip().startswith(label) for label in labels):
                found.add(m.group(1))
    assert {"psn_no", "certno", "psn_name", "brdy", "emp_name"} <= found
    assert sorted(k for k in found if not is_personal_key(k)) == []


@pytest.mark.parametrize("text, secret", [
    ("appSecret=s3cr3t-Value-1 appId=yibaoMobileApp0001", "s3cr3t-Value-1"),
    ('{"app_secret": "s3cr3t-Value-1"}', "s3cr3t-Value-1"),
    ("password=hunter2!x&user=yibao", "hunter2!x"),
    ("connect with PGPASSWORD='hunter2!x'", "hunter2!x"),
    ("postgresql+psycopg://yibao:hunter2!x@db.hospital.local:5432/yibao", "hunter2!x"),
    ("DATABASE_URL=postgres://yibao:hunter2x@10.0.0.5/yibao failed", "hunter2x"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
    ("{'authorization': 'Basic eWliYW86aHVudGVyMg=='}", "eWliYW86aHVudGVyMg=="),
    ("headers: [('Authorization', 'Bearer abcdef1234567890')]", "abcdef1234567890"),
    ("SM4 key 0123456789abcdeffedcba9876543210 rejected", "0123456789abcdeffedcba9876543210"),
    ("sm4_key=0123456789ABCDEFFEDCBA9876543210", "0123456789ABCDEFFEDCBA9876543210"),
    ("密钥：0123456789abcdeffedcba9876543210", "0123456789abcdeffedcba9876543210"),
    ("x-tif-token: tif-token-for-tests", "tif-token-for-tests"),
    ("YIBAO_DATA_KEYS=k1:0123456789abcdeffedcba9876543210", "0123456789abcdeffedcba9876543210"),
])
def test_a_secret_is_masked(text: str, secret: str) -> None:
    assert secret not in mask_text(text)


def test_a_secret_under_a_secret_key_is_masked_in_a_structure() -> None:
    masked = mask_obj({"platform": {"api_secret": "s3cr3t", "sm4_key": "0123456789abcdeffedcba9876543210",
                                    "password": ["a", "b"], "fixmedins_code": "H44010600001"}})
    assert "s3cr3t" not in repr(masked) and "0123456789abcdef" not in repr(masked)
    assert masked["platform"]["fixmedins_code"] == "H44010600001"


def test_an_event_id_of_32_hex_digits_is_not_mistaken_for_a_key() -> None:
    text = "event_id=0123456789abcdeffedcba9876543210 duplicate"
    assert mask_text(text) == text


# --- the masker itself --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, masked", [("", ""), ("张", "*"), ("张三", "**"), ("王小明", "王**"),
                                           (CERTNO_X, "110" + "*" * 13 + "2X"), (None, "")])
def test_mask_value_keeps_at_most_the_ends(value: Any, masked: str) -> None:
    assert mask_value(value) == masked


@pytest.mark.parametrize("key", ["certno", "CERTNO", "cert_no", "psn_name", "psnName", "mdtrtCertNo", "idNo",
                                 "userName", "coner_tel", "TEL"])
def test_personal_keys_are_recognised_whatever_their_case_and_underscores(key: str) -> None:
    assert is_personal_key(key)
