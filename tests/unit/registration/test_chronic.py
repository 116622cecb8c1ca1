"""门诊慢特病 (seed 003): the visit's diagnosis decides — 高血压 with a 备案 is settled as 门特 (med_type 14 and the
备案's disease code), 感冒 as ordinary outpatient; the rule is data (yibao.registration.chronic)."""

from __future__ import annotations

import datetime as _dt

from unit.registration.registration_support import Events, Harness, diagnosis
from sqlalchemy import Engine

from yibao.registration import chronic

RULES = chronic.load_rules()
DAY = _dt.date(2026, 3, 2)
HTN = chronic.Filing(opsp_dise_code="M03900", opsp_dise_name="高血压", begndate="2025-01-01")


def test_a_registered_chronic_disease_is_settled_as_mente() -> None:
    decision = chronic.decide(RULES, "11", ["I10.x00"], [HTN], DAY)
    assert decision is not None and decision.chronic
    assert (decision.med_type, decision.dise_codg) == ("14", "M03900")


def test_an_ordinary_diagnosis_is_ordinary_outpatient_even_for_a_chronic_patient() -> None:
    decision = chronic.decide(RULES, "14", ["J06.900"], [HTN], DAY)
    assert decision is not None and (decision.med_type, decision.chronic) == ("11", False)


def test_a_chronic_diagnosis_without_a_filing_is_ordinary() -> None:
    decision = chronic.decide(RULES, "14", ["I10.x00"], [], DAY)
    assert decision is not None and decision.med_type == "11" and not decision.chronic


def test_an_expired_filing_does_not_count() -> None:
    old = HTN.model_copy(update={"enddate": "2025-12-31"})
    assert not chronic.decide(RULES, "11", ["I10.x00"], [old], DAY).chronic  # type: ignore[union-attr]


def test_med_types_the_rules_do_not_cover_are_left_alone() -> None:
    assert chronic.decide(RULES, "13", ["I10.x00"], [HTN], DAY) is None  # 急诊


def test_filings_are_asked_only_when_a_diagnosis_calls_for_them() -> None:
    assert chronic.needs_filings(RULES, "11", ["E11.900"])
    assert not chronic.needs_filings(RULES, "11", ["J06.900"])


async def test_the_chain_asks_5301_once_and_uploads_the_visit_as_mente(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    h.platform.chronic_filings = [{"opsp_dise_code": "M03900", "opsp_dise_name": "高血压", "begndate": "2020-01-01"}]
    ev = Events()
    h.absorb(ev.registered(), ev.visit_info(diagnosis(1, "I10.x00", "高血压")))
    await h.run()
    h.absorb(ev.visit_info(diagnosis(2, "J06.900", "急性上呼吸道感染", main=False)))
    await h.run()
    assert h.platform.infnos().count("5301") == 1
    first = h.platform.inputs["2203"][0]["mdtrtinfo"]
    assert (first["med_type"], first["dise_codg"]) == ("14", "M03900")
    assert h.facts("visit_info_uploaded")[0]["med_type"] == "14"


async def test_an_ordinary_visit_asks_nothing_more(sqlite_engine: Engine) -> None:
    h = Harness(sqlite_engine)
    ev = Events()
    h.absorb(ev.registered(), ev.visit_info(diagnosis(1, "J06.900", "急性上呼吸道感染")))
    await h.run()
    assert "5301" not in h.platform.infnos()
    assert h.platform.inputs["2203"][0]["mdtrtinfo"]["med_type"] == "11"
