"""msgid = fixmedins_code(12) + yyyyMMddHHmmss (Shanghai) + serial(4), unique by construction."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, select

from yibao.core.db.schema import msgid_slots
from yibao.envelope.msgid import MsgidAllocator, MsgidLeaseError, format_msgid, parse_msgid

from unit.envelope.national.national_standins import FakeTime, allocate_in_processes

CODE = "H44010600001"
MSGID = re.compile(r"H44010600001(\d{14})(\d{4})")
T0 = 1704067200.25  # 2024-01-01 00:00:00.25 UTC = 08:00:00 in Shanghai


def fake(engine: Engine, time: FakeTime, **kwargs) -> MsgidAllocator:
    kwargs.setdefault("slots", 2)
    return MsgidAllocator(engine, CODE, clock_s=time, sleep=time.sleep, async_sleep=time.asleep, **kwargs)


def assert_all_unique_and_well_formed(ids: list[str]) -> None:
    duplicates = [msgid for msgid, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    assert all(MSGID.fullmatch(msgid) for msgid in ids)


def test_msgid_is_code_then_shanghai_time_then_four_digit_serial(sqlite_engine):
    msgid = fake(sqlite_engine, FakeTime(T0)).allocate_sync()
    assert len(msgid) == 30
    assert msgid == "H44010600001" + "20240101080000" + "0000"
    parsed = parse_msgid(msgid)
    assert (parsed.fixmedins_code, parsed.sent_at.isoformat(), parsed.serial) == (
        CODE, "2024-01-01T08:00:00+08:00", 0)


def test_format_msgid_matches_parse_msgid():
    assert parse_msgid(format_msgid(CODE, int(T0), 42)).serial == 42


def test_serials_count_up_within_a_second_and_restart_at_the_next(sqlite_engine):
    time = FakeTime(T0)
    allocator = fake(sqlite_engine, time)
    first = [allocator.allocate_sync() for _ in range(3)]
    time.t += 1
    nxt = allocator.allocate_sync()
    assert [m[-4:] for m in first] == ["0000", "0001", "0002"]
    assert nxt[12:26] == "20240101080001" and nxt[-4:] == "0000"


def test_each_slot_owns_its_own_serial_range(sqlite_engine):
    time = FakeTime(T0)
    a, b = fake(sqlite_engine, time, slots=2), fake(sqlite_engine, time, slots=2)
    assert (a.allocate_sync()[-4:], b.allocate_sync()[-4:]) == ("0000", "5000")


def test_exhausted_range_waits_for_the_next_second(sqlite_engine):
    time = FakeTime(T0)
    allocator = fake(sqlite_engine, time, slots=5000)  # two serials per second per slot
    ids = [allocator.allocate_sync() for _ in range(3)]
    assert [m[12:] for m in ids] == ["202401010800000000", "202401010800000001", "202401010800010000"]


def test_clock_stepping_back_never_reuses_a_second(sqlite_engine):
    time = FakeTime(T0)
    allocator = fake(sqlite_engine, time)
    before = allocator.allocate_sync()
    time.t -= 10
    after = allocator.allocate_sync()
    assert after[12:26] == before[12:26] and after != before


def test_msgid_is_unique_across_concurrent_tasks(sqlite_engine):
    async def main() -> list[str]:
        replica_a = MsgidAllocator(sqlite_engine, CODE, slots=2)
        replica_b = MsgidAllocator(sqlite_engine, CODE, slots=2)

        async def task(allocator: MsgidAllocator) -> list[str]:
            return [await allocator.allocate() for _ in range(400)]

        results = await asyncio.gather(*(task(a) for a in [replica_a, replica_b] * 4))
        await replica_a.aclose()
        await replica_b.aclose()
        return [m for ids in results for m in ids]

    ids = asyncio.run(main())
    assert len(ids) == 3200
    assert_all_unique_and_well_formed(ids)


def test_msgid_is_unique_across_threads(sqlite_engine):
    allocator = MsgidAllocator(sqlite_engine, CODE, slots=1)
    results: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        results[i] = [allocator.allocate_sync() for _ in range(1000)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allocator.close_sync()
    ids = [m for r in results for m in r]
    assert len(ids) == 4000
    assert_all_unique_and_well_formed(ids)


def test_msgid_is_unique_across_processes(sqlite_url, sqlite_engine):
    ids = allocate_in_processes(sqlite_url, processes=4, per_process=1500, slots=4)
    assert len(ids) == 6000
    assert_all_unique_and_well_formed(ids)


def test_stale_slot_is_taken_over_and_the_new_owner_starts_the_next_second(sqlite_engine):
    time = FakeTime(T0)
    crashed = fake(sqlite_engine, time, slots=1)
    crashed.allocate_sync()  # holds the only slot, then "crashes" (never renews, never releases)
    time.t += 46.0  # past stale_after_s (45)
    taker = fake(sqlite_engine, time, slots=1)
    first = taker.allocate_sync()
    assert taker.slot == 0
    assert first[12:26] == "20240101080047"


def test_live_slot_is_not_taken_over(sqlite_engine):
    time = FakeTime(T0)
    holder = fake(sqlite_engine, time, slots=1)
    holder.allocate_sync()
    time.t += 30.0  # renewed below: alive
    holder.allocate_sync()
    time.t += 30.0
    other = fake(sqlite_engine, time, slots=1, lease_wait_s=3.0)
    with pytest.raises(MsgidLeaseError):
        other.allocate_sync()


def test_owner_that_lost_its_slot_notices_and_leases_again(sqlite_engine):
    time = FakeTime(T0)
    slow = fake(sqlite_engine, time, slots=2)
    before = slow.allocate_sync()
    time.t += 50.0  # slow stops renewing: its slot 0 goes stale
    b, c = fake(sqlite_engine, time, slots=2), fake(sqlite_engine, time, slots=2)
    b.allocate_sync()  # the free slot 1
    c.allocate_sync()  # takes over slot 0
    assert (b.slot, c.slot) == (1, 0)
    after = slow.allocate_sync()  # renewal finds another owner; waits until a slot is free again
    assert after != before and after[12:26] > before[12:26]
    with sqlite_engine.connect() as conn:
        owners = conn.execute(select(msgid_slots.c.owner)).scalars().all()
    assert slow.owner in owners and len(set(owners)) == 2


def test_released_slot_is_reused_only_after_the_last_second_issued(sqlite_engine):
    time = FakeTime(T0)
    first = fake(sqlite_engine, time, slots=1)
    last = [first.allocate_sync() for _ in range(5)][-1]
    first.close_sync()
    second = fake(sqlite_engine, time, slots=1)
    nxt = second.allocate_sync()
    assert second.slot == 0
    assert nxt[12:26] > last[12:26]


def test_fresh_slot_issues_in_the_current_second(sqlite_engine):
    time = FakeTime(T0)
    assert fake(sqlite_engine, time).allocate_sync()[12:26] == "20240101080000"


def test_lease_stops_being_trusted_when_renewal_keeps_failing(sqlite_engine, monkeypatch):
    time = FakeTime(T0)
    allocator = fake(sqlite_engine, time, slots=1)
    allocator.allocate_sync()
    from sqlalchemy.exc import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("update", {}, Exception("database unreachable"))

    monkeypatch.setattr(allocator.engine, "begin", broken)
    time.t += 6.0  # renewal due, fails, still within lease_ttl_s (15): keeps issuing
    allocator.allocate_sync()
    time.t += 10.0  # past lease_ttl_s since the last successful renewal: stops
    with pytest.raises(MsgidLeaseError):
        allocator.allocate_sync()


def test_wrong_code_or_slot_count_is_refused(sqlite_engine):
    from yibao.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        MsgidAllocator(sqlite_engine, "H123")
    with pytest.raises(ConfigurationError):
        MsgidAllocator(sqlite_engine, CODE, slots=3)
