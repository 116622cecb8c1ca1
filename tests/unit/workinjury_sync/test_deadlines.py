"""Deadlines are the point: each upload's age against its 30-minute limit and each stream's lag, as metrics read
from the database (the same on every replica), with an answer to HIS that says whether it was on time."""

from __future__ import annotations

import datetime as _dt

from unit.workinjury_sync.harness import Harness
from yibao.core import clock
from yibao.workinjury_sync import deadlines, metrics
from yibao.workinjury_sync.streams import stream_key


def _read(h: Harness, now: _dt.datetime) -> deadlines.Watch:
    limits = deadlines.upload_deadlines(h.config.catalog)
    with h.db.begin() as conn:
        return deadlines.read_watch(conn, now, limits, h.settings.deadline_warning_ratio)


async def test_an_upload_waiting_is_watched_from_its_business_event_and_at_risk_before_its_deadline(
        h: Harness) -> None:
    p = h.month.patients[0]
    occurred = clock.now() - _dt.timedelta(minutes=21)
    h.his(h.month.admitted(p, "BA-x", occurred))  # fee lines wait for nothing; the admission waits to be sent
    h.his(h.month.fee_lines(p, p.lines, occurred))
    watch = _read(h, clock.now())
    assert 21 * 60 <= watch.oldest["GYU101"] < 22 * 60
    assert watch.at_risk == {"GYU101": 1, "GYU102": 1}  # 21 of 30 minutes: past 66 %
    limits = deadlines.upload_deadlines(h.config.catalog)
    deadlines.publish(watch, limits, h.config.streams, 1800.0)
    assert metrics.OLDEST_WAITING.labels("GYU101")._value.get() >= 21 * 60
    assert metrics.DEADLINE.labels("GYU101")._value.get() == 1800
    assert metrics.AT_RISK.labels("GYU102")._value.get() == 1
    await h.drain()
    assert _read(h, clock.now()).oldest == {}, "nothing waits once the platform answered"


async def test_an_answer_says_how_old_the_upload_was_and_whether_it_was_on_time(h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = h.approved_filing(p)
    before = metrics.LATE.labels("GYU101")._value.get()
    h.his(h.month.admitted(p, filing_no, clock.now() - _dt.timedelta(minutes=40)))
    await h.drain()
    (result,) = h.results(f"stay:{p.stay_id}")
    assert result.deadline_s == 1800 and result.age_s >= 2400 and result.on_time is False
    assert metrics.LATE.labels("GYU101")._value.get() == before + 1


async def test_a_streams_lag_counts_from_its_last_complete_poll(h: Harness) -> None:
    h.start_streams("GYD006")
    await h.drain()
    state = h.state(stream_key("GYD006"))
    watch = _read(h, state.stream.last_cycle_at + _dt.timedelta(minutes=45))
    assert watch.lag["GYD006"] == 45 * 60
    deadlines.publish(watch, {}, ("GYD006",), 1800.0)
    assert metrics.DOWNLOAD_LAG.labels("GYD006")._value.get() == 45 * 60
    assert metrics.POLL_INTERVAL.labels("GYD006")._value.get() == 1800.0


async def test_a_delivery_waiting_for_its_confirmation_is_an_upload_on_a_deadline(h: Harness) -> None:
    h.offer_applications()
    h.transport.faults["GYU008"] = ["reset"] * 20
    h.start_streams("GYD001")
    try:
        await h.drain(timeout=3)
    except TimeoutError:
        pass
    assert "GYU008" in _read(h, clock.now()).oldest
