"""The synthetic population (yibao.fakedata.people)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from yibao.fakedata.people import certno_check_digit, is_valid_certno, population


def test_the_same_seed_gives_the_same_people():
    assert population(11, 50) == population(11, 50)


def test_different_seeds_give_different_people():
    assert [p.certno for p in population(11, 20)] != [p.certno for p in population(12, 20)]


def test_a_longer_population_extends_a_shorter_one():
    assert population(3, 80)[:30] == population(3, 30)


def test_certnos_have_valid_check_digits_birth_dates_and_sex_digits():
    for person in population(5, 300):
        assert is_valid_certno(person.certno), person.psn_no
        assert person.certno[6:14] == person.brdy.strftime("%Y%m%d")
        assert int(person.certno[16]) % 2 == (1 if person.gend == "1" else 0)


def test_the_check_digit_follows_gb_11643():
    assert certno_check_digit("11010519491231002") == "X"  # the standard's published example
    assert not is_valid_certno("440604199003070015")


def test_identifiers_are_unique_within_a_population():
    people = population(8, 500)
    for attr in ("psn_no", "certno", "card_sn", "ec_token"):
        assert len({getattr(p, attr) for p in people}) == len(people), attr


def test_the_population_mixes_insurance_types_and_insurance_areas():
    people = population(9, 400)
    assert {p.insutype for p in people} >= {"310", "390"}
    assert any(not p.is_local for p in people) and sum(p.is_local for p in people) > len(people) // 2
    assert any(not p.insuplc_admdvs.startswith("44") for p in people)  # 跨省异地


def test_balances_are_decimal_and_residents_have_no_personal_account():
    for person in population(10, 200):
        assert isinstance(person.balc, Decimal) and person.balc >= 0
        if person.insutype == "390":
            assert person.balc == Decimal("0.00")


def test_ages_are_fixed_against_a_reference_date():
    person = population(1, 1)[0]
    assert person.age_on(dt.date(2025, 1, 1)) == person.age_on()


def test_repr_of_a_person_hides_personal_data():
    person = population(4, 1)[0]
    text = repr(person)
    for secret in (person.certno, person.psn_name, person.phone, person.card_sn, person.ec_token):
        assert secret not in text
