"""next_action as a pure decision over a visit's state and lines: what comes first, what waits until when, what
is refused at a deadline, and the documented unknown-outcome policy of every step."""

from __future__ import annotations

import datetime as _dt

import pytest

from yibao.chains.model import Call, Change, Park, Wait
from yibao.core import clock
from yibao.envelope.catalog import Catalog
from yibao.settlement.state import Parked
from unit.settlement.harness import Harness, Patient

CATALOG = Catalog.load(None)


def _decide(h: Harness, p: Patient, *, after_s: float = 0.0):  # type: ignore[no-untyped-def]
    return h.decide(p, after_s=after_s)


async def test_an_unregistered_visit_waits_for_registration_until_the_prerequisite_deadline(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=600)
    p = await h.outpatient(facts=False)
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    action = _decide(h, p)
    assert isinstance(action, Wait) and action.until is not None
    assert "not registered" in action.reason
    late = _decide(h, p, after_s=601)
    assert isinstance(late, Change) and late.name.startswith("reject:")
    await h.drain()
    assert h.results(p, "rejected") == []  # not yet: the deadline is in the future for the engine


async def test_a_settlement_waits_for_missing_lines_with_a_deadline(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(lines_wait_s=120)
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "25.00")
    await h.drain()
    action = _decide(h, p)
    assert isinstance(action, Wait) and action.reason == "waiting for charge lines: HIS total 25.00, uploaded 10.00"
    assert action.until is not None and action.until - clock.now() <= _dt.timedelta(seconds=120)
    assert isinstance(_decide(h, p, after_s=121), Change)


async def test_an_upload_batch_is_frozen_before_it_is_sent(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    first = _decide(h, p)
    assert isinstance(first, Change) and first.name == "freeze an upload batch" and first.gathers
    h.edit(p, first.apply)
    h.line(p, "F2", "10.00")  # arrives meanwhile: not part of the frozen batch
    step = _decide(h, p)
    assert isinstance(step, Call) and step.infno == "2204"
    assert [row["feedetl_sn"] for row in step.input["feedetail"]] == ["F1"]
    assert step.name == _decide(h, p).name, "the same step is chosen again until it is answered"


async def test_decided_work_comes_before_anything_else(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(engine={"retry_backoff_s": 600.0})
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    h.client.fail("2207", "transport")
    await h.drain()  # 2207 not sent: the request stays presettled, backing off
    h.line(p, "F2", "99.00")  # a new line must not go up between 2206 and 2207
    step = _decide(h, p)
    assert isinstance(step, Call) and step.infno == "2207"


async def test_a_rule_hold_parks_the_visit_for_a_person(h: Harness) -> None:
    p = await h.outpatient()

    def hold(st, fx):  # type: ignore[no-untyped-def]
        st.hold = Parked(reason_code="inconsistent_split", reason="fund + psn_part ≠ medfee")

    h.edit(p, hold)
    action = _decide(h, p)
    assert isinstance(action, Park) and action.reason_code == "inconsistent_split"
    await h.drain()
    assert h.status(p) == "parked"
    [parked] = h.results(p, "parked")
    assert parked.reason == "fund + psn_part ≠ medfee"
    assert h.state(p).hold is None, "a replay looks again"


@pytest.mark.parametrize("infno", ["2204", "2301", "2205", "2302", "2206", "2303", "2207", "2304", "2208", "2305",
                                   "5203"])
def test_every_call_has_a_way_to_resolve_a_lost_answer_in_the_catalog(infno: str) -> None:
    spec = CATALOG.transaction(infno)
    assert spec.resolution != "manual"
    assert spec.retry_safe or (spec.lost_answer is not None and spec.lost_answer.why)


def test_settlements_and_refunds_are_never_resent_blindly() -> None:
    for infno in ("2207", "2304", "2208", "2305"):
        assert CATALOG.transaction(infno).resolution == "query_then_reverse"
    for infno in ("2204", "2301", "2205", "2302"):
        assert CATALOG.transaction(infno).resolution == "query"


async def test_each_call_gives_the_catalogs_lookup_and_what_2601_needs(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    seen: dict[str, Call] = {}
    original = h.engine._send

    async def spy(key, send):  # type: ignore[no-untyped-def]
        if send.purpose == "step":
            seen[send.infno] = send.call
        return await original(key, send)

    h.engine._send = spy  # type: ignore[method-assign]
    await h.drain()
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert set(seen) == {"2204", "2206", "2207", "2208", "2205"}
    for infno, call in seen.items():
        spec = CATALOG.transaction(infno)
        if spec.resolution in ("query", "query_then_reverse"):
            assert call.lookup is not None and spec.lost_answer is not None
            assert call.lookup.infno == spec.lost_answer.query
            CATALOG.prepare_input(call.lookup.infno, call.lookup.input)
        assert call.psn_no == p.psn_no and call.insuplc_admdvs == p.person.insuplc_admdvs
        assert len(call.name) <= 64, "the journal's step column"
