"""The other targets through the same chain: the provincial 自费 platform's task polling (per-record results, the
rest of a batch goes on), 一码通's per-document results and its lookup of a lost answer, the DRG platform's
冲销-then-upload of a fixed record and its "already uploaded" answer to a resend, the epidemic indicators in
batches, a target's refusal of a record kept with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from yibao.simulator.targets import targets_of

from unit.upload_scheduler.harness import Harness, sample

pytestmark = pytest.mark.asyncio

ALL = ("national", "zifei", "yimatong", "drg", "epidemic", "flu")


@pytest.fixture
def t(make_h: Any) -> Harness:
    return make_h(targets_enabled=list(ALL))


def of(week: Any, kind: str) -> list[Any]:
    return [i for i in week.items if i.kind == kind]


def outcomes(t: Harness, bucket: str) -> list[tuple[str, str]]:
    return [(s["key"], s["outcome"]) for s in t.target_platform()["submissions"] if s["bucket"] == bucket]


async def test_zifei_batches_are_polled_until_the_task_is_done_and_each_visit_settles_by_its_result(
        t: Harness, sim: Any) -> None:
    targets_of(sim.ledger).task_polls = 3
    week = sample(sim, bad_day=0)
    visits = of(week, "zifei.fee")
    for it in visits:
        t.item(it)
    await t.run()
    bad = next(i.record["visit_no"] for i in visits if i.bad)
    statuses = {i.record["visit_no"]: t.record("zifei.fee", i.record["visit_no"]).status for i in visits}
    assert statuses.pop(bad) == "rejected" and set(statuses.values()) == {"accepted"}
    assert "与明细合计不符" in t.record("zifei.fee", bad).reason
    assert t.sent("ZF.UPLOAD") == 1 and t.sent("ZF.TASK") == 3  # one batch, polled until done
    assert t.record("zifei.fee", next(iter(statuses))).receipt["task_id"].startswith("T")


async def test_zifei_lane_is_held_for_a_person_when_a_task_never_finishes(make_h: Any, sim: Any) -> None:
    t = make_h(targets_enabled=["zifei"], zifei_max_polls=2)
    targets_of(sim.ledger).task_polls = 10
    t.item(of(sample(sim), "zifei.fee")[0])
    await t.run()
    lane = t.lane("zifei.fee")
    assert lane.status == "parked" and "unfinished after 2 polls" in lane.last_error


async def test_yimatong_documents_settle_by_the_platforms_result_per_document(t: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    docs = of(week, "yimatong.inbound")
    for it in docs:
        t.item(it)
    await t.run()
    bad = next(i.record["doc_no"] for i in docs if i.bad)
    assert t.record("yimatong.inbound", bad).status == "rejected"
    assert "追溯码格式错误" in t.record("yimatong.inbound", bad).reason
    good = [i.record["doc_no"] for i in docs if not i.bad]
    assert all(t.record("yimatong.inbound", d).status == "accepted" for d in good)


async def test_yimatong_lost_answer_is_looked_up_by_document(t: Harness, sim: Any) -> None:
    doc = [i for i in of(sample(sim), "yimatong.inbound") if not i.bad][0]
    t.client.fail("YMT.UPLOAD", "lose")
    t.item(doc)
    await t.run()
    assert t.record("yimatong.inbound", doc.record["doc_no"]).status == "accepted"
    assert t.sent("YMT.UPLOAD") == 1 and t.sent("YMT.DOC") == 1


async def test_drg_a_fixed_record_is_cancelled_then_uploaded(t: Harness, sim: Any) -> None:
    page = of(sample(sim), "drg.mrpage")[0]
    t.item(page)
    await t.run()
    key = page.record["mrpage"]["mdtrt_sn"]
    assert t.record("drg.mrpage", key).status == "accepted"
    fixed = {"mrpage": {**page.record["mrpage"], "main_diag_code": "J18.000"}}
    t.item(page, record=fixed, source_id="fix-1")
    await t.run()
    rec = t.record("drg.mrpage", key)
    assert rec.status == "accepted" and rec.revision == 2, (rec.status, rec.reason)
    assert outcomes(t, "drg.mrpage") == [(key, "new"), (key, "cancelled"), (key, "replaced")]
    assert t.target_platform()["records"]["drg.mrpage"][key]["content"]["main_diag_code"] == "J18.000"


async def test_drg_resend_after_a_lost_answer_is_answered_already_uploaded_and_counts_as_accepted(
        t: Harness, sim: Any) -> None:
    lst = of(sample(sim), "drg.setl_list")[0]
    t.client.fail("DRG.STL", "lose")
    t.item(lst)
    await t.run()
    key = lst.record["setllist"]["setl_id"]
    assert t.record("drg.setl_list", key).status == "accepted"
    assert t.sent("DRG.STL") == 2 and outcomes(t, "drg.setl_list") == [(key, "new")]


async def test_epidemic_indicators_go_in_batches_and_a_bad_row_is_rejected_alone(t: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    rows = of(week, "epidemic.indicators")
    for it in rows:
        t.item(it)
    await t.run()
    bad = [i for i in rows if i.bad]
    assert len(bad) == 1
    key = f"{bad[0].record['indicator_code']}|{bad[0].record['period_start']}"
    assert t.record("epidemic.indicators", key).status == "rejected"
    kept = t.target_platform()["records"]["epidemic.indicators"]
    assert len(kept) == len(rows) - 1 and key not in kept


async def test_a_target_refusal_is_kept_with_its_reason(t: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    case = next(i for i in week.bad() if i.kind == "flu.case")
    t.item(case)
    await t.run()
    rec = t.record("flu.case", case.record["case"]["case_id"])
    assert rec.status == "rejected" and "诊断或主诉至少其一" in rec.reason
