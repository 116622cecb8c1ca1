"""next_action as a pure decision over a visit's state and lines: what comes first, what waits until when, what
is refused at a deadline, and the documented unknown-outcome policy of every step."""

from __future__ import annotations

import datetime as _dt

import pytest

from yibao.chains.model import LocalChange, Park, Step, Wait
from yibao.core import clock
from yibao.settlement.state import Parked, load_state, save_state
from yibao.settlement.steps import UNKNOWN_POLICY
from unit.settlement.harness import Harness, Patient


def _decide(h: Harness, p: Patient, *, after_s: float = 0.0):  # type: ignore[no-untyped-def]
    with h.db.begin() as conn:
        visit = h.engine.store.load(conn, p.key)
        assert visit is not None
        return h.chain.next_action(conn, visit, clock.now() + _dt.timedelta(seconds=after_s))


async def test_an_unregistered_visit_waits_for_registration_until_the_prerequisite_deadline(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=600)
    p = await h.outpatient(facts=False)
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    action = _decide(h, p)
    assert isinstance(action, Wait) and action.until is not None
    assert "not registered" in action.reason
    late = _decide(h, p, after_s=601)
    assert isinstance(late, LocalChange) and late.name.startswith("reject:")
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
    assert isinstance(_decide(h, p, after_s=121), LocalChange)


async def test_an_upload_batch_is_frozen_before_it_is_sent(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    first = _decide(h, p)
    assert isinstance(first, LocalChange) and first.name == "freeze an upload batch"
    with h.db.begin() as conn:
        visit = h.engine.store.load(conn, p.key)
        assert visit is not None
        first.apply(conn, visit)
        h.engine.store.save(conn, visit)
    h.line(p, "F2", "10.00")  # arrives meanwhile: not part of the frozen batch
    step = _decide(h, p)
    assert isinstance(step, Step) and step.infno == "2204"
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
    assert isinstance(step, Step) and step.infno == "2207"


async def test_a_rule_hold_parks_the_visit_for_a_person(h: Harness) -> None:
    p = await h.outpatient()
    with h.db.begin() as conn:
        visit = h.engine.store.load(conn, p.key)
        assert visit is not None
        st = load_state(visit)
        st.hold = Parked(reason_code="inconsistent_split", reason="fund + psn_part ≠ medfee")
        save_state(visit, st)
        h.engine.store.save(conn, visit)
    action = _decide(h, p)
    assert isinstance(action, Park) and action.reason_code == "inconsistent_split"
    await h.drain()
    assert h.status(p) == "parked"
    [parked] = h.results(p, "parked")
    assert parked.reason == "fund + psn_part ≠ medfee"
    assert h.state(p).hold is None, "a replay looks again"


@pytest.mark.parametrize("infno", ["2204", "2301", "2205", "2302", "2206", "2303", "2207", "2304", "2208", "2305",
                                   "5203"])
def test_every_step_has_a_documented_unknown_outcome_policy(infno: str) -> None:
    kind, why = UNKNOWN_POLICY[infno]
    assert kind in ("retry", "query", "reverse", "query_then_reverse") and why


def test_settlements_and_refunds_are_never_resent_blindly() -> None:
    for infno in ("2207", "2304", "2208", "2305"):
        assert UNKNOWN_POLICY[infno][0] == "query_then_reverse"
    for infno in ("2204", "2301", "2205", "2302"):
        assert UNKNOWN_POLICY[infno][0] == "query"


async def test_each_step_carries_its_policy_and_what_2601_needs(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    seen: dict[str, Step] = {}
    original = h.engine._execute

    async def spy(visit, step):  # type: ignore[no-untyped-def]
        seen[step.infno] = step
        await original(visit, step)

    h.engine._execute = spy  # type: ignore[method-assign]
    await h.drain()
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert set(seen) == {"2204", "2206", "2207", "2208", "2205"}
    for infno, step in seen.items():
        assert step.unknown.kind == UNKNOWN_POLICY[infno][0]
        assert step.psn_no == p.psn_no and step.insuplc_admdvs == p.person.insuplc_admdvs
        assert len(step.name) <= 64, "the journal's step column"
