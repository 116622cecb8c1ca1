"""The upload chain on the real engine against the simulator's platform logic: per-record status, rejections with
the platform's reason, parking with the field named while the rest goes on, a fix sent once, lost answers resolved
by the catalog's query or an idempotent resend (never a duplicate), prerequisites and receipts, change and withdrawal
transactions, the 4101 opened by the settlement, and `yibao replay uploads`."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pytest

from yibao.core import clock

from unit.upload_scheduler.harness import NOW, Harness, sample

pytestmark = pytest.mark.asyncio


def first(week: Any, kind: str, n: int = 0) -> Any:
    return [i for i in week.items if i.kind == kind][n]


def submissions(h: Harness, infno: str) -> list[str]:
    return [s["outcome"] for s in h.platform()["submissions"] if s["infno"] == infno]


async def test_a_record_is_sent_accepted_and_told_to_his(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "3503")
    h.item(item)
    await h.run()
    rec = h.record("3503", item.record["purcinfo"]["fixmedins_bchno"])
    assert rec.status == "accepted" and rec.sends == 1 and rec.accepted_revision == 1 and rec.msgid
    assert [(o["kind"], o["status"]) for o in h.outcomes()] == [("3503", "accepted")]
    assert submissions(h, "3503") == ["new"]
    assert h.lane("3503", rec.record_key).status == "idle"


async def test_the_same_content_again_is_not_sent_again(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "3503")
    h.item(item)
    await h.run()
    h.item(item, source_id="again")  # CDC noticed an update that changed nothing sent
    await h.run()
    assert h.sent("3503") == 1 and len(h.outcomes()) == 1


async def test_a_daily_lane_waits_for_its_hour(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "4401")
    h.source("4401", item.record, occurred=NOW, insuplc=item.insuplc_admdvs)
    await h.run()
    key = item.record["baseinfo"]["mdtrt_sn"]
    rec = h.record("4401", key)
    assert rec.status == "pending" and h.sent("4401") == 0
    lane = h.lane("4401")
    assert lane.status == "waiting"
    tomorrow = (NOW + _dt.timedelta(days=1)).date()
    assert rec.due_at == _dt.datetime.combine(tomorrow, _dt.time(1, 20), tzinfo=clock.SHANGHAI)
    assert lane.next_attempt_at == rec.due_at


async def test_a_rejection_keeps_the_platforms_reason_and_the_fix_goes_once(h: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    bad = next(i for i in week.bad() if i.kind == "3503")
    h.item(bad)
    await h.run()
    key = bad.record["purcinfo"]["fixmedins_bchno"]
    rec = h.record("3503", key)
    assert rec.status == "rejected" and "有效期止早于生产日期" in rec.reason and rec.revision == 1
    assert h.outcomes()[-1]["status"] == "rejected" and h.outcomes()[-1]["reason"] == rec.reason
    h.item(week.fixes[("3503", key)])
    await h.run()
    rec = h.record("3503", key)
    assert rec.status == "accepted" and rec.revision == 2 and rec.accepted_revision == 2 and rec.sends == 2
    assert submissions(h, "3503") == ["new"]  # the refused one never counted on the platform
    assert h.held("3503", key)["content"] == week.fixes[("3503", key)].record


async def test_a_record_breaking_a_catalog_rule_is_parked_with_the_field_and_the_others_go_on(h: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    bad = next(i for i in week.bad() if i.kind == "3401")
    good = [i for i in week.items if i.kind == "3401" and not i.bad]
    for it in [bad, *good]:
        h.item(it)
    await h.run()
    key = bad.record["deptinfo"]["hosp_dept_codg"]
    rec = h.record("3401", key)
    assert rec.status == "parked" and rec.reason_field == "deptinfo.itro" and rec.sends == 0
    assert "required" in rec.reason
    assert all(h.record("3401", g.record["deptinfo"]["hosp_dept_codg"]).status == "accepted" for g in good)
    parked = [o for o in h.outcomes() if o["status"] == "parked"]
    assert parked == [dict(parked[0], record_key=key, reason_field="deptinfo.itro")]


async def test_a_refused_batch_is_split_and_only_the_bad_record_is_rejected(h: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    orders = [i for i in week.items if i.kind == "4402"]
    for it in orders:
        h.item(it)
    await h.run()
    statuses = {it.record["medcas_drord_detl_id"]: h.record("4402", it.record["medcas_drord_detl_id"]).status
                for it in orders}
    bad = next(it.record["medcas_drord_detl_id"] for it in orders if it.bad)
    assert statuses.pop(bad) == "rejected"
    assert set(statuses.values()) == {"accepted"}
    assert "用药停止时间早于开始时间" in h.record("4402", bad).reason
    held = {r["key"] for r in h.platform()["records"] if r["family"] == "4402"}
    assert held == set(statuses)


async def test_a_lost_answer_of_a_resend_safe_upload_is_sent_again_and_the_platform_holds_it_once(
        h: Harness, sim: Any) -> None:
    week = sample(sim)
    h.settled(week.settled[0].setl_id, visit=week.settled[0].his_visit_id)
    item = next(i for i in week.items if i.kind == "4101" and i.record["setlinfo"]["setl_id"] == week.settled[0].setl_id)
    h.client.fail("4101", "lose")
    h.item(item)
    await h.run()
    rec = h.record("4101", week.settled[0].setl_id)
    assert rec.status == "accepted" and rec.sends == 1
    assert h.journal("4101")[0][0] in ("resolved", "ok") and h.sent("4101") == 2
    assert submissions(h, "4101") == ["new", "resend"]
    assert [r["versions"] for r in h.platform()["records"] if r["family"] == "4101"] == [1]
    assert [o["status"] for o in h.outcomes()] == ["accepted"]


@pytest.mark.parametrize(("kind", "query"), [("3401", "5101"), ("3301", "1317")])
async def test_a_lost_answer_with_a_query_is_looked_up_and_adopted_never_sent_twice(
        h: Harness, sim: Any, kind: str, query: str) -> None:
    item = first(sample(sim), kind)
    h.client.fail(kind, "lose")
    h.item(item)
    await h.run()
    node = "deptinfo" if kind == "3401" else "data"
    key = item.record[node]["hosp_dept_codg" if kind == "3401" else "fixmedins_hilist_id"]
    assert h.record(kind, key).status == "accepted"
    assert h.sent(kind) == 1 and h.sent(query) == 1
    assert submissions(h, kind) == ["new"]
    assert ("resolved", "adopted") in h.journal(kind)


async def test_a_worker_killed_mid_call_finds_the_call_and_resolves_it(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "3401")
    h.client.fail("3401", "crash")
    h.item(item)
    await h.run()
    assert h.record("3401", item.record["deptinfo"]["hosp_dept_codg"]).status == "accepted"
    assert submissions(h, "3401") == ["new"] and h.sent("5101") == 1


async def test_a_prescription_withdrawal_waits_for_its_upload_and_quotes_the_platforms_rx_number(
        h: Harness, sim: Any) -> None:
    week = sample(sim)
    undo = first(week, "7104")
    rxno = undo.record_key
    upload = next(i for i in week.items if i.kind == "7101" and i.record["data"]["hosp_rxno"] == rxno)
    h.item(undo)
    await h.run()
    rec = h.record("7104", rxno)
    assert rec.status == "pending" and "once 7101 of the same key is accepted" in rec.reason and h.sent("7104") == 0
    h.item(upload)
    await h.run()
    await h.wake()  # the withdrawal's next look (every requirement_poll_s)
    rx = h.record("7101", rxno)
    assert rx.status == "accepted" and rx.receipt["hi_rxno"].startswith("HX")
    assert h.record("7104", rxno).status == "accepted"
    held = h.held("7101", rxno)
    assert held["valid"] is False and held["receipt"]["last_7104"]


async def test_a_department_changed_after_acceptance_goes_as_3402(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "3401")
    h.item(item)
    await h.run()
    changed = {"deptinfo": {**item.record["deptinfo"], "hosp_dept_name": "新名字"}}
    h.item(item, record=changed, source_id="S-change")
    await h.run()
    key = item.record["deptinfo"]["hosp_dept_codg"]
    rec = h.record("3401", key)
    assert rec.status == "accepted" and rec.revision == 2 and h.sent("3402") == 1 and h.sent("3401") == 1
    assert h.held("3401", key)["content"]["deptinfo"]["hosp_dept_name"] == "新名字"


async def test_a_settled_stay_owes_its_list_from_the_settlement_until_his_sends_it(h: Harness, sim: Any) -> None:
    week = sample(sim)
    s = week.settled[0]
    h.settled(s.setl_id, visit=s.his_visit_id, when=s.setl_time)
    await h.run()
    rec = h.record("4101", s.setl_id)
    assert rec.status == "pending" and rec.payload is None and "awaiting" in rec.reason
    assert rec.deadline_at == s.setl_time + _dt.timedelta(days=7)
    assert h.sent("4101") == 0
    h.item(next(i for i in week.items if i.kind == "4101" and i.record["setlinfo"]["setl_id"] == s.setl_id))
    await h.run()
    assert h.record("4101", s.setl_id).status == "accepted"


async def test_a_refund_before_the_list_went_withdraws_it(h: Harness, sim: Any) -> None:
    s = sample(sim).settled[0]
    h.settled(s.setl_id, visit=s.his_visit_id, when=s.setl_time)
    h.settled(s.setl_id, kind="refunded", visit=s.his_visit_id)
    await h.run()
    rec = h.record("4101", s.setl_id)
    assert rec.status == "withdrawn" and "refunded" in rec.reason and h.sent("4101") == 0


async def test_a_record_for_a_target_not_enabled_is_parked_saying_so(h: Harness, sim: Any) -> None:
    item = first(sample(sim), "drg.hospital")
    h.item(item)
    await h.run()
    rec = h.record("drg.hospital", item.record["hospital"]["org_code"])
    assert rec.status == "parked" and "target drg is not enabled" in rec.reason and rec.sends == 0


async def test_replay_sends_a_rejected_record_once_more(h: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    bad = next(i for i in week.bad() if i.kind == "3301")
    h.item(bad)
    await h.run()
    key = bad.record["data"]["fixmedins_hilist_id"]
    assert h.record("3301", key).status == "rejected"
    assert h.replay(kind="3301") == [("national:3301", key)]
    assert h.replay(kind="3301") == []  # pending already: a second replay changes nothing
    await h.run()
    rec = h.record("3301", key)
    assert rec.status == "rejected" and rec.sends == 2 and h.sent("3301") == 2
    assert h.replay(kind="4101") == [] and h.replay(key="nothing") == []
