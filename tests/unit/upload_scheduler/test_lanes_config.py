"""The lanes file and the scheduler's catalog agree: every lane's transaction has a schema and a lost-answer rule the
engine can follow (never "manual"), a lookup asks the catalog's own query, a change/reverse/poll transaction exists;
a broken lanes file is refused with the entry named; schedules and shards behave."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest

from yibao.core import clock
from yibao.envelope.catalog import Catalog
from yibao.upload_scheduler.config import Schedule, UploadConfig, lane_key, load_lanes, parse_lane_key
from yibao.upload_scheduler.errors import LaneConfigError
from yibao.upload_scheduler.settings import UploadSchedulerSettings
from yibao.upload_scheduler.targets.catalog import build_catalog, load_targets, target_of

LANES = load_lanes()
CATALOG = build_catalog(Catalog.load(None))
T0 = _dt.datetime(2025, 3, 4, 10, 7, 30, tzinfo=clock.SHANGHAI)


@pytest.mark.parametrize("kind", sorted(LANES))
def test_every_lane_has_a_catalogued_transaction_whose_lost_answer_is_resolved_without_a_person(kind: str) -> None:
    spec = LANES[kind]
    assert target_of(spec.infno) == spec.target
    for infno in filter(None, (spec.infno, spec.change_infno, spec.reverse_infno, spec.poll_infno)):
        tx = CATALOG.transaction(infno)
        assert tx.has_schema, f"{infno} has no input schema"
        assert tx.resolution in ("retry", "query"), f"{infno}: lost answers resolved by {tx.resolution}"
        if tx.resolution == "query":
            query = CATALOG.transaction(tx.lost_answer.query)  # type: ignore[union-attr, arg-type]
            assert query.retry_safe and query.has_schema


def test_the_lookups_the_steps_build_ask_the_query_the_catalog_names() -> None:
    from yibao.upload_scheduler.steps.catalog_mapping import lookup_1317
    from yibao.upload_scheduler.steps.common import StepContext
    from yibao.upload_scheduler.steps.departments import lookup_5101

    for infno in ("3401", "3402", "3403"):
        lk = lookup_5101(infno, {"hosp_dept_codg": "D01", "hosp_dept_name": "内科"})
        assert lk.infno == CATALOG.transaction(infno).lost_answer.query  # type: ignore[union-attr]
        CATALOG.prepare_input(lk.infno, lk.input)  # the query's input passes its schema
    for infno in ("3301", "3302"):
        ctx = StepContext(UploadConfig(lanes=LANES, fixmedins_code="H44010600001"), LANES[infno], CATALOG)
        lk = lookup_1317(ctx, infno, {"fixmedins_hilist_id": "H01", "med_list_codg": "XA00000001", "list_type": "101"})
        assert lk.infno == CATALOG.transaction(infno).lost_answer.query  # type: ignore[union-attr]
        CATALOG.prepare_input(lk.infno, lk.input)


def test_every_national_upload_and_download_the_issue_names_has_a_schema_and_a_lost_answer_rule() -> None:
    national = Catalog.load(None)
    uploads = ["4101", "4201", "4301", "4302", "4401", "4402", *[f"450{i}" for i in range(1, 7)], "4601", "4602",
               "4701", "3301", "3302", "3401", "3402", "3403", *[f"350{i}" for i in range(1, 8)], "7101", "7104",
               "7105"]
    for infno in uploads:
        tx = national.transaction(infno)
        assert tx.has_schema and tx.resolution in ("retry", "query"), infno
    for infno in [f"13{i:02d}" for i in range(1, 20)] + ["1901", "1201"]:
        tx = national.transaction(infno)
        assert tx.has_schema and tx.retry_safe and tx.resolution == "retry", infno


def test_targets_file_transactions_are_in_the_catalog_with_their_wording() -> None:
    targets = load_targets()
    assert set(targets) == {"zifei", "yimatong", "drg", "epidemic", "flu"}
    for name, spec in targets.items():
        for infno in spec.transactions:
            assert target_of(infno) == name
            assert CATALOG.transaction(infno).category == f"target {name}"
    assert CATALOG.says("already_uploaded", "数据已存在，请勿重复上传")


def test_transaction_names_fit_the_call_journal() -> None:
    from yibao.core.db.schema import chain_calls, platform_calls

    width = min(chain_calls.c.infno.type.length, platform_calls.c.infno.type.length)  # type: ignore[attr-defined]
    names = [infno for spec in load_targets().values() for infno in spec.transactions]
    names += [i for spec in LANES.values() for i in (spec.infno, spec.change_infno, spec.reverse_infno,
                                                     spec.poll_infno) if i]
    assert max(map(len, names)) <= width


def test_schedules_realtime_daily_and_every_n_minutes() -> None:
    assert Schedule(mode="realtime").due(T0) == T0
    assert Schedule(mode="daily", at="01:20").due(T0) == _dt.datetime(2025, 3, 5, 1, 20, tzinfo=clock.SHANGHAI)
    assert Schedule(mode="every", minutes=15).due(T0) == _dt.datetime(2025, 3, 4, 10, 15, tzinfo=clock.SHANGHAI)
    assert Schedule(mode="every", minutes=15).due(T0.replace(minute=15, second=0)) == T0.replace(minute=30, second=0)
    with pytest.raises(ValueError, match="HH:MM"):
        Schedule(mode="daily", at="25:00")


def test_sharded_lanes_spread_records_by_key_and_keys_parse_back() -> None:
    spec = LANES["4402"]
    keys = {lane_key(spec, f"ZY{i:04d}-1") for i in range(50)}
    assert keys == {"national:4402:0", "national:4402:1"}
    assert lane_key(LANES["4101"], "S1") == "national:4101"
    assert parse_lane_key("national:4402:1") == ("national", "4402", 1)
    assert parse_lane_key("zifei:zifei.fee") == ("zifei", "zifei.fee", 0)
    with pytest.raises(ValueError):
        parse_lane_key("nonsense")
    config = UploadConfig(lanes=LANES)
    assert config.lane_keys("4402") == ["national:4402:0", "national:4402:1"]


def test_the_settlement_list_deadline_is_the_setting() -> None:
    config = UploadConfig.from_settings(UploadSchedulerSettings(settlement_list_deadline_days=3))
    assert config.lanes["4101"].deadline.span == _dt.timedelta(days=3)
    assert config.settlement_list_deadline == _dt.timedelta(days=3)


@pytest.mark.parametrize(("text", "message"), [
    ("lanes: {x: {target: national, infno: '4101', family: settlement_list, name: n, shape: list}}",
     "lanes.x: Value error, a list lane names its node"),
    ("lanes: {x: {target: national, infno: '4101', family: settlement_list, name: n, batch: 5}}",
     "an object lane sends one record per call"),
    ("lanes: {x: {target: national, infno: '4101', family: f, name: n, requires: {lane: nowhere}}}",
     "lanes.x.requires names nowhere, which is not a lane"),
    ("lanes: {x: {target: national, infno: '4101', family: f, name: n, colour: red}}", "lanes.x.colour"),
    ("lanes: [", "not YAML"),
])
def test_a_broken_lanes_file_is_refused_with_the_entry_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "lanes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LaneConfigError) as exc:
        load_lanes(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_a_lanes_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(LaneConfigError, match="cannot be read"):
        load_lanes(tmp_path / "missing.yaml")
