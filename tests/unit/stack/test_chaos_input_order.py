"""The chaos run's HIS input is in HIS commit order on every CDC topic, as Debezium writes a HIS's log."""

from __future__ import annotations

import datetime as _dt

from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.fakedata.people import population
from yibao.hisevents.debezium import ChangeEvent, decode
from yibao.hisevents.order import commit_key
from yibao.stack.chaos import in_commit_order


def _inversions(messages: list) -> int:
    last: dict[str, tuple] = {}
    inversions = 0
    for m in messages:
        change = decode(m.topic, 0, 0, m.key, m.value)
        if isinstance(change, ChangeEvent):
            key = commit_key(change.source_ts_ms, change.position)
            if m.topic in last and key < last[m.topic]:
                inversions += 1
            last[m.topic] = key
    return inversions


def test_days_run_into_each_other_so_the_run_puts_their_records_in_commit_order() -> None:
    people = population(7, 120)
    messages = []
    for n in range(3):  # inpatient stays of the first day are discharged and settled days later
        messages += generate_day(7, day=_dt.date(2026, 10, 1) + _dt.timedelta(days=n), outpatients=20,
                                 inpatients=12, people=people[n * 40:n * 40 + 40], shape=CdcShape())
    assert _inversions(messages) > 0, "one day after the other is not commit order"
    ordered = in_commit_order(messages)
    assert _inversions(ordered) == 0
    assert sorted(map(id, ordered)) == sorted(map(id, messages)), "every record kept"
    for before, after in zip(ordered, ordered[1:]):  # a tombstone stays right behind its delete
        if after.value is None:
            assert before.value is not None and before.key == after.key
