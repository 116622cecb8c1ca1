"""Patient insurance identity (seed 003): which insurance a visit uses, and how the settlement choice may change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.registration.identity import choice_change, choose_insurance
from yibao.registration.state import Failure, Person


def _insu(insutype: str, admdvs: str, status: str | None = "1") -> dict[str, Any]:
    row = {"balc": Decimal("0.00"), "insutype": insutype, "psn_type": "11", "cvlserv_flag": "0",
           "insuplc_admdvs": admdvs}
    if status is not None:
        row["psn_insu_stas"] = status
    return row


def _out(*insuinfo: dict[str, Any]) -> dict[str, Any]:
    return {"baseinfo": {"psn_no": "P1", "psn_cert_type": "01", "certno": "X", "psn_name": "测试", "gend": "1",
                         "age": Decimal("30.0")},
            "insuinfo": list(insuinfo)}


def test_the_insutype_his_asked_for_is_used_when_the_person_holds_it() -> None:
    chosen = choose_insurance(_out(_insu("310", "440100"), _insu("390", "440300")), "390")
    assert isinstance(chosen, Person) and (chosen.insutype, chosen.insuplc_admdvs) == ("390", "440300")


def test_otherwise_the_persons_first_valid_insurance_is_used() -> None:
    chosen = choose_insurance(_out(_insu("310", "440100", "2"), _insu("390", "440300")), "310")
    assert isinstance(chosen, Person) and chosen.insutype == "390"


def test_without_an_insutype_from_his_the_first_valid_one_is_used() -> None:
    chosen = choose_insurance(_out(_insu("310", "440100")), None)
    assert isinstance(chosen, Person) and chosen.insutype == "310"


def test_the_insurance_area_of_the_chosen_row_is_kept_for_every_later_call() -> None:
    chosen = choose_insurance(_out(_insu("310", "110105")), "310")  # 异地 (another province's 区划)
    assert isinstance(chosen, Person) and chosen.insuplc_admdvs == "110105"


def test_an_insurance_without_a_status_counts_as_valid() -> None:
    assert isinstance(choose_insurance(_out(_insu("310", "440100", None)), None), Person)


def test_a_person_without_valid_insurance_is_refused() -> None:
    failure = choose_insurance(_out(_insu("310", "440100", "4")), None)
    assert isinstance(failure, Failure) and failure.reason_code == "no_valid_insurance"


def test_an_unreadable_1101_answer_is_refused() -> None:
    failure = choose_insurance({"insuinfo": []}, None)
    assert isinstance(failure, Failure) and failure.reason_code == "bad_platform_answer"


def test_insurance_may_change_to_self_pay() -> None:
    assert choice_change(False, "self_pay") == "to_self_pay"


def test_self_pay_may_never_change_to_insurance() -> None:
    assert choice_change(True, "insurance") == "refused"


def test_the_same_choice_is_no_change() -> None:
    assert choice_change(False, "insurance") == "same" and choice_change(True, "self_pay") == "same"
