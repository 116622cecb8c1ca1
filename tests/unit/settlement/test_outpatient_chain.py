"""Outpatient chain on the real engine against the simulator's rules (in-process): details, pre-settlement,
settlement, refunds, unwinds, reversal lines, duplicates and reordering."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from unit.settlement import his_events as ev
from unit.settlement.harness import Harness


async def test_an_outpatient_visit_is_uploaded_presettled_and_settled(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "30.00")
    h.line(p, "F2", "25.00", cnt="2")
    h.settle(p, "S1", "55.00")
    await h.drain()
    assert h.client.infnos()[-3:] == ["2204", "2206", "2207"]
    [r] = h.results(p, "settled")
    assert r.setl_id and r.split is not None and r.split.medfee_sumamt == Decimal("55.00")
    assert r.split.fund_pay_sumamt + r.split.psn_part_amt == r.split.medfee_sumamt
    assert r.split.acct_pay + r.split.psn_cash_pay == r.split.psn_part_amt
    assert r.msgid == h.platform_settlements(p)[0].msgid, "msgid is the medins_setl_id"
    assert (r.refd_setl_flag, r.clr_type, r.his_request_id) == ("0", "11", "S1")
    assert h.lines(p) == {"F1": "settled", "F2": "settled"}
    assert [f.kind for f in h.facts(p)] == ["details_uploaded", "settled"]
    assert [x.kind for x in h.results(p)] == ["presettled", "settled"]


async def test_details_are_uploaded_in_batches_of_at_most_detail_batch_size(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(detail_batch_size=2)
    p = await h.outpatient()
    for n in range(5):
        h.line(p, f"F{n}", "10.00")
    await h.drain()
    uploads = [m for infno, m in h.client.calls if infno == "2204"]
    assert len(uploads) == 3
    assert set(h.platform_details(p).values()) == {"uploaded"} and len(h.platform_details(p)) == 5


async def test_details_wait_for_the_registration_and_the_visit_information(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    h.line(p, "F1", "10.00")
    await h.drain()
    assert "2204" not in h.client.infnos()
    h.registered(p)
    await h.drain()
    assert "2204" not in h.client.infnos(), "the platform wants 2203 before 2204"
    h.fact(p, "visit_info_uploaded", med_type="11")
    await h.drain()
    assert h.lines(p) == {"F1": "uploaded"}


async def test_a_settlement_request_waits_for_its_lines_still_in_flight(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    late = h.line(p, "F2", "20.00", send=False)  # charged before the request, still on its way
    h.settle(p, "S1", "30.00")
    await h.drain()
    assert "2206" not in h.client.infnos()
    assert h.status(p) == "waiting"
    h.his(late)
    await h.drain()
    assert len(h.results(p, "settled")) == 1


async def test_a_request_before_its_registration_and_lines_still_settles(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    line = h.line(p, "F1", "15.00", send=False)
    h.settle(p, "S1", "15.00")
    h.his(line)
    await h.drain()
    h.fact(p, "visit_info_uploaded", med_type="11")
    h.registered(p)
    await h.drain()
    assert len(h.results(p, "settled")) == 1


async def test_a_duplicated_event_changes_nothing(h: Harness) -> None:
    p = await h.outpatient()
    line = h.line(p, "F1", "10.00")
    request = h.settle(p, "S1", "10.00")
    assert h.his(line) is False and h.his(request) is False
    await h.drain()
    calls = list(h.client.calls)
    assert h.his(line) is False and h.his(request) is False
    await h.drain()
    assert h.client.calls == calls
    assert len(h.results(p, "settled")) == 1


async def test_a_request_resent_with_the_same_id_is_not_settled_twice(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    h.settle(p, "S1", "10.00")  # a new event id for the same HIS request (the row was updated)
    await h.drain()
    assert len(h.results(p, "settled")) == 1 and len(h.platform_settlements(p)) == 1


async def test_a_partly_reversed_pending_line_goes_up_with_its_net_quantity(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    original = h.line(p, "F1", "30.00", cnt="3")
    h.reversal(p, "R1", original, cnt="1")
    h.registered(p)
    h.fact(p, "visit_info_uploaded", med_type="11")
    h.settle(p, "S1", "20.00")
    await h.drain()
    detail = h.sim.ledger.visits[p.mdtrt_id].details["F1"]
    assert (detail.cnt, detail.det_item_fee_sumamt) == (Decimal("2"), Decimal("20.00"))
    assert h.lines(p) == {"F1": "settled", "R1": "withdrawn"}
    assert len(h.results(p, "settled")) == 1


async def test_a_fully_reversed_line_is_never_uploaded(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    original = h.line(p, "F1", "30.00")
    h.reversal(p, "R1", original)
    h.line(p, "F2", "5.00")
    h.registered(p)
    h.fact(p, "visit_info_uploaded", med_type="11")
    await h.drain()
    assert h.platform_details(p) == {"F2": "uploaded"}
    assert h.lines(p) == {"F1": "withdrawn", "R1": "withdrawn", "F2": "uploaded"}


async def test_reversing_an_uploaded_line_revokes_the_round_and_uploads_the_rest(h: Harness) -> None:
    p = await h.outpatient()
    first = h.line(p, "F1", "30.00")
    h.line(p, "F2", "5.00")
    await h.drain()
    h.reversal(p, "R1", first)
    h.settle(p, "S1", "5.00")
    await h.drain()
    assert h.client.infnos()[-5:] == ["2204", "2205", "2204", "2206", "2207"]
    assert h.lines(p) == {"F1": "withdrawn", "F2": "settled", "R1": "withdrawn"}
    assert [s.detail_sns for s in h.platform_settlements(p)] == [["F2"]]


async def test_a_refund_cancels_the_settlement_then_revokes_its_details(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.settle(p, "S1", "40.00")
    await h.drain()
    [settled] = h.results(p, "settled")
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert h.client.infnos()[-2:] == ["2208", "2205"]
    [refunded] = h.results(p, "refunded")
    assert refunded.orig_setl_id == settled.setl_id and refunded.setl_id != settled.setl_id
    assert refunded.refd_setl_flag == "1"
    assert refunded.split is not None and settled.split is not None
    assert refunded.split.medfee_sumamt == -settled.split.medfee_sumamt
    assert refunded.split.fund_pay_sumamt == -settled.split.fund_pay_sumamt
    assert [s.status for s in h.platform_settlements(p)] == ["cancelled", "active"]
    assert h.platform_details(p) == {"F1": "revoked"}
    assert h.lines(p) == {"F1": "withdrawn"}
    assert [f.kind for f in h.facts(p)][-1] == "settlement_cancelled"


async def test_a_refund_names_the_settlement_by_setl_id_too(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.settle(p, "S1", "40.00")
    await h.drain()
    [settled] = h.results(p, "settled")
    h.refund(p, "R1", setl_id=settled.setl_id)
    await h.drain()
    assert len(h.results(p, "refunded")) == 1


async def test_a_refund_of_a_refunded_settlement_is_rejected(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    h.settle(p, "S1", "40.00")
    h.refund(p, "R1", of="S1")
    await h.drain()
    h.refund(p, "R2", of="S1")
    await h.drain()
    [rejected] = h.results(p, "rejected")
    assert rejected.his_request_id == "R2" and rejected.reason_code == "already_refunded"
    assert h.client.infnos().count("2208") == 1


async def test_a_refund_of_a_request_that_was_never_settled_is_rejected(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(lines_wait_s=0)
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "99.00")
    h.refund(p, "R1", of="S1")
    await h.drain()
    reasons = {r.his_request_id: (r.reason_code, r.reason) for r in h.results(p, "rejected")}
    assert reasons["S1"][0] == "lines_missing"
    assert reasons["S1"][1] == "charge lines missing: HIS total 99.00, received 10.00"
    assert reasons["R1"][0] == "no_settlement" and "S1" in (reasons["R1"][1] or "")


async def test_a_self_pay_visit_gets_no_insurance_settlement_and_its_lines_are_kept(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    h.fact(p, "registered", self_pay=True)
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert (r.reason_code, r.reason) == ("self_pay", "self-pay visit: no 医保 settlement")
    assert h.lines(p) == {"F1": "pending"}
    assert not any(infno in ("2204", "2206") for infno in h.client.infnos()[2:])


async def test_a_failed_registration_rejects_the_settlement_instead_of_waiting(h: Harness) -> None:
    p = await h.outpatient(facts=False)
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    assert h.results(p, "rejected") == []
    h.fact(p, "registration_failed", reason="2201 refused: 人员不存在")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "registration_failed" and "人员不存在" in (r.reason or "")


async def test_the_platform_refusing_the_presettlement_goes_back_to_his_with_its_err_msg(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.client.fail("2206", "refuse")
    h.settle(p, "S1", "10.00")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert (r.reason_code, r.step_infno, r.reason) == ("platform_rejected", "2206", "[2206] scripted refusal")
    assert "2207" not in h.client.infnos()


async def test_refused_details_are_reported_and_their_settlement_rejected(h: Harness) -> None:
    p = await h.outpatient()
    h.client.fail("2204", "refuse")
    h.line(p, "F1", "10.00")
    await h.drain()
    [details] = h.results(p, "rejected")
    assert details.reason_code == "details_rejected" and details.detail == {"feedetl_sns": ["F1"]}
    h.settle(p, "S1", "10.00")
    await h.drain()
    rejected = h.results(p, "rejected")
    assert rejected[-1].his_request_id == "S1" and rejected[-1].reason_code == "details_rejected"
    assert h.client.infnos().count("2204") == 1, "a refused batch is not sent again and again"


async def test_unwind_withdraws_the_unsettled_details_then_answers_unwound(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # past the wait for HIS requests before a cancellation
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    assert h.client.infnos()[-1] == "2205"
    assert h.platform_details(p) == {"F1": "revoked"}
    [answer] = h.facts(p, "unwound")
    assert answer.his_request_id == "C1"
    h.line(p, "F2", "10.00")  # arrives while registration sends 2202: it must not reach the platform
    await h.drain()
    assert h.lines(p) == {"F1": "withdrawn", "F2": "pending"}


async def test_unwind_without_details_answers_at_once(h: Harness) -> None:
    p = await h.outpatient()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1
    assert "2205" not in h.client.infnos()


async def test_unwind_is_refused_while_a_settlement_is_active(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)  # past the wait for HIS requests before a cancellation
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    [answer] = h.facts(p, "unwind_refused")
    assert answer.reason is not None and answer.reason.startswith("out_of_order") and "2208" in answer.reason
    h.refund(p, "R1", of="S1")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")  # registration asks again
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1


async def test_a_cancelled_visit_rejects_its_pending_settlement(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "20.00")
    await h.drain()
    h.fact(p, "registration_cancelled")
    await h.drain()
    [r] = h.results(p, "rejected")
    assert r.reason_code == "visit_cancelled"


async def test_a_second_settlement_of_the_same_visit_uses_a_new_batch_number(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    h.settle(p, "S1", "10.00")
    await h.drain()
    h.line(p, "F2", "7.00")
    h.settle(p, "S2", "7.00")
    await h.drain()
    assert len(h.results(p, "settled")) == 2
    batches = {d.chrg_bchno for d in h.sim.ledger.visits[p.mdtrt_id].details.values()}
    assert len(batches) == 2
    h.refund(p, "R1", of="S1")
    await h.drain()
    assert h.platform_details(p) == {"F1": "revoked", "F2": "settled"}, "2205 revokes the refunded batch only"


async def test_a_refund_arriving_before_its_settlement_request_waits_for_it(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    request = h.settle(p, "S1", "40.00", send=False)
    h.refund(p, "R1", of="S1")  # another HIS table: it overtook the settlement request
    await h.drain()
    assert h.results(p) == []
    h.his(request)
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled", "refunded"]


async def test_an_unwind_never_overtakes_an_earlier_settlement_and_refund(h: Harness) -> None:
    p = await h.outpatient()
    line = h.line(p, "F1", "40.00", send=False)  # charged first, still on its way
    h.settle(p, "S1", "40.00")
    h.refund(p, "R1", of="S1")  # 退费 …
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")  # … then 退号, in HIS order
    await h.drain()
    assert not h.facts(p, "unwound") and not h.facts(p, "unwind_refused") and h.results(p) == []
    h.his(line)
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled", "refunded"]
    [answer] = h.facts(p, "unwound")
    assert answer.his_request_id == "C1"


async def test_an_unwind_asked_before_settlement_read_the_his_cancellation_waits_for_it(h: Harness) -> None:
    from yibao.hisevents.models import Cancellation

    p = await h.outpatient()
    # HIS charged, settled, refunded, then cancelled the visit; registration read the cancellation on the HIS events
    # and asked while all four were still in settlement's backlog of the same topic
    line = h.line(p, "F1", "40.00", send=False)
    settle = h.settle(p, "S1", "40.00", send=False)
    refund = h.refund(p, "R1", of="S1", send=False)
    cancel = Cancellation(**h._base(p), target="registration", his_request_id="C1")
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1", occurred_at=cancel.occurred_at,
           on_his_events=True)
    await h.drain()
    assert not h.facts(p, "unwound") and not h.facts(p, "unwind_refused")  # answering now would close the visit
    assert "registration asked about the HIS cancellation" in h.decide(p).reason
    for event in (line, settle, refund, cancel):
        h.his(event)
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled", "refunded"]  # not rejected visit_cancelled
    [answer] = h.facts(p, "unwound")
    assert answer.his_request_id == "C1"


async def test_an_unwind_whose_his_cancellation_never_arrives_is_answered_after_prerequisite_wait(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)
    p = await h.outpatient()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1", on_his_events=True)
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1


async def test_an_unwind_registration_makes_itself_does_not_wait_for_a_his_event(h: Harness) -> None:
    p = await h.outpatient()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="SWITCH1", self_pay=True)  # 医保 → 自费
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1


async def test_an_unwind_arriving_before_an_earlier_settlement_request_is_queued_behind_it(h: Harness) -> None:
    p = await h.outpatient()
    h.line(p, "F1", "40.00")
    request = h.settle(p, "S1", "40.00", send=False)  # HIS settled at t1 …
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1",
           occurred_at=request.occurred_at + _dt.timedelta(minutes=5))  # … and cancelled at t1 + 5 min
    h.his(request)  # the settlement request's table lagged behind
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled"]
    assert not h.facts(p, "unwind_refused") and not h.facts(p, "unwound")  # waits for the refund (2208)
    h.refund(p, "R1", of="S1")  # (its table lagged even more)
    await h.drain()
    assert [r.kind for r in h.results(p)][-1] == "refunded" and len(h.facts(p, "unwound")) == 1


async def test_an_unwind_is_answered_only_after_the_order_window(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(order_window_s=60.0)
    p = await h.outpatient()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    assert not h.facts(p, "unwound") and h.status(p) == "waiting"


async def test_a_cancellation_waits_while_the_visits_charges_are_neither_settled_nor_voided(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=60.0)
    p = await h.outpatient()
    h.line(p, "F1", "25.00")
    await h.drain()
    settle = ev.settle(p.key, p.kind, "S1", "25.00")  # HIS settled …
    refund = ev.refund(p.key, p.kind, "R1", of="S1")  # … refunded …
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")  # … and cancelled: this came first
    await h.drain()
    assert not h.facts(p, "unwound") and h.status(p) == "waiting"  # the settlement and refund are on their way
    h.his(settle)
    await h.drain()
    assert not h.facts(p, "unwound")
    h.his(refund)
    await h.drain()
    assert [r.kind for r in h.results(p)] == ["presettled", "settled", "refunded"]
    assert len(h.facts(p, "unwound")) == 1


async def test_a_switch_to_self_pay_does_not_wait_for_the_charges(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=60.0)
    p = await h.outpatient()
    h.line(p, "F1", "25.00")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="E1", self_pay=True)
    await h.drain()
    assert len(h.facts(p, "unwound")) == 1  # the patient pays them: nothing to wait for


async def test_a_cancellation_registration_could_not_finish_lets_the_visit_go_on(make_h) -> None:  # type: ignore[no-untyped-def]
    h = make_h(prerequisite_wait_s=0.0)
    p = await h.outpatient()
    h.line(p, "F1", "10.00")
    await h.drain()
    h.fact(p, "unwind_requested", unwind="registration", his_request_id="C1")
    await h.drain()
    assert h.state(p).closing and len(h.facts(p, "unwound")) == 1
    h.fact(p, "request_closed", his_request_id="C1", reason="2202 refused: 已结算不能撤销挂号")
    h.line(p, "F2", "5.00")
    await h.drain()
    assert not h.state(p).closing and h.lines(p)["F2"] == "uploaded"
