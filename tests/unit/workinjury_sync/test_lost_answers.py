"""Every lost answer is resolved with GYD053 (通用交易查询) by the lost call's own serial before anything is sent
again: adopted when the platform did it, sent again when it did not — nothing uploaded twice."""

from __future__ import annotations

import pytest

from unit.workinjury_sync.harness import ORG, Harness
from yibao.workinjury_sync.engine import bind_lost_serial
from yibao.workinjury_sync.steps.common import LOST_SERIAL, lookup


async def _filed(h: Harness):  # type: ignore[no-untyped-def]
    p = h.month.patients[0]
    return p, h.approved_filing(p)


async def test_a_lost_admission_answer_is_adopted_from_gyd053_and_never_sent_twice(h: Harness) -> None:
    p, filing_no = await _filed(h)
    h.transport.faults["GYU101"] = ["lose"]
    h.his(h.month.admitted(p, filing_no, h.now()))
    await h.drain()
    assert h.sim.workinjury.calls["GYU101"] == 1
    journal = h.journal(f"stay:{p.stay_id}")
    assert journal[:2] == [("GYU101", "step", "resolved", "adopted"), ("GYD053", "query", "ok", None)]
    (result,) = h.results(f"stay:{p.stay_id}")
    assert result.kind == "uploaded" and result.trans_no  # the lost call's serial, as HIS would have had it


async def test_the_lookup_asks_for_the_lost_calls_own_serial(h: Harness) -> None:
    p, filing_no = await _filed(h)
    h.transport.faults["GYU101"] = ["lose"]
    h.his(h.month.admitted(p, filing_no, h.now()))
    await h.drain()
    (lost,) = [t for t, r in h.sim.workinjury.journal.items() if r.infno == "GYU101"]
    assert h.results(f"stay:{p.stay_id}")[0].trans_no == lost


async def test_a_call_that_never_arrived_is_found_absent_and_sent_again(h: Harness) -> None:
    p, filing_no = await _filed(h)
    h.transport.faults["GYU101"] = ["reset"]
    h.his(h.month.admitted(p, filing_no, h.now()))
    await h.drain()
    assert h.sim.workinjury.calls["GYU101"] == 1 and h.transport.sent.count("GYU101") == 2
    assert ("GYU101", "step", "resolved", "absent") in h.journal(f"stay:{p.stay_id}")
    assert h.sim.workinjury.admissions[(ORG, p.ipt_no)]["status"] == "active"


@pytest.mark.parametrize("infno", ["GYU102", "GYU103", "GYU004"])
async def test_lost_answers_of_lines_settlements_and_deductions_are_adopted(h: Harness, infno: str) -> None:
    from decimal import Decimal

    p, filing_no = await _filed(h)
    h.transport.faults[infno] = ["lose"]
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    h.his(h.month.deduction(p, Decimal("10.00"), h.now(), deduct_no="KK1"))
    await h.drain()
    assert h.transport.sent.count(infno) == 1
    assert (infno, "step", "resolved", "adopted") in h.journal(f"stay:{p.stay_id}")
    assert {r.kind for r in h.results(f"stay:{p.stay_id}")} == {"uploaded"}
    assert h.sim.workinjury.settlements[p.setl_no]["status"] == "active"


async def test_a_lost_revocation_answer_is_adopted(h: Harness) -> None:
    p, filing_no = await _filed(h)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    await h.drain()
    h.transport.faults["GYR001"] = ["lose"]
    h.his(h.month.revocation(p, "details", h.now()))
    await h.drain()
    assert h.transport.sent.count("GYR001") == 1
    assert h.results(f"stay:{p.stay_id}", request="revocation")[0].kind == "revoked"


async def test_a_platform_that_keeps_losing_answers_parks_the_case_and_his_is_told(make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(engine={"max_attempts": 3})
    p, filing_no = await _filed(h)
    h.transport.faults["GYU101"] = ["reset"] * 10
    h.transport.faults["GYD053"] = ["reset"] * 10
    h.his(h.month.admitted(p, filing_no, h.now()))
    await h.drain()
    assert h.status(f"stay:{p.stay_id}") == "parked"
    assert [r.kind for r in h.results(f"stay:{p.stay_id}")] == ["parked"]


def test_every_lookup_is_the_catalogs_query_with_the_lost_serial(h: Harness) -> None:
    for spec in h.config.catalog:
        if spec.resolution == "query":
            assert lookup(spec.infno).infno == spec.lost_answer.query == "GYD053"
            body = bind_lost_serial(lookup(spec.infno).input, "H44010600001202611011200000001")
            h.config.catalog.prepare_input("GYD053", body)  # a valid GYD053
            assert body["data"] == {"trans_code": spec.infno, "trans_no": "H44010600001202611011200000001"}


def test_the_placeholder_is_replaced_anywhere_in_the_body() -> None:
    assert bind_lost_serial({"a": [LOST_SERIAL, {"b": LOST_SERIAL}], "c": "x"}, "S1") == \
        {"a": ["S1", {"b": "S1"}], "c": "x"}


def test_an_adopted_answer_must_be_a_success_of_that_transaction() -> None:
    found = lookup("GYU101").found
    assert found({"infcode": "0", "trans_code": "GYU101", "output": {"result": []}}, "S") == {"result": []}
    assert found({"infcode": "-1", "trans_code": "GYU101", "output": {}}, "S") is None
    assert found({"infcode": "0", "trans_code": "GYU102", "output": {}}, "S") is None
