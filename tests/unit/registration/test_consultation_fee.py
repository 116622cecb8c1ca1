"""诊查费统筹 rules (seed 000 §6.5): data validated at load, the first matching rule splits the fee, and the
kiosk/WeChat endpoint quotes exactly what the counter applies."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from yibao.registration.consultation_fee import (
    SHIPPED_RULES,
    ConsultationFeeRulesError,
    QuoteInputError,
    load_rules,
    rules_from_text,
)
from yibao.registration.http import quote_response, rules_response

RULES = """
version: t1
rules:
  - {id: chronic, med_type: "14", ratio: 1}
  - {id: ordinary-employee, reg_type: "01", insutypes: ["310"], ratio: 0.7}
  - {id: ordinary, reg_type: "01", ratio: 0.5}
  - {id: expert, reg_type: "02", ratio: 0.5, cap: 10.00}
  - {id: thirds, reg_type: "09", ratio: 0.3333}
"""


@pytest.fixture
def rules():  # type: ignore[no-untyped-def]
    return rules_from_text(RULES)


def _quote(rules, fee: str, reg_type: str | None, med_type: str | None = "11", insutype: str | None = "310"):  # type: ignore[no-untyped-def]
    return rules.quote(reg_fee=Decimal(fee), reg_type=reg_type, med_type=med_type, insutype=insutype)


def test_the_shipped_rules_load_and_validate() -> None:
    shipped = load_rules()
    assert shipped.rules and SHIPPED_RULES.exists()


def test_the_first_matching_rule_decides(rules) -> None:  # type: ignore[no-untyped-def]
    assert _quote(rules, "10.00", "01", "14").rule == "chronic"
    assert _quote(rules, "10.00", "01").rule == "ordinary-employee"
    assert _quote(rules, "10.00", "01", insutype="390").rule == "ordinary"


def test_the_fund_pays_the_ratio_and_the_patient_the_rest(rules) -> None:  # type: ignore[no-untyped-def]
    quote = _quote(rules, "10.00", "01")
    assert (quote.pooled, quote.self_paid) == (Decimal("7.00"), Decimal("3.00"))


def test_the_pooled_amount_is_rounded_half_up_to_the_cent(rules) -> None:  # type: ignore[no-untyped-def]
    quote = _quote(rules, "10.00", "09")  # 10 × 0.3333 = 3.333
    assert (quote.pooled, quote.self_paid) == (Decimal("3.33"), Decimal("6.67"))
    assert quote.pooled + quote.self_paid == quote.reg_fee


def test_the_cap_limits_what_the_fund_pays(rules) -> None:  # type: ignore[no-untyped-def]
    quote = _quote(rules, "25.00", "02")
    assert (quote.pooled, quote.self_paid) == (Decimal("10.00"), Decimal("15.00"))


def test_no_matching_rule_pools_nothing(rules) -> None:  # type: ignore[no-untyped-def]
    quote = _quote(rules, "10.00", "07")
    assert (quote.rule, quote.pooled, quote.self_paid) == (None, Decimal("0.00"), Decimal("10.00"))


def test_self_pay_patients_are_never_pooled(rules) -> None:  # type: ignore[no-untyped-def]
    assert _quote(rules, "10.00", "01", "14", insutype=None).pooled == Decimal("0.00")


def test_a_negative_fee_is_refused(rules) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuoteInputError):
        _quote(rules, "-1.00", "01")


def test_a_float_fee_is_refused(rules) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuoteInputError):
        rules.quote(reg_fee=0.1, reg_type="01", med_type="11", insutype="310")


def test_yaml_decimals_are_read_exactly() -> None:
    loaded = rules_from_text("version: t\nrules:\n  - {id: a, ratio: 0.7}\n")
    assert loaded.rules[0].ratio == Decimal("0.7")


@pytest.mark.parametrize(("text", "words"), [
    ("version: t\nrules:\n  - {id: a, ratio: 1.5}\n", "between 0 and 1"),
    ("version: t\nrules:\n  - {id: a, ratio: 0.12345}\n", "4 decimals"),
    ("version: t\nrules:\n  - {id: a, ratio: 0.5, cap: -1}\n", "negative"),
    ("version: t\nrules:\n  - {id: a, ratio: 0.5, cap: 1.234}\n", "cents"),
    ("version: t\nrules:\n  - {id: a, ratio: 0.5}\n  - {id: a, reg_type: '01', ratio: 0.5}\n", "used twice"),
    ("version: t\nrules:\n  - {id: a, ration: 0.5}\n", "ration"),
    ("version: t\nrules:\n  - {id: a, reg_type: 01, ratio: 0.5}\n", "quoted text"),
    ("version: t\nrules:\n  - {id: broad, reg_type: '01', ratio: 0.5}\n  - {id: narrow, reg_type: '01', "
     "med_type: '14', ratio: 1}\n", "can never apply"),
    ("- not a mapping\n", "mapping"),
    ("version: t\nrules: [{id: a, ratio: .inf}]\n", "not a decimal number"),
])
def test_wrong_rules_are_refused_at_load_naming_the_problem(text: str, words: str) -> None:
    with pytest.raises(ConsultationFeeRulesError) as err:
        rules_from_text(text)
    assert words in str(err.value)


def test_a_hospitals_own_rules_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: hospital-2\nrules:\n  - {id: all, ratio: 0.25}\n", encoding="utf-8")
    assert load_rules(path).version == "hospital-2"


def test_a_missing_rules_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConsultationFeeRulesError):
        load_rules(tmp_path / "absent.yaml")


# --- the kiosk / WeChat endpoint ------------------------------------------------------------------------------

def _post(rules, body: object) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return quote_response(rules, raw)


def test_the_endpoint_quotes_the_same_split_as_the_counter(rules) -> None:  # type: ignore[no-untyped-def]
    status, body = _post(rules, {"reg_type": "01", "med_type": "11", "insutype": "310", "reg_fee": "10.00"})
    assert status == 200
    assert body == {"reg_fee": "10.00", "pooled": "7.00", "self_paid": "3.00", "rule": "ordinary-employee",
                    "ratio": "0.7", "rules_version": "t1"}


def test_the_endpoint_reads_json_numbers_exactly(rules) -> None:  # type: ignore[no-untyped-def]
    status, body = _post(rules, b'{"reg_type": "01", "insutype": "310", "reg_fee": 10.10}')
    assert status == 200 and body["pooled"] == "7.07"


def test_without_insutype_the_endpoint_quotes_self_pay(rules) -> None:  # type: ignore[no-untyped-def]
    status, body = _post(rules, {"reg_type": "01", "reg_fee": "10.00"})
    assert status == 200 and body["pooled"] == "0.00" and body["rule"] is None


@pytest.mark.parametrize("body", [b"not json", b"[]", {"reg_type": "01"}, {"reg_fee": "x"},
                                  {"reg_fee": "10", "unknown": 1}, {"reg_fee": "-5"}])
def test_bad_quote_requests_are_answered_400_with_a_reason(rules, body: object) -> None:  # type: ignore[no-untyped-def]
    status, answer = _post(rules, body)
    assert status == 400 and answer["error"]


def test_the_rules_endpoint_lists_the_rules_in_force(rules) -> None:  # type: ignore[no-untyped-def]
    status, body = rules_response(rules)
    assert status == 200 and body["version"] == "t1" and [r["id"] for r in body["rules"]][0] == "chronic"
