"""The download streams: GYD008 first, at most page_size records a call, each delivery stored (published) before its
GYU008, what follows records (GYD102 details, GYD054 attachments), lost deliveries asked again (GYR005), lost
answers adopted from GYD053, and the schedule."""

from __future__ import annotations

import datetime as _dt
import json

from unit.workinjury_sync.harness import ORG, Harness
from yibao.chains.model import Wait
from yibao.core import clock
from yibao.workinjury_sync.streams import stream_key


def _records(n: int, prefix: str = "X") -> list[dict]:
    return [{"org_code": ORG, "org_name": f"机构{i}", "org_type": "1", "admdvs": "440100",
             "agreement_begin": "2026-01-01", "agreement_end": "2027-12-31", "org_status": "1",
             "record_id": f"{prefix}{i:04d}"} for i in range(n)]


async def test_a_poll_checks_gyd008_first_then_downloads_stores_and_confirms(h: Harness) -> None:
    h.offer_applications()
    h.start_streams("GYD001")
    await h.drain()
    assert h.transport.sent[:3] == ["GYD008", "GYD001", "GYU008"]
    queue = h.sim.workinjury.queues["GYD001"]
    assert queue.confirmed == 3 and not queue.outstanding and not queue.waiting
    assert sorted(r.record["apply_no"] for r in h.records("GYD001")) == sorted(p.apply_no for p in h.month.patients)
    st = h.state(stream_key("GYD001")).stream
    assert st.phase == "idle" and st.last_cycle_at is not None and st.confirmed == 3


async def test_each_delivery_is_stored_in_the_unit_before_its_confirmation_is_sent(h: Harness) -> None:
    h.offer_applications()
    h.transport.faults["GYU008"] = ["refuse"]  # the confirmation fails once: the records are stored all the same
    h.start_streams("GYD001")
    await h.drain()
    assert len(h.records("GYD001")) == 3
    assert h.sim.workinjury.queues["GYD001"].confirmed == 3  # GYD008 found the stored delivery: confirmed again
    assert h.transport.sent.count("GYR005") == 0


async def test_at_most_page_size_records_a_call_each_delivery_confirmed_before_the_next(make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(page_size=5)
    h.sim.workinjury.offer("GYD009", _records(12))
    h.start_streams("GYD009")
    await h.drain()
    sent = [i for i in h.transport.sent if i in ("GYD009", "GYU008")]
    assert sent == ["GYD009", "GYU008", "GYD009", "GYU008", "GYD009", "GYU008"]
    assert h.sim.workinjury.queues["GYD009"].confirmed == 12
    assert len({r.message_id for r in h.records("GYD009")}) == 12


async def test_admissions_bring_their_details_which_are_confirmed_too(h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    await h.drain()
    h.start_streams("GYD101")
    await h.drain()
    assert [r.record["ipt_no"] for r in h.records("GYD101")] == [p.ipt_no]
    assert len(h.records("GYD102")) == len(p.lines)
    assert h.sim.workinjury.queues["GYD102"].confirmed == len(p.lines)
    assert not h.sim.workinjury.queues["GYD101"].outstanding


async def test_applications_bring_their_attachments(h: Harness) -> None:
    atta = h.client.catalog  # noqa: F841 - the platform's own attachment store
    h.sim.workinjury.attachments["AT1"] = {"atta_id": "AT1", "atta_name": "工伤认定书.pdf", "atta_type": "01",
                                           "file_content": "JVBERi0x"}
    apps = h.month.applications()
    apps[0]["atta_list"] = [{"atta_id": "AT1", "atta_type": "01", "atta_name": "工伤认定书.pdf"}]
    h.sim.workinjury.offer("GYD001", apps)
    h.start_streams("GYD001")
    await h.drain()
    (attachment,) = h.records("GYD054")
    assert attachment.kind == "attachment" and attachment.record["file_content"] == "JVBERi0x"


async def test_a_lost_download_answer_is_adopted_from_gyd053_stored_and_confirmed_once(h: Harness) -> None:
    h.offer_applications()
    h.transport.faults["GYD001"] = ["lose"]
    h.start_streams("GYD001")
    await h.drain()
    assert h.sim.workinjury.calls["GYD001"] == 1  # the lost one only: its records came from GYD053
    assert len(h.records("GYD001")) == 3 and h.sim.workinjury.queues["GYD001"].confirmed == 3
    assert ("GYD001", "step", "resolved", "adopted") in h.journal(stream_key("GYD001"))


async def test_a_delivery_not_stored_here_is_found_by_gyd008_and_asked_again_with_gyr005(h: Harness) -> None:
    h.offer_applications()
    # someone (a restored database, another installation) downloaded the applications without storing them here
    reply = await h.client.call("GYD001", {"query": {"org_code": ORG, "page_size": 500}})
    assert len(reply.output["records"]) == 3
    h.start_streams("GYD001")
    await h.drain()
    assert h.transport.sent == ["GYD001", "GYD008", "GYR005", "GYD001", "GYU008"]
    assert len(h.records("GYD001")) == 3 and h.sim.workinjury.queues["GYD001"].confirmed == 3
    assert h.state(stream_key("GYD001")).stream.redownloads == 1


async def test_ops_asks_a_confirmed_delivery_again(h: Harness) -> None:
    from yibao.workinjury_sync.absorb import redownload

    h.offer_applications()
    h.start_streams("GYD001")
    await h.drain()
    trans_no = h.records("GYD001")[0].trans_no
    h.absorb(redownload("GYD001", trans_no, "ops:1"))
    await h.drain()
    assert len(h.records("GYD001")) == 6 and len({r.message_id for r in h.records("GYD001")}) == 3
    assert h.sim.workinjury.queues["GYD001"].confirmed == 6


async def test_the_next_poll_waits_for_the_interval(h: Harness) -> None:
    h.start_streams("GYD001")
    await h.drain()
    state = h.state(stream_key("GYD001"))
    action = h.chain.next_action(state, clock.now())
    assert isinstance(action, Wait) and action.until is not None
    assert abs((action.until - state.stream.last_cycle_at).total_seconds() - 1800) < 1
    later = h.chain.next_action(state, state.stream.next_poll_at + _dt.timedelta(seconds=1))
    assert later.name == "start a poll"


async def test_a_stream_not_configured_is_idle(make_h) -> None:  # type: ignore[no-untyped-def]
    h: Harness = make_h(streams=["GYD006"])
    h.offer_applications()
    h.start_streams("GYD001")
    await h.drain()
    assert "GYD001" not in h.transport.sent


async def test_a_detail_revocation_downloads_the_admissions_details_again(h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    await h.drain()
    h.start_streams("GYD101", "GYD401")
    await h.drain()
    h.his(h.month.revocation(p, "details", h.now()))
    h.his(h.month.fee_lines(p, p.lines[:3], h.now()))
    await h.drain()
    h.absorb(__import__("yibao.workinjury_sync.absorb", fromlist=["poll_now"]).poll_now("GYD401", "ops:p"))
    await h.drain()
    assert h.feed_back() >= 1
    await h.drain()
    details = h.records("GYD102")
    assert len(details) == len(p.lines) + 3
    assert not h.sim.workinjury.queues["GYD102"].outstanding


def test_records_are_keyed_by_their_business_key_and_never_by_personal_data(h: Harness) -> None:
    from yibao.chains.model import Effects
    from yibao.workinjury_sync.results import emit_record

    fx = Effects("workinjury-sync", "download:GYD001", "download", clock.now())
    record = h.month.applications()[0] | {"record_id": "R1"}
    emit_record(fx, "GYD001", "T1", record)
    (emission,) = fx.emissions
    assert emission.key == record["apply_no"] and emission.topic_id == "workinjury_filings"
    assert json.loads(emission.message.to_json())["kind"] == "filing_application"


async def test_an_open_admissions_new_details_are_fetched_at_every_poll_until_its_settlement(h: Harness) -> None:
    from yibao.workinjury_sync.absorb import poll_now

    p = h.month.patients[0]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines[:5], h.now()))
    await h.drain()
    h.start_streams("GYD101", "GYD103")
    await h.drain()
    assert len(h.records("GYD102")) == 5
    h.his(h.month.fee_lines(p, p.lines[5:], h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    h.absorb(poll_now("GYD101", "ops:1"))
    await h.drain()
    assert len(h.records("GYD102")) == len(p.lines)
    h.absorb(poll_now("GYD103", "ops:2"))
    await h.drain()
    h.feed_back()
    await h.drain()
    assert h.state(stream_key("GYD101")).stream.open_admissions == []
    assert not h.sim.workinjury.snapshot()["detail_queues_waiting"]
