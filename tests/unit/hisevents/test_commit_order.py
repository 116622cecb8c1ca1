"""HIS commit order across tables: the key of a change and the pure release decision (yibao.hisevents.order)."""

from __future__ import annotations

import datetime as _dt

import pytest

from yibao.fakedata.cdc import CdcShape
from yibao.fakedata.his import generate_day
from yibao.hisevents import Ingestor, load_mapping
from yibao.hisevents.order import (
    EVERYTHING,
    NOTHING,
    PartitionState,
    commit_key,
    decode_key,
    encode_key,
    may_release,
    release_bound,
)

MAPPING = load_mapping("example-oracle-his")


@pytest.mark.parametrize("shape", [
    CdcShape(connector="oracle", schemas=True),
    CdcShape(connector="oracle", unwrap=True),
    CdcShape(connector="mysql", upper_case=False, decimal_mode="string"),
    CdcShape(connector="postgresql", upper_case=False, schemas=True),
    CdcShape(connector="sqlserver", decimal_mode="string"),
], ids=["oracle", "oracle-unwrapped", "mysql", "postgresql", "sqlserver"])
def test_the_commit_key_follows_the_order_his_committed_the_changes_in(shape: CdcShape) -> None:
    messages = generate_day(11, day=_dt.date(2026, 3, 2), outpatients=12, inpatients=2, shape=shape)
    ingestor = Ingestor(MAPPING)
    keys = []
    for m in messages:
        if m.value is None:
            continue
        result = ingestor.ingest(m.topic, 0, 0, m.key, m.value)
        if result.events:
            keys.append(result.commit_key)
    assert keys and all(k is not None for k in keys)
    assert keys == sorted(keys), "generate_day writes the changes in commit order"
    assert len(set(keys)) == len(keys), "the log position tells apart changes of the same millisecond"


def test_the_key_is_the_source_time_then_the_log_position_of_the_connector() -> None:
    assert commit_key(1000, {"scn": "8200000007", "commit_scn": "8200000010", "ssn": "1"}) == \
        (1000, 8200000010, 8200000007, 1)
    assert commit_key(1000, {"file": "mysql-bin.000042", "pos": "516", "row": "0"}) == (1000, 42, 516, 0)
    assert commit_key(1000, {"change_lsn": "00000027:00000001:0003", "commit_lsn": "00000027:00000001:0005",
                             "event_serial_no": "1"}) == (1000, 0x27000000010005, 0x27000000010003, 1)
    assert commit_key(1000, {"lsn": "24000256"}) == (1000, 24000256)
    assert commit_key(1000, {}) == (1000,)
    # a later binlog file is later, whatever the position in it
    assert commit_key(5, {"file": "mysql-bin.000043", "pos": "4"}) > commit_key(5, {"file": "mysql-bin.000042",
                                                                                    "pos": "999999"})


def test_a_change_without_a_source_time_has_no_place_and_is_released_at_once() -> None:
    assert commit_key(None, {"scn": "1"}) is None
    assert may_release(None, NOTHING)


def test_everything_is_released_when_every_partition_is_caught_up() -> None:
    states = [PartitionState((5,), True), PartitionState(None, True)]
    assert release_bound(states) == EVERYTHING
    assert release_bound([]) == EVERYTHING
    assert may_release((10**15, 1), EVERYTHING)


def test_nothing_is_released_while_a_lagging_partition_has_delivered_nothing_yet() -> None:
    states = [PartitionState((5,), True), PartitionState(None, False)]
    assert release_bound(states) == NOTHING
    assert not may_release((0,), release_bound(states))


def test_a_change_is_released_once_every_lagging_partition_delivered_a_later_one() -> None:
    # the visit table (caught up) delivered a cancellation at t=50; the settlement-request table lags at t=30
    states = [PartitionState((50,), True), PartitionState((30,), False), PartitionState((40,), False)]
    bound = release_bound(states)
    assert bound == (30,)
    assert may_release((30,), bound)  # the lagging table's own change
    assert not may_release((50,), bound)  # the cancellation waits for the settlement requests before it
    # the lagging tables move past it
    assert may_release((50,), release_bound([PartitionState((50,), True), PartitionState((51,), False),
                                             PartitionState((60,), False)]))


def test_ties_in_time_are_ordered_by_the_log_position() -> None:
    bound = release_bound([PartitionState((7, 100), False), PartitionState((7, 300), True)])
    assert may_release((7, 100), bound) and not may_release((7, 200), bound)


def test_the_key_survives_the_database() -> None:
    key = commit_key(1764567890123, {"commit_scn": "8200000010", "scn": "8200000007"})
    assert key is not None and decode_key(encode_key(key)) == key
