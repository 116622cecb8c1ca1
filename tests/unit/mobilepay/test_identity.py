"""Patient identity (seed 003): the settlement type a patient chooses, checked against 1101 and 医保区划 (1901)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from yibao.core.errors import ConfigurationError
from yibao.envelope.errors import BusinessRejection, TransportError
from yibao.core import clock
from yibao.mobilepay.identity import (
    IdentityService,
    classify_admdvs,
    decide_designation,
    designated_here,
    load_rules,
    parent_of,
)
from yibao.mobilepay.models import IdentityBody

ADMDVS = [{"nat_dic_val_code": "440000", "nat_dic_val_name": "广东省"},
          {"nat_dic_val_code": "440100", "nat_dic_val_name": "广州市"},
          {"nat_dic_val_code": "440106", "nat_dic_val_name": "天河区"},
          {"nat_dic_val_code": "449900", "nat_dic_val_name": "广东省省本级"},
          {"nat_dic_val_code": "440300", "nat_dic_val_name": "深圳市"},
          {"nat_dic_val_code": "110000", "nat_dic_val_name": "北京市"},
          {"nat_dic_val_code": "440200", "nat_dic_val_name": "韶关市", "vali_flag": "0"}]


class FakeNational:
    """1101 and 1901 as the platform answers them; counts the calls."""

    def __init__(self, admdvs: str = "440106", *, reject: bool = False, lost: bool = False,
                 status: str = "1", fixed: list[dict[str, Any]] | None = None, fixed_lost: bool = False) -> None:
        self.admdvs, self.reject, self.lost, self.status = admdvs, reject, lost, status
        self.fixed, self.fixed_lost = fixed or [], fixed_lost
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, infno: str, body: dict[str, Any], **options: Any) -> Any:
        self.calls.append((infno, body))
        if infno == "5302":
            assert options.get("insuplc_admdvs") == self.admdvs, "a psn_no input names the 参保地"
        if infno == "1901":
            return SimpleNamespace(output={"list": ADMDVS})
        if infno == "5302":
            if self.fixed_lost:
                raise TransportError("5302", "connection refused")
            return SimpleNamespace(output={"psnfixmedin": self.fixed})
        if self.lost:
            raise TransportError("1101", "connection refused")
        if self.reject:
            raise BusinessRejection("1101", "查无此人")
        return SimpleNamespace(output={"baseinfo": {"psn_no": "PSN1"}, "insuinfo": [
            {"insutype": "310", "insuplc_admdvs": self.admdvs, "psn_insu_stas": self.status}]})


HOSPITAL = "H44010600001"


def service(fake: FakeNational) -> IdentityService:
    return IdentityService(load_rules(), lambda: fake, fixmedins_code=HOSPITAL)


def fixed_at(code: str = HOSPITAL, begin: str = "2024-01-01", end: str = "") -> dict[str, Any]:
    return {"psn_no": "PSN1", "fix_srt_no": "1", "fixmedins_code": code, "fixmedins_name": "某医院", "begndate": begin,
            "enddate": end}


def body(**values: Any) -> IdentityBody:
    base: dict[str, Any] = {"his_patient_id": "P1", "settle_type": "local", "mdtrt_cert_no": "440106199001011234"}
    return IdentityBody.model_validate({**base, **values})


async def test_a_local_patient_choosing_local_insurance_is_verified_by_1101() -> None:
    fake = FakeNational("440106")
    verdict = await service(fake).check(body())
    assert verdict["verified"] is True and verdict["insutype"] == "310" and verdict["area"] == "local"
    assert verdict["insuplc_name"] == "天河区"
    sent = dict(fake.calls)["1101"]["data"]
    assert sent["mdtrt_cert_type"] == "02" and sent["psn_cert_type"] == "01"


async def test_a_type_that_does_not_take_the_patients_insurance_place_is_refused_with_a_suggestion() -> None:
    verdict = await service(FakeNational("440300")).check(body())
    assert verdict["verified"] is False and verdict["reason_code"] == "type_differs"
    assert verdict["suggested"] == "in_province" and verdict["area"] == "province"
    other = await service(FakeNational("110000")).check(body(settle_type="in_province"))
    assert other["suggested"] == "out_of_province"
    assert (await service(FakeNational("110000")).check(body(settle_type="out_of_province")))["verified"] is True


async def test_provincial_insurance_takes_the_provinces_own_level_only() -> None:
    assert (await service(FakeNational("449900")).check(body(settle_type="provincial")))["verified"] is True
    assert (await service(FakeNational("440106")).check(body(settle_type="provincial")))["verified"] is False


async def test_a_type_with_contract_units_needs_one_of_them() -> None:
    refused = await service(FakeNational()).check(body(settle_type="district_direct", contract_unit="别的单位"))
    assert refused["reason_code"] == "contract_unit" and "天河区直" in refused["reason"]
    ok = await service(FakeNational()).check(body(settle_type="district_direct", contract_unit="天河区直"))
    assert ok["verified"] is True


async def test_self_pay_needs_no_1101_and_a_self_pay_visit_never_becomes_insured() -> None:
    fake = FakeNational()
    verdict = await service(fake).check(body(settle_type="self_pay", mdtrt_cert_no=None))
    assert verdict == {"settle_type": "self_pay", "rules_version": "example-2", "verified": True, "insured": False}
    assert fake.calls == []
    refused = await service(fake).check(body(his_visit_id="V1", registered_type="self_pay"))
    assert refused["reason_code"] == "self_pay_to_insurance" and fake.calls == []
    down = await service(fake).check(body(settle_type="self_pay", mdtrt_cert_no=None, his_visit_id="V1",
                                          registered_type="local"))
    assert down["verified"] is True


async def test_the_platform_refusing_or_not_answering_is_told_not_guessed() -> None:
    assert (await service(FakeNational(reject=True)).check(body()))["reason_code"] == "not_insured"
    assert (await service(FakeNational(status="0")).check(body()))["reason_code"] == "not_insured"
    lost = await service(FakeNational(lost=True)).check(body())
    assert lost["reason_code"] == "platform_unavailable" and lost["verified"] is False


async def test_a_different_insurance_place_than_the_patient_named_is_refused() -> None:
    verdict = await service(FakeNational("440300")).check(body(settle_type="in_province", insuplc_admdvs="440500"))
    assert verdict["reason_code"] == "admdvs_differs" and verdict["insuplc_admdvs"] == "440300"


async def test_an_unknown_settlement_type_names_the_known_ones() -> None:
    verdict = await service(FakeNational()).check(body(settle_type="vip"))
    assert verdict["reason_code"] == "unknown_type" and "out_of_province" in verdict["reason"]


def test_a_medical_type_needs_a_certificate() -> None:
    with pytest.raises(ValueError, match="mdtrt_cert_no"):
        body(mdtrt_cert_no=None)


async def test_the_admdvs_tree_comes_from_1901_once_and_skips_invalid_codes() -> None:
    fake = FakeNational()
    svc = service(fake)
    top = await svc.admdvs(None)
    assert [i["code"] for i in top["items"]] == ["110000", "440000"]
    gd = await svc.admdvs("440000")
    assert [(i["code"], i["name"]) for i in gd["items"]] == [("440100", "广州市"), ("440300", "深圳市"),
                                                            ("449900", "广东省省本级")]
    assert gd["parent_name"] == "广东省"
    assert [i["code"] for i in (await svc.admdvs("440100"))["items"]] == ["440106"]
    assert [c for c, _ in fake.calls] == ["1901"]


def test_admdvs_codes_know_their_parents_and_areas() -> None:
    assert parent_of("440106") == "440100" and parent_of("440100") == "440000" and parent_of("440000") is None
    assert parent_of("449900") == "440000"
    assert classify_admdvs("440106", "440100") == "local" and classify_admdvs("440300", "440100") == "province"
    assert classify_admdvs("110000", "440100") == "other"


def test_bad_rules_are_a_configuration_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: x\nlocal_admdvs: '4401'\ntypes: {}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="rules.yaml"):
        load_rules(str(path))


# --- 定点/未定点 (5302) -------------------------------------------------------------------------------------------


def test_a_patient_is_designated_here_only_by_a_valid_row_naming_this_hospital() -> None:
    today = clock.now().date()
    assert designated_here([fixed_at()], HOSPITAL, today) is True
    assert designated_here([fixed_at(end="2999-12-31")], HOSPITAL, today) is True
    assert designated_here([fixed_at("H44010600099")], HOSPITAL, today) is False, "another hospital's 定点"
    assert designated_here([fixed_at(end="2020-12-31", begin="2019-01-01")], HOSPITAL, today) is False, "ended"
    assert designated_here([fixed_at(begin="2999-01-01")], HOSPITAL, today) is False, "not begun"
    assert designated_here([], HOSPITAL, today) is False


def test_choosing_designated_when_the_platform_says_undesignated_is_refused_naming_the_choice() -> None:
    rules = load_rules()
    verdict = decide_designation(rules, "local_designated", False)
    assert verdict["verified"] is False and verdict["reason_code"] == "designation_differs"
    assert "广州医保（定点）" in verdict["reason"] and "广州医保（未定点）" in verdict["reason"]
    assert verdict["suggested"] == "local_undesignated" and verdict["designation"] == "undesignated"


def test_choosing_undesignated_when_the_platform_lists_this_hospital_is_refused_naming_the_choice() -> None:
    verdict = decide_designation(load_rules(), "local_undesignated", True)
    assert verdict["reason_code"] == "designation_differs" and "广州医保（未定点）" in verdict["reason"]
    assert verdict["suggested"] == "local_designated"


def test_the_right_choice_and_the_platform_decided_type_are_not_refused() -> None:
    rules = load_rules()
    assert decide_designation(rules, "local_designated", True) == {"designation": "designated"}
    assert decide_designation(rules, "local_undesignated", False) == {"designation": "undesignated"}
    assert decide_designation(rules, "local", True) == {"designation": "designated"}
    assert decide_designation(rules, "local", False) == {"designation": "undesignated"}


async def test_designated_is_checked_against_5302_with_the_psn_no_1101_named() -> None:
    fake = FakeNational("440106", fixed=[fixed_at()])
    ok = await service(fake).check(body(settle_type="local_designated"))
    assert ok["verified"] is True and ok["designation"] == "designated"
    assert dict(fake.calls)["5302"]["data"] == {"psn_no": "PSN1", "biz_appy_type": "01"}
    refused = await service(FakeNational("440106")).check(body(settle_type="local_designated"))
    assert refused["verified"] is False and refused["reason_code"] == "designation_differs"
    assert refused["suggested"] == "local_undesignated"
    wrong = await service(FakeNational("440106", fixed=[fixed_at()])).check(body(settle_type="local_undesignated"))
    assert wrong["reason_code"] == "designation_differs" and wrong["suggested"] == "local_designated"


async def test_local_insurance_lets_the_platform_decide_designated_or_not() -> None:
    verdict = await service(FakeNational("440106", fixed=[fixed_at()])).check(body(settle_type="local"))
    assert verdict["verified"] is True and verdict["designation"] == "designated"
    verdict = await service(FakeNational("440106")).check(body(settle_type="local"))
    assert verdict["verified"] is True and verdict["designation"] == "undesignated"


async def test_5302_not_answering_is_told_not_guessed() -> None:
    verdict = await service(FakeNational("440106", fixed_lost=True)).check(body(settle_type="local_designated"))
    assert verdict["verified"] is False and verdict["reason_code"] == "platform_unavailable"
    assert "5302" in verdict["reason"]


async def test_other_types_never_ask_5302() -> None:
    fake = FakeNational("440300")
    assert (await service(fake).check(body(settle_type="in_province")))["verified"] is True
    assert "5302" not in dict(fake.calls)


def test_a_type_asking_designation_needs_the_5302_settings(tmp_path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: x\nlocal_admdvs: '440100'\ntypes: {l: {label: L, admdvs: local, designation: ask}}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigurationError, match="rules.yaml"):
        load_rules(str(path))
