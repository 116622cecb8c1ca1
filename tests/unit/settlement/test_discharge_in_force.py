"""A final inpatient settlement (2303 → 2304, mid_setl_flag=0) goes only to a stay the platform holds discharged by
the discharge now in force — never while registration is between a 2405 and the 2402 after it (issue 11: the
short chaos run saw 2304 refused with "order: discharge (2402) before the final settlement").

Each test plays registration's facts in the order that let the final settlement go too early (the platform's side
done on the in-process simulator), and checks what settlement decides in that window — then that the request is
settled once, and HIS never told it was rejected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from yibao.chains.model import Call, Wait

from unit.settlement.harness import Harness, Patient


async def _discharged_with_lines(h: Harness, *amounts: str) -> Patient:
    p = await h.inpatient()
    for n, amount in enumerate(amounts, start=1):
        h.line(p, f"L{n}", amount)
    await h.drain()
    await h.discharge(p, his_request_id="D1")
    return p


def _settled_once(h: Harness, p: Patient, request_id: str, total: str) -> None:
    [r] = h.results(p, "settled")
    assert r.his_request_id == request_id and r.split is not None and r.split.medfee_sumamt == Decimal(total)
    assert not h.results(p, "rejected")
    assert [s.status for s in h.platform_settlements(p) if s.refd_setl_flag == "0"] == ["active"]


async def test_a_final_settlement_waits_for_the_reopening_it_asked_for_even_when_the_stay_is_discharged_again_another_way(
        h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    h.line(p, "L2", "30.00")  # charged before the discharge, arrived after it
    h.settle(p, "S1", "130.00")
    await h.drain()
    assert [f.his_request_id for f in h.facts(p, "reopen_requested")] == ["S1"]
    # HIS's own 取消出院 and discharge get there before registration serves the reopening (they are ahead of it in
    # HIS order): the stay is open, L2 goes up, and the stay is discharged again — by HIS's discharge D2
    await h.cancel_discharge(p, his_request_id="C1")
    await h.drain()
    assert h.lines(p)["L2"] == "uploaded"
    await h.discharge(p, his_request_id="D2")
    await h.drain()
    # every line is up and the stay is discharged — but registration's 2405 for S1 is still to come: a 2303/2304
    # now would race it (the platform refuses the 2304 once the 2405 got between)
    decided = h.decide(p)
    assert isinstance(decided, Wait) and "reopened" in decided.reason, decided
    assert "2303" not in h.client.infnos()
    # registration's reopening for S1: 2405, discharge_requested, 2402 naming S1
    await h.cancel_discharge(p, his_request_id="S1")
    h.fact(p, "discharge_requested", his_request_id="S1")
    await h.drain()
    assert [f.his_request_id for f in h.facts(p, "ready_for_discharge")][-1] == "S1"
    await h.discharge(p, his_request_id="S1")
    await h.drain()
    _settled_once(h, p, "S1", "130.00")


async def test_the_close_of_a_cancelled_discharge_does_not_let_the_final_settlement_go_before_its_discharge_cancelled(
        h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    h.fact(p, "unwind_requested", his_request_id="C1", unwind="discharge")  # HIS's 取消出院
    await h.drain()
    assert [f.kind for f in h.facts(p) if f.his_request_id == "C1"] == ["unwound"]
    h.settle(p, "S1", "100.00")  # the cashier settles meanwhile (it waits for the discharge sent again)
    await h.drain()
    assert "2303" not in h.client.infnos()
    # registration: 2405 done; an earlier registration said request_closed before discharge_cancelled, and a
    # consumer poll may end between the two facts
    await h.cancel_discharge(p, fact=False)
    h.fact(p, "request_closed", his_request_id="C1")
    decided = h.decide(p)
    assert not isinstance(decided, Call), f"{decided} — to a stay the platform holds in the ward"
    await h.drain()
    assert "2303" not in h.client.infnos() and not h.results(p, "rejected")
    h.fact(p, "discharge_cancelled", his_request_id="C1")
    await h.drain()
    await h.discharge(p, his_request_id="D2")
    await h.drain()
    _settled_once(h, p, "S1", "100.00")


async def test_a_refused_close_of_a_discharge_cancellation_still_releases_the_final_settlement(h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    h.fact(p, "unwind_requested", his_request_id="C1", unwind="discharge")
    await h.drain()
    h.settle(p, "S1", "100.00")
    await h.drain()
    h.fact(p, "request_closed", his_request_id="C1", reason="2405 refused: 不能撤销出院")  # nothing was cancelled
    await h.drain()
    _settled_once(h, p, "S1", "100.00")


def _cancel_discharge_before(h: Harness, p: Patient, infno: str) -> None:
    """The platform's stay goes back to the ward (a 2405 settlement has not heard of yet) just before ``infno``."""
    original = h.client.call
    done: list[bool] = []

    async def call(name: str, body: dict[str, Any], **kw: Any) -> Any:
        if name == infno and not done:
            done.append(True)
            await original("2405", {"data": {"mdtrt_id": p.mdtrt_id, "psn_no": p.psn_no}},
                           insuplc_admdvs=p.person.insuplc_admdvs)
        return await original(name, body, **kw)

    h.client.call = call  # type: ignore[method-assign]


async def test_a_2304_refused_because_the_stay_is_not_discharged_waits_for_the_discharge_and_is_not_rejected_to_his(
        h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    _cancel_discharge_before(h, p, "2304")
    h.settle(p, "S1", "100.00")
    await h.drain()
    assert h.client.infnos()[-3:] == ["2303", "2405", "2304"]
    [presettled] = h.results(p, "presettled")
    assert not h.results(p, "rejected"), "retryable once discharged again: HIS is not told it failed"
    [r] = [x for x in h.state(p).requests if x.id == "S1"]
    assert r.phase == "waiting" and r.not_discharged_at is not None
    assert "discharge (2402) before the final settlement" in (r.not_discharged_reason or "")
    decided = h.decide(p)
    assert isinstance(decided, Wait) and "not discharged" in decided.reason
    # registration: the stay is in the ward, then discharged again
    h.fact(p, "discharge_cancelled", his_request_id="C1")
    await h.discharge(p, his_request_id="D2")
    await h.drain()
    _settled_once(h, p, "S1", "100.00")


async def test_a_2303_refused_because_the_stay_is_not_discharged_waits_for_the_discharge_too(h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    _cancel_discharge_before(h, p, "2303")
    h.settle(p, "S1", "100.00")
    await h.drain()
    assert not h.results(p, "rejected") and not h.results(p, "presettled")
    await h.discharge(p, his_request_id="D2")
    await h.drain()
    _settled_once(h, p, "S1", "100.00")


async def test_a_final_settlement_refused_as_not_discharged_is_rejected_not_ready_when_no_discharge_follows(
        make_h: Any) -> None:
    h = make_h(prerequisite_wait_s=0)
    p = await _discharged_with_lines(h, "100.00")
    _cancel_discharge_before(h, p, "2304")
    h.settle(p, "S1", "100.00")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "not_ready" and "not discharged" in (r.reason or "")
    assert "discharge (2402) before the final settlement" in (r.reason or "")


async def test_a_reopening_registration_finds_not_needed_leaves_the_final_settlement_waiting_for_the_discharge(
        h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    h.line(p, "L2", "30.00")
    h.settle(p, "S1", "130.00")
    await h.drain()
    # HIS cancelled the discharge before registration got to the reopening: nothing to reopen
    await h.cancel_discharge(p, his_request_id="C1")
    h.fact(p, "reopen_not_needed", his_request_id="S1", reason="the stay is not discharged on the platform")
    await h.drain()
    assert h.lines(p)["L2"] == "uploaded" and not h.results(p, "rejected")
    await h.discharge(p, his_request_id="D2")  # HIS discharges again
    await h.drain()
    _settled_once(h, p, "S1", "130.00")


async def test_a_reopening_asked_again_after_the_first_ended_is_a_message_of_its_own(h: Harness) -> None:
    p = await _discharged_with_lines(h, "100.00")
    h.line(p, "L2", "30.00")
    h.settle(p, "S1", "130.00")
    await h.drain()
    # the first reopening ended without reopening anything, and the stay is (again) discharged with L2 not up
    h.fact(p, "reopen_not_needed", his_request_id="S1")
    await h.drain()
    asks = h.facts(p, "reopen_requested")
    assert [f.his_request_id for f in asks] == ["S1", "S1"]
    assert len({f.message_id for f in asks}) == 2, "a copy would be dropped by registration's inbox"


async def test_the_discharge_ending_a_reopening_is_answered_even_behind_a_his_cancellation_registration_serves_after_it(
        h: Harness) -> None:
    import datetime as _dt

    from unit.settlement import his_events as ev
    from yibao.core import clock

    p = await _discharged_with_lines(h, "100.00")
    h.line(p, "L2", "30.00")
    h.settle(p, "S1", "130.00")
    await h.drain()
    # registration started the reopening (2405) before it read HIS's 取消出院, dated before the cashier's request:
    # settlement queues that cancellation ahead of S1, and registration serves it only after the reopening
    h.his(ev.cancellation(p.key, p.kind, "C1", occurred_at=clock.now() - _dt.timedelta(minutes=5)))
    await h.cancel_discharge(p, his_request_id="S1")
    h.fact(p, "discharge_requested", his_request_id="S1")
    await h.drain()
    assert h.lines(p)["L2"] == "uploaded"
    assert [f.his_request_id for f in h.facts(p, "ready_for_discharge")][-1] == "S1", "both services would wait"
    await h.discharge(p, his_request_id="S1")
    await h.drain()
    assert "2303" not in h.client.infnos(), "HIS cancelled the discharge before it settled: that comes first"
    # registration then serves HIS's 取消出院 and the discharge after it
    h.fact(p, "unwind_requested", his_request_id="C1", unwind="discharge")
    await h.drain()
    assert [f.kind for f in h.facts(p) if f.his_request_id == "C1"] == ["unwound"]
    await h.cancel_discharge(p, his_request_id="C1")
    h.fact(p, "request_closed", his_request_id="C1")
    await h.drain()
    await h.discharge(p, his_request_id="D2")
    await h.drain()
    _settled_once(h, p, "S1", "130.00")
