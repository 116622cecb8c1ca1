"""Lost answers are resolved by the documented policy before anything else happens to the visit: nothing is
uploaded, settled or refunded twice, and HIS hears about each settlement exactly once."""

from __future__ import annotations


import pytest
from sqlalchemy import update


from yibao.core import clock
from yibao.core.db.schema import chain_visits
from unit.settlement.harness import Harness, Patient


async def _settled_visit(h: Harness, total: str = "40.00") -> Patient:
    p = await h.outpatient()
    h.line(p, "F1", total)
    h.settle(p, "S1", total)
    await h.drain()
    return p


async def test_a_lost_2204_answer_is_adopted_from_5204_not_uploaded_again(h: Harness) -> None:
    p = await h.outpatient()
    h.client.fail("2204", "lose")
    h.line(p, "F1", "10.00")
    await h.drain()
    assert h.client.infnos().count("2204") == 1 and "5204" in h.client.infnos()
    assert ("2204", "resolved", "adopted") in h.journal(p)
    assert h.lines(p) == {"F1": "uploaded"}


async def test_a_2204_that_never_arrived_is_uploaded_again(h: Harness) -> None:
    p = await h.outpatient()
    h.client.fail("2204", "reset")
    h.line(p, "F1", "10.00")
    await h.drain()
    assert ("2204", "resolved", "absent") in h.journal(p)
    assert h.platform_details(p) == {"F1": "uploaded"}


async def test_a_settlement_done_but_unheard_is_adopted_and_confirmed_never_sent_twice(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.client.fail("2207", "lose")
    h.settle(p, "S1", "40.00")
    await h.drain()
    assert h.client.infnos().count("2207") == 1
    assert h.client.infnos()[-2:] == ["5204", "5203"]
    assert ("2207", "resolved", "adopted") in h.journal(p)
    [settled] = h.results(p, "settled")
    [platform] = h.platform_settlements(p)
    assert (settled.setl_id, settled.msgid) == (platform.setl_id, platform.msgid)
    assert settled.split is not None and settled.split.medfee_sumamt == platform.amounts["medfee_sumamt"]


async def test_a_settlement_that_never_arrived_is_reversed_then_sent_again(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.client.fail("2207", "reset")
    h.settle(p, "S1", "40.00")
    await h.drain()
    assert ("2207", "resolved", "nothing_done") in h.journal(p)
    assert h.client.infnos().count("2601") == 1
    assert [j for j in h.journal(p) if j[0] == "2207"] == [("2207", "resolved", "nothing_done"), ("2207", "ok", None)]
    assert [s.status for s in h.platform_settlements(p)] == ["active"]
    assert len(h.results(p, "settled")) == 1


async def test_a_refund_done_but_unheard_is_adopted_from_5203(h: Harness) -> None:
    p = await _settled_visit(h)
    h.client.fail("2208", "lose")
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert h.client.infnos().count("2208") == 1
    assert ("2208", "resolved", "adopted") in h.journal(p)
    [refunded] = h.results(p, "refunded")
    cancellation = next(s for s in h.platform_settlements(p) if s.refd_setl_flag == "1")
    assert (refunded.setl_id, refunded.msgid) == (cancellation.setl_id, cancellation.msgid)
    assert h.platform_details(p) == {"F1": "revoked"}


async def test_a_refund_that_never_arrived_is_reversed_then_sent_again(h: Harness) -> None:
    p = await _settled_visit(h)
    h.client.fail("2208", "reset")
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert [j for j in h.journal(p) if j[0] == "2208"] == [("2208", "resolved", "nothing_done"), ("2208", "ok", None)]
    assert [s.refd_setl_flag for s in h.platform_settlements(p)] == ["0", "1"]
    assert len(h.results(p, "refunded")) == 1


async def test_a_lost_2205_answer_is_resolved_by_5204(h: Harness) -> None:
    p = await _settled_visit(h)
    h.client.fail("2205", "lose")
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert ("2205", "resolved", "adopted") in h.journal(p)
    assert h.lines(p) == {"F1": "withdrawn"}


async def test_a_lost_presettlement_is_simply_sent_again(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.client.fail("2206", "lose")
    h.settle(p, "S1", "40.00")
    await h.drain()
    assert ("2206", "resolved", "retried") in h.journal(p)
    assert len(h.results(p, "settled")) == 1


async def test_a_worker_killed_mid_settlement_resolves_the_call_on_the_next_drive(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.client.fail("2207", "crash")
    h.settle(p, "S1", "40.00")
    # the driver's task dies with the call in flight; it lets go of the visit, and the next drive finds the call
    # in the journal, its outcome unknown: looked up, adopted, never sent again
    await h.drain()
    assert [j for j in h.journal(p) if j[0] == "2207"] == [("2207", "resolved", "adopted")]
    assert len(h.platform_settlements(p)) == 1 and len(h.results(p, "settled")) == 1


async def test_transport_failures_back_off_then_park_and_a_replay_finishes(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.client.fail("2206", *["transport"] * 4)
    h.settle(p, "S1", "40.00")
    for _ in range(6):
        with h.db.begin() as conn:  # the backoff delays are over
            conn.execute(update(chain_visits).where(chain_visits.c.status == "waiting")
                         .values(next_attempt_at=clock.now()))
        await h.drain()
    assert h.status(p) == "parked"
    [parked] = h.results(p, "parked")
    assert parked.his_request_id == "S1" and parked.reason_code == "exhausted"
    with h.db.begin() as conn:
        assert h.engine.store.unpark(conn, p.key) == 1
    await h.drain()
    assert len(h.results(p, "settled")) == 1
