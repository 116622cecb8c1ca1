"""Inpatient chain on the real engine against the simulator's rules (in-process): details as they arrive,
final and 中途 settlements, refunds latest first, unwinds in reverse business order."""

from __future__ import annotations

from decimal import Decimal

from unit.settlement.harness import Harness, Patient


async def _admitted_with_lines(h: Harness, *amounts: str) -> Patient:
    p = await h.inpatient()
    for n, amount in enumerate(amounts, start=1):
        h.line(p, f"L{n}", amount)
    await h.drain()
    return p


async def test_details_go_up_as_they_arrive_and_the_final_settlement_follows_the_discharge(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00", "50.00")
    assert h.platform_details(p) == {"L1": "uploaded", "L2": "uploaded"}
    h.settle(p, "S1", "150.00")
    await h.drain()
    assert "2303" not in h.client.infnos(), "a final settlement waits for the discharge"
    await h.discharge(p)
    await h.drain()
    assert h.client.infnos()[-2:] == ["2303", "2304"]
    [r] = h.results(p, "settled")
    assert (r.clr_type, r.mid_setl_flag, r.split.medfee_sumamt if r.split else None) == ("21", "0", Decimal("150.00"))
    assert h.lines(p) == {"L1": "settled", "L2": "settled"}


async def test_a_reversal_of_an_uploaded_inpatient_line_goes_up_as_a_negative_line(h: Harness) -> None:
    p = await h.inpatient()
    original = h.line(p, "L1", "60.00", cnt="3")
    await h.drain()
    h.reversal(p, "L2", original, cnt="1")
    await h.drain()
    detail = h.sim.ledger.visits[p.mdtrt_id].details["L2"]
    assert (detail.init_feedetl_sn, detail.cnt, detail.det_item_fee_sumamt) == ("L1", Decimal("-1"), Decimal("-20.00"))
    await h.discharge(p)
    h.settle(p, "S1", "40.00")
    await h.drain()
    assert len(h.results(p, "settled")) == 1


async def test_mid_settlement_while_admitted_then_the_final_one(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    h.line(p, "L2", "30.00")
    await h.drain()
    await h.discharge(p)
    h.settle(p, "S1", "30.00")
    await h.drain()
    settled = h.results(p, "settled")
    assert [(r.his_request_id, r.mid_setl_flag) for r in settled] == [("M1", "1"), ("S1", "0")]
    assert h.lines(p) == {"L1": "settled", "L2": "settled"}


async def test_a_mid_settlement_after_the_discharge_is_refused_out_of_order(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "out_of_order" and "2303" not in h.client.infnos()


async def test_refunds_go_latest_first_and_a_mid_settlement_only_after_2405(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    h.settle(p, "M1", "100.00", mid="1")
    await h.drain()
    h.line(p, "L2", "30.00")
    await h.drain()
    await h.discharge(p)
    h.settle(p, "S1", "30.00")
    await h.drain()
    h.refund(p, "R1", of="M1")  # skips the final settlement
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.his_request_id == "R1" and r.reason_code == "out_of_order" and "latest first" in (r.reason or "")
    h.refund(p, "R2", of="S1")
    await h.drain()
    assert [x.his_request_id for x in h.results(p, "refunded")] == ["R2"]
    assert h.lines(p) == {"L1": "settled", "L2": "uploaded"}, "2305 leaves the details on the platform, unsettled"
    h.refund(p, "R3", of="M1")  # still discharged
    await h.drain()
    assert h.results(p, "rejected")[-1].reason_code == "out_of_order"
    await h.cancel_discharge(p)
    h.refund(p, "R4", of="M1")
    await h.drain()
    assert [x.his_request_id for x in h.results(p, "refunded")] == ["R2", "R4"]
    assert [s.status for s in h.platform_settlements(p) if s.refd_setl_flag == "0"] == ["cancelled", "cancelled"]


async def test_lines_after_the_discharge_reopen_the_stay_then_the_final_settlement_follows(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.line(p, "L2", "30.00")  # charged before the discharge, arrived after it
    h.settle(p, "S1", "130.00")
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "S1" and "1 charge lines arrived after the discharge" in (asked.reason or "")
    assert h.lines(p)["L2"] == "pending" and not h.results(p, "rejected")
    await h.cancel_discharge(p)  # registration: 2405
    await h.drain()
    assert h.lines(p)["L2"] == "uploaded"
    h.fact(p, "discharge_requested", his_request_id="S1")  # registration, before 2402 again
    await h.drain()
    [ready] = h.facts(p, "ready_for_discharge")
    assert ready.his_request_id == "S1"
    await h.discharge(p, his_request_id="S1")  # registration: 2402, ending the reopening S1 asked for
    await h.drain()
    [r] = h.results(p, "settled")
    assert r.his_request_id == "S1" and r.split is not None and r.split.medfee_sumamt == Decimal("130.00")


async def test_a_stay_registration_could_not_reopen_rejects_the_settlement_with_the_reason(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.line(p, "L2", "30.00")
    h.settle(p, "S1", "130.00")
    await h.drain()
    h.fact(p, "reopen_failed", his_request_id="S1", reason="2405 refused: 已出院结算")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "lines_after_discharge" and "已出院结算" in (r.reason or "")


async def test_lines_still_missing_after_the_discharge_are_named_when_the_settlement_is_rejected(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(lines_wait_s=0)
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.line(p, "L2", "30.00")
    h.settle(p, "S1", "150.00")  # L3 (20.00) never comes
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "lines_missing" and not h.facts(p, "reopen_requested")
    assert r.reason == ("charge lines missing: HIS total 150.00, received 130.00; 1 lines arrived after the "
                        "discharge (2402): cancel the discharge (2405) to upload them")


async def test_a_discharge_is_answered_once_every_line_that_arrived_is_uploaded(h: Harness) -> None:
    p = await h.inpatient()
    h.line(p, "L1", "40.00")
    h.fact(p, "discharge_requested", his_request_id="D1")  # both absorbed before the chain looks
    await h.drain()
    assert h.platform_details(p) == {"L1": "uploaded"}
    [ready] = h.facts(p, "ready_for_discharge")
    assert ready.his_request_id == "D1" and ready.reason is None
    h.line(p, "L2", "10.00")  # between the answer and 2402: kept back, 2301 would race the discharge
    await h.drain()
    assert h.lines(p)["L2"] == "pending" and "L2" not in h.platform_details(p)


async def test_a_discharge_asked_before_settlement_read_it_waits_for_the_lines_before_it(h: Harness) -> None:
    from yibao.hisevents.models import Discharge

    p = await h.inpatient()
    h.line(p, "L1", "40.00")
    late = h.line(p, "L2", "10.00", send=False)  # charged before the discharge, still in settlement's backlog
    discharge = Discharge(**h._base(p), endtime=h._base(p)["occurred_at"], dscg_way="1")
    h.fact(p, "discharge_requested", his_request_id=discharge.event_id, occurred_at=discharge.occurred_at,
           on_his_events=True)
    await h.drain()
    assert not h.facts(p, "ready_for_discharge")  # 2402 now would leave L2 to a reopening
    h.his(late)
    h.his(discharge)
    await h.drain()
    assert h.platform_details(p) == {"L1": "uploaded", "L2": "uploaded"}
    [ready] = h.facts(p, "ready_for_discharge")
    assert ready.his_request_id == discharge.event_id


async def test_a_discharge_waits_behind_an_earlier_mid_settlement(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    late = h.line(p, "L2", "50.00", send=False)  # charged before the 中途结算, still on its way
    h.settle(p, "M1", "150.00", mid="1")
    await h.drain()
    h.fact(p, "discharge_requested", his_request_id="D1")
    await h.drain()
    assert not h.facts(p, "ready_for_discharge"), "2402 before the 中途结算 would make it impossible"
    h.his(late)
    await h.drain()
    assert [r.his_request_id for r in h.results(p, "settled")] == ["M1"]
    assert len(h.facts(p, "ready_for_discharge")) == 1


async def test_a_parked_visit_answers_the_discharge_so_registration_does_not_wait(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(order_window_s=600.0)  # the discharge request is still waiting for its turn when the visit parks
    p = await _admitted_with_lines(h, "100.00")
    h.fact(p, "discharge_requested", his_request_id="D1")
    h.edit(p, lambda st, fx: h.chain.on_parked(st, fx, "exhausted", "gave up"))
    [ready] = h.facts(p, "ready_for_discharge")
    assert ready.his_request_id == "D1" and "parked" in (ready.reason or "")


async def test_unwinding_a_discharge_is_refused_while_the_final_settlement_is_active(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # past the wait for HIS requests before a cancellation
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.settle(p, "S1", "100.00")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="discharge", his_request_id="C1")
    await h.drain()
    [refused] = h.facts(p, "unwind_refused")
    assert refused.reason is not None and "2305" in refused.reason
    h.refund(p, "R1", of="S1")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="discharge", his_request_id="C1")
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1


async def test_an_agreed_unwind_of_the_discharge_holds_the_final_settlement_until_it_is_discharged_again(
        h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.fact(p, "unwind_requested", unwind="discharge", his_request_id="C1")  # a late admission change, say
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1
    h.settle(p, "S1", "100.00")  # HIS settles while registration is cancelling the discharge (2405)
    await h.drain()
    assert h.results(p, "settled") == [] and "2303" not in h.client.infnos(), "never racing the 2405"
    await h.cancel_discharge(p)  # registration's 2405 … 2403 … then the discharge again
    await h.discharge(p)
    await h.drain()
    assert [r.his_request_id for r in h.results(p, "settled")] == ["S1"]


async def test_unwinding_an_admission_revokes_its_details_with_2302(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # past the wait for HIS requests before a cancellation
    p = await _admitted_with_lines(h, "100.00", "20.00")
    h.fact(p, "unwind_requested", unwind="admission", his_request_id="C1")
    await h.drain()
    assert h.client.infnos()[-1] == "2302"
    assert set(h.platform_details(p).values()) == {"revoked"}
    assert len(h.facts(p, "unwound")) == 1


async def test_unwinding_an_admission_while_discharged_is_refused(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # past the wait for HIS requests before a cancellation
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.fact(p, "unwind_requested", unwind="admission", his_request_id="C1")
    await h.drain()
    [refused] = h.facts(p, "unwind_refused")
    assert refused.reason is not None and "2405" in refused.reason


async def test_a_lost_2304_answer_is_adopted_and_a_lost_2305_too(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    await h.discharge(p)
    h.client.fail("2304", "lose")
    h.settle(p, "S1", "100.00")
    await h.drain()
    assert ("2304", "resolved", "adopted") in h.journal(p)
    h.client.fail("2305", "lose")
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert ("2305", "resolved", "adopted") in h.journal(p)
    assert len(h.results(p, "settled")) == 1 and len(h.results(p, "refunded")) == 1
    assert [s.refd_setl_flag for s in h.platform_settlements(p)] == ["0", "1"]


async def test_a_lost_2301_answer_is_adopted(h: Harness) -> None:
    p = await h.inpatient()
    h.client.fail("2301", "lose")
    h.line(p, "L1", "10.00")
    await h.drain()
    assert ("2301", "resolved", "adopted") in h.journal(p)
    assert h.client.infnos().count("2301") == 1


async def test_a_mid_settlement_overtaken_by_the_discharge_reopens_the_stay_and_is_made_before_it(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    mid = h.settle(p, "M1", "100.00", mid="1", send=False)  # asked in the ward …
    await h.discharge(p)  # … but the discharge reached the platform first
    h.his(mid)
    await h.drain()
    [asked] = h.facts(p, "reopen_requested")
    assert asked.his_request_id == "M1" and "asked before the discharge" in (asked.reason or "")
    await h.cancel_discharge(p)  # registration: 2405
    h.fact(p, "discharge_requested", his_request_id="M1")  # registration asks for 2402 again at once
    await h.drain()
    assert [(r.his_request_id, r.mid_setl_flag) for r in h.results(p, "settled")] == [("M1", "1")]
    assert len(h.facts(p, "ready_for_discharge")) == 1, "the discharge waited for the 中途结算"


async def test_lines_charged_after_an_open_settlement_request_wait_for_it(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    early = h.line(p, "L2", "20.00", send=False)  # charged before the 中途结算, still on its way
    h.settle(p, "M1", "120.00", mid="1")
    h.line(p, "L3", "30.00")  # charged after it: the next settlement's
    await h.drain()
    assert h.lines(p)["L3"] == "pending" and "L3" not in h.platform_details(p)
    h.his(early)
    await h.drain()
    [r] = h.results(p, "settled")
    assert r.split is not None and r.split.medfee_sumamt == Decimal("120.00")
    assert h.lines(p) == {"L1": "settled", "L2": "settled", "L3": "uploaded"}


async def test_lines_uploaded_before_an_earlier_settlement_request_arrived_are_taken_back(h: Harness) -> None:
    p = await _admitted_with_lines(h, "100.00")
    mid = h.settle(p, "M1", "100.00", mid="1", send=False)  # HIS asked it here …
    h.line(p, "L2", "40.00")  # … then charged L2, which went up first
    await h.drain()
    assert h.platform_details(p) == {"L1": "uploaded", "L2": "uploaded"}
    h.his(mid)
    await h.drain()
    assert "2302" in h.client.infnos()  # the round taken back, L1 uploaded again, L2 after the settlement
    [r] = h.results(p, "settled")
    assert r.split is not None and r.split.medfee_sumamt == Decimal("100.00")
    assert h.lines(p) == {"L1": "settled", "L2": "uploaded"}
