"""Which HIS request a HisResult answers (the audit of the demo and the e2e tests)."""

from __future__ import annotations

from yibao.core.results import HisResult
from yibao.stack.audit import Answers


def _settled(visit: str, request: str, *, detail: dict | None = None, message_id: str = "m1") -> HisResult:
    return HisResult(message_id=message_id, his_visit_id=visit, visit_kind="outpatient", kind="settled",
                     service="settlement", his_request_id=request, detail=detail)


def test_a_settlement_is_answered_on_the_visit_it_was_asked_on() -> None:
    answers = Answers([_settled("V1", "S1")])
    assert answers.unexpected({"settlement": {("V1", "S1")}}) == []


def test_a_hemodialysis_sheet_asked_on_the_outpatient_visit_is_answered_on_the_inpatient_account() -> None:
    backfilled = _settled("A9", "S1", detail={"hemodialysis": {"outpatient_visit_id": "V1",
                                                                "inpatient_visit_id": "A9"}})
    answers = Answers([backfilled])
    assert answers.answer("settlement", ("V1", "S1")) is backfilled
    assert answers.unexpected({"settlement": {("V1", "S1")}}) == []


def test_a_request_answered_by_two_different_results_is_reported_twice_answered() -> None:
    answers = Answers([_settled("V1", "S1"), _settled("V1", "S1", message_id="m2")])
    assert answers.unexpected({"settlement": {("V1", "S1")}}) == ["settlement ('V1', 'S1'): answered 2 times"]
