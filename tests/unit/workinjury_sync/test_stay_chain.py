"""A stay through the real engine against the simulator: admission, fee lines in batches, settlement, deduction,
revocations in the order the platform needs — and what HIS hears."""

from __future__ import annotations

from decimal import Decimal

from unit.workinjury_sync.harness import ORG, Harness


async def _admitted(h: Harness, p) -> str:  # type: ignore[no-untyped-def]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    await h.drain()
    return filing_no


async def test_an_admitted_stay_with_its_lines_and_settlement_ends_on_the_platform_as_in_his(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    key = f"stay:{p.stay_id}"
    kinds = [(r.request, r.kind) for r in h.results(key)]
    assert kinds == [("admission", "uploaded"), ("fee_lines", "uploaded"), ("settlement", "uploaded")]
    setl = h.sim.workinjury.settlements[p.setl_no]
    assert setl["status"] == "active" and setl["record"]["medfee_sumamt"] == p.totals()["medfee_sumamt"]
    assert len([d for d in h.sim.workinjury.details[(ORG, p.ipt_no)].values() if d["status"] == "active"]) == \
        len(p.lines)
    assert all(r.on_time for r in h.results(key))


async def test_fee_lines_go_up_in_batches_of_at_most_the_batch_size(make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(upload_batch=7)
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    await h.drain()
    batches = [i for i in h.transport.sent if i == "GYU102"]
    assert len(batches) == -(-len(p.lines) // 7)
    assert h.results(f"stay:{p.stay_id}", request="fee_lines")[0].detail == {"lines": len(p.lines),
                                                                            "uploaded": len(p.lines)}


async def test_a_line_whose_price_times_quantity_is_not_its_amount_is_refused_and_parked_the_rest_go_up(
        h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    bad = dict(p.lines[3], amount=str(Decimal(p.lines[3]["amount"]) + Decimal("1.00")))
    bad["self_amt"] = str(Decimal(bad["amount"]) - Decimal(bad["pool_amt"]))
    lines = p.lines[:3] + [bad] + p.lines[4:]
    h.his(h.month.fee_lines(p, lines, h.now()))
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}", request="fee_lines")
    assert result.kind == "invalid" and result.reason_code == "invalid_input"
    assert result.detail["uploaded"] == len(lines) - 1
    assert "fee_list.amount: price × cnt" in result.detail["not_uploaded"][bad["fee_sn"]]
    (letter,) = h.dead_letters()
    assert letter["reason_code"] == "invalid_input" and "fee_list.amount" in letter["reason"]
    active = h.sim.workinjury.details[(ORG, p.ipt_no)]
    assert bad["fee_sn"] not in active and len(active) == len(lines) - 1


async def test_a_value_over_its_length_is_refused_before_sending_with_the_field_named(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    bad = dict(p.lines[0], item_name="很长的项目名称" * 20)
    h.his(h.month.fee_lines(p, [bad], h.now()))
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}", request="fee_lines")
    assert result.kind == "invalid" and "fee_list.item_name: max_length 100" in result.reason
    assert "很长的项目名称" not in result.reason
    assert "GYU102" not in h.transport.sent


async def test_pooled_plus_self_paid_must_be_the_amount(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    bad = dict(p.lines[0], self_amt=str(Decimal(p.lines[0]["self_amt"]) + Decimal("0.01")))
    h.his(h.month.fee_lines(p, [bad], h.now()))
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}", request="fee_lines")
    assert "fee_list.pool_amt: pool_amt + self_amt is not the amount" in result.reason


async def test_a_settlement_that_is_not_the_sum_of_its_lines_is_refused_before_sending(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    request = h.month.settled(p, h.now())
    request["medfee_sumamt"] = str(Decimal(request["medfee_sumamt"]) + Decimal("10"))
    request["self_amt"] = str(Decimal(request["self_amt"]) + Decimal("10"))
    h.his(request)
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}", request="settlement")
    assert result.kind == "invalid" and result.reason.startswith("setl_list.medfee_sumamt: not the sum")
    assert "GYU103" not in h.transport.sent
    assert h.status(f"stay:{p.stay_id}") == "idle", "nothing else stops"


async def test_the_settlement_goes_up_only_after_every_earlier_line(make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(upload_batch=5)
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    sent = [i for i in h.transport.sent if i in ("GYU102", "GYU103")]
    assert sent[-1] == "GYU103" and sent.count("GYU102") == -(-len(p.lines) // 5)
    assert h.results(f"stay:{p.stay_id}", request="settlement")[0].kind == "uploaded"


async def test_lines_recorded_after_the_settlement_are_refused_once_it_is_settled(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines[:-2], h.now()))
    h.his(h.month.settled(p, h.now(), lines=p.lines[:-2]))
    h.his(h.month.fee_lines(p, p.lines[-2:], h.now()))
    await h.drain()
    results = h.results(f"stay:{p.stay_id}")
    assert [(r.request, r.kind) for r in results] == [
        ("admission", "uploaded"), ("fee_lines", "uploaded"), ("settlement", "uploaded"), ("fee_lines", "refused")]
    assert "revoke the settlement first" in results[-1].reason


async def test_a_deduction_over_the_pooled_total_is_refused_a_valid_one_goes_up(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    pool = p.totals()["pool_amt"]
    h.his(h.month.deduction(p, pool + Decimal("0.01"), h.now(), deduct_no="KK1"))
    h.his(h.month.deduction(p, Decimal("50.00"), h.now(), deduct_no="KK2"))
    await h.drain()
    first, second = h.results(f"stay:{p.stay_id}", request="deduction")
    assert first.kind == "invalid" and first.reason.startswith("deduct_list.deduct_amt: must be more than 0")
    assert second.kind == "uploaded" and second.platform_ids == {"deduct_no": "KK2"}
    assert h.sim.workinjury.deductions["KK2"]["status"] == "active" and "KK1" not in h.sim.workinjury.deductions


async def test_revoking_an_admission_with_lines_revokes_the_lines_first(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.revocation(p, "admission", h.now()))
    await h.drain()
    assert [i for i in h.transport.sent if i.startswith("GYR")] == ["GYR001", "GYR002"]
    (result,) = h.results(f"stay:{p.stay_id}", request="revocation")
    assert result.kind == "revoked" and result.detail["steps"] == ["GYR001", "GYR002"]
    assert h.sim.workinjury.admissions[(ORG, p.ipt_no)]["status"] == "revoked"


async def test_revoking_a_settlement_with_a_deduction_revokes_the_deduction_first_then_a_correction_goes_up(
        h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    h.his(h.month.deduction(p, Decimal("20.00"), h.now(), deduct_no="KK1"))
    h.his(h.month.revocation(p, "settlement", h.now()))
    await h.drain()
    assert [i for i in h.transport.sent if i.startswith("GYR")] == ["GYR004", "GYR003"]
    ledger = h.sim.workinjury
    assert ledger.settlements[p.setl_no]["status"] == "revoked" and ledger.deductions["KK1"]["status"] == "revoked"
    # HIS corrects and sends the stay again
    p.setl_no = p.setl_no + "B"
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    assert ledger.settlements[p.setl_no]["status"] == "active"
    assert [r.kind for r in h.results(f"stay:{p.stay_id}", request="settlement")] == ["uploaded", "uploaded"]


async def test_details_of_a_settled_stay_are_not_revoked_before_the_settlement(h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    h.his(h.month.revocation(p, "details", h.now()))
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}", request="revocation")
    assert result.kind == "refused" and result.reason_code == "out_of_order"
    assert not any(i.startswith("GYR") for i in h.transport.sent)


async def test_an_admission_the_platform_refuses_takes_its_lines_and_requests_with_it(h: Harness) -> None:
    p = h.month.patients[0]
    h.his(h.month.admitted(p, "BA-unknown", h.now()))  # no such filing
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    adm, lines, setl = h.results(f"stay:{p.stay_id}")
    assert (adm.kind, adm.infno) == ("refused", "GYU101") and "备案BA-unknown不存在" in adm.reason
    assert lines.kind == "refused" and setl.kind == "refused"
    assert "GYU102" not in h.transport.sent and "GYU103" not in h.transport.sent


async def test_lines_wait_for_their_admission_event_and_are_answered_after_the_orphan_timeout(
        make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(orphan_timeout_s=0.2)
    p = h.month.patients[0]
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    assert h.status(f"stay:{p.stay_id}") == "waiting"
    import asyncio

    await asyncio.sleep(0.3)
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}")
    assert result.kind == "refused" and result.reason_code == "no_admission"


async def test_a_second_admission_of_an_admitted_stay_is_refused(h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = await _admitted(h, p)
    h.his(h.month.admitted(p, filing_no, h.now(), adm_dept_name="外科"))
    await h.drain()
    first, second = h.results(f"stay:{p.stay_id}", request="admission")
    assert first.kind == "uploaded" and second.kind == "refused" and second.reason_code == "out_of_order"
    assert h.transport.sent.count("GYU101") == 1


async def test_a_corrected_line_replaces_one_not_yet_sent_and_a_correction_of_an_uploaded_one_is_refused(
        h: Harness) -> None:
    p = h.month.patients[0]
    await _admitted(h, p)
    h.his(h.month.fee_lines(p, p.lines[:2], h.now()))
    await h.drain()
    fixed = dict(p.lines[0], item_name="更正后的名称")
    h.his(h.month.fee_lines(p, [fixed], h.now()))
    await h.drain()
    first, second = h.results(f"stay:{p.stay_id}", request="fee_lines")
    assert first.kind == "uploaded" and second.kind == "refused"
    assert "is on the platform already" in second.reason
