"""How ``yibao demo`` is put together (yibao.cli.demo, yibao.cli.uploads_demo), without starting anything: the
upload-scheduler's settings the demo gives it, the 4101 清单 it makes for the day's settlements, the lines it
prints, and ``--workinjury`` handing over to services/workinjury-sync/demo.py. The runs themselves:
tests/e2e/uploads/test_uploads_demo.py and tests/e2e/workinjury/test_workinjury_demo.py."""

from __future__ import annotations

import argparse
import datetime as _dt
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from yibao.cli import demo, uploads_demo
from yibao.core import clock
from yibao.core.results import HisResult, SettlementSplit
from yibao.fakedata.uploads import generate_uploads
from yibao.simulator.targets import CREDENTIALS
from yibao.upload_scheduler.config import load_lanes
from yibao.upload_scheduler.settings import UploadSchedulerSettings


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_demo_lanes_are_the_shipped_ones_all_realtime(tmp_path: Path) -> None:
    shipped = load_lanes()
    lanes = load_lanes(uploads_demo.demo_lanes(tmp_path / "lanes.yaml"))
    assert set(lanes) == set(shipped)
    assert {spec.schedule.mode for spec in shipped.values()} > {"realtime"}  # production waits for some
    for kind, spec in lanes.items():
        assert spec.schedule.mode == "realtime", kind
        assert spec.model_dump(exclude={"schedule"}) == shipped[kind].model_dump(exclude={"schedule"}), kind


def test_prepare_enables_every_target_on_the_simulator_with_the_credentials_it_accepts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = SimpleNamespace(sim_url="http://127.0.0.1:7070", extra_env={"YIBAO_SIM_HOLD_S": "5"})
    uploads_demo.prepare(bridge, tmp_path)
    assert bridge.extra_env["YIBAO_SIM_HOLD_S"] == "5"  # what was there stays
    for name, value in bridge.extra_env.items():
        monkeypatch.setenv(name, value)
    settings = UploadSchedulerSettings()
    assert settings.targets_enabled == list(uploads_demo.TARGETS)
    assert settings.zifei_url == "http://127.0.0.1:7070/targets/zifei"
    assert settings.flu_url == "http://127.0.0.1:7070/targets/flu"
    assert settings.zifei_app_secret.get_secret_value() == CREDENTIALS["zifei"]["secret"]
    assert settings.drg_app_key == CREDENTIALS["drg"]["app_key"]
    assert settings.epidemic_token.get_secret_value() == CREDENTIALS["epidemic"]["token"]
    assert settings.lanes_file == tmp_path / "uploads-lanes.yaml" and settings.lanes_file.exists()
    assert set(settings.catalog_infnos) == set(uploads_demo.CATALOGS)


def _result(setl_id: str, *, refunded_from: str | None = None) -> HisResult:
    if refunded_from:
        return HisResult(message_id=f"r-{setl_id}", his_visit_id="ZY9", visit_kind="inpatient", kind="refunded",
                         service="settlement", setl_id=setl_id, orig_setl_id=refunded_from)
    split = SettlementSplit(medfee_sumamt=Decimal("1000.00"), fund_pay_sumamt=Decimal("800.00"),
                            psn_part_amt=Decimal("200.00"), acct_pay=Decimal("50.00"), psn_cash_pay=Decimal("150.00"))
    return HisResult(message_id=f"m-{setl_id}", his_visit_id=f"ZY-{setl_id}", visit_kind="inpatient", kind="settled",
                     service="settlement", setl_id=setl_id, mdtrt_id=f"MD{setl_id}", setl_time=clock.now(),
                     insuplc_admdvs="440100", split=split)


def test_the_day_settlements_get_their_4101_the_first_planted_bad_with_its_fix() -> None:
    week = generate_uploads(2026, _dt.date(2026, 11, 18), days=1, inpatients=1, outpatients=1, pharmacy=1,
                            bad_day=0)
    items, fixes = uploads_demo._with_day_lists(week, [_result("S1"), _result("S2")])
    lists = [i for i in items if i.kind == "4101"]
    assert [i.record["setlinfo"]["setl_id"] for i in lists] == ["S1", "S2"]
    assert lists[0].bad and not lists[1].bad
    assert lists[1].record["payinfo"] == [{"fund_pay_type": "310100", "fund_payamt": Decimal("800.00")}]
    assert lists[1].record["setlinfo"]["mdtrt_id"] == "MDS2" and lists[1].his_visit_id == "ZY-S2"
    assert lists[1].insuplc_admdvs == "440100"
    [fix] = [f for f in fixes if f.kind == "4101"]
    assert fix.record["setlinfo"]["setl_id"] == "S1" and not fix.bad
    assert sum(1 for d in fix.record["diseinfo"] if d["maindiag_flag"] == "1") == 1
    # the other kinds are the generated ones, untouched
    assert [i for i in items if i.kind != "4101"] == [i for i in week.items if i.kind != "4101"]


def test_without_a_settlement_the_generated_4101_stays() -> None:
    week = generate_uploads(2026, _dt.date(2026, 11, 18), days=1, inpatients=1, outpatients=1, pharmacy=1)
    items, fixes = uploads_demo._with_day_lists(week, [])
    assert items == week.items and fixes == list(week.fixes.values())


def test_a_record_waiting_for_a_refused_prerequisite_counts_as_settled() -> None:
    lanes = load_lanes()
    records = {("3301", "A"): {"status": "rejected", "revision": 1},
               ("3302", "A"): {"status": "pending", "revision": 1},
               ("3302", "B"): {"status": "pending", "revision": 1},
               ("3301", "B"): {"status": "accepted", "revision": 1},
               ("4201", "C"): {"status": "pending", "revision": 1},
               ("4101", "D"): {"status": "accepted", "revision": 1}}
    settled = {k: uploads_demo._settled_record(k, records, lanes, 1) for k in records}
    assert settled == {("3301", "A"): True, ("3302", "A"): True, ("3302", "B"): False, ("3301", "B"): True,
                       ("4201", "C"): False, ("4101", "D"): True}
    assert not uploads_demo._settled_record(("4101", "D"), records, lanes, 2)  # the fix not there yet
    assert not uploads_demo._settled_record(("4101", "E"), records, lanes, 1)


def test_the_lines_the_demo_prints() -> None:
    lanes = load_lanes()
    up = uploads_demo.Uploads(lists=2, refunded=1, seconds=3.2, dates=["2026-12-06", "2026-12-07"])
    up.sent = {("4101", "S1"): None, ("4101", "S2"): None, ("zifei.fee", "Z1"): None}
    up.records = {k: {"kind": k[0], "status": "accepted", "revision": 2} for k in up.sent}
    up.refused = {("4101", "S1"): {"status": "rejected", "reason": "[4101] diseinfo: 主诊断不唯一"},
                  ("zifei.fee", "Z1"): {"status": "parked", "reason": "zifei.fee: fee.amt: required",
                                        "reason_field": "fee.amt"}}
    up.fixed = Counter({"accepted": 2})
    up.summary = [{"target": "national", "kind": "4101", "due": 2, "sent": 2, "accepted": 2, "rejected": 0,
                   "parked": 0, "withdrawn": 0, "pending": 0, "overdue": 0},
                  {"target": "national", "kind": "4101", "due": 1, "sent": 0, "accepted": 0, "rejected": 0,
                   "parked": 0, "withdrawn": 1, "pending": 0, "overdue": 0},
                  {"target": "zifei", "kind": "zifei.fee", "due": 1, "sent": 1, "accepted": 0, "rejected": 0,
                   "parked": 1, "withdrawn": 0, "pending": 0, "overdue": 1}]
    up.catalogs = [{"infno": "1301", "ver": "202400000003", "rows": 40}, {"infno": "1201", "ver": "x", "rows": 1}]
    lines = uploads_demo._lines(up, lanes)
    text = "\n".join(lines)
    assert lines[0].startswith("uploads: HIS gave 3 records of 2 kinds (2 for the national platform, 1 for the 5 "
                               "other targets; 2 结算清单 for the day's inpatient settlements, 1 withdrawn as refunded)")
    assert "GET /uploads/summary?date=… for 2026-12-06, 2026-12-07" in text
    assert "  national  due 3 · accepted 2 · withdrawn 1" in lines
    assert "4101 2/3 (1 withdrawn)" in text and "4101 2/3 (1 withdrawn) ✗" not in text
    assert "  zifei     due 1 · parked 1 · overdue 1" in lines and "zifei.fee 0/1 ✗" in text
    assert "      1 × rejected 4101: diseinfo: 主诊断不唯一" in lines
    assert "      1 × parked zifei.fee: fee.amt: required (field fee.amt)" in lines
    assert "  HIS sent 2 fixes: accepted 2" in lines
    assert "1201 ver x (1 row), 1301 ver 202400000003 (40 rows)" in text
    assert lines[-1] == "  every record HIS gave is now held by its platform (the refused ones once fixed)"
    up.open = ["4201 C: pending"]
    assert uploads_demo._lines(up, lanes)[-1].startswith("  PROBLEMS: 1 records not settled: 4201 C: pending")


def test_workinjury_is_off_by_default_and_a_flag() -> None:
    assert _parse().workinjury is False
    assert _parse("--workinjury").workinjury is True


def test_workinjury_hands_the_stack_to_the_work_injury_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    from yibao.workinjury_sync import demo as workinjury_demo

    calls: list[dict[str, Any]] = []

    def fake_run(info: Any, workdir: Path, **kwargs: Any) -> int:
        calls.append({"info": info, "workdir": workdir, **kwargs})
        return 3

    monkeypatch.setattr(workinjury_demo, "run", fake_run)
    info = SimpleNamespace(kafka_bootstrap="127.0.0.1:9092", database_url="sqlite:///x")
    assert demo._workinjury(info, tmp_path, _parse("--workinjury", "--seed", "7", "--timeout", "90")) == 3
    assert calls == [{"info": info, "workdir": tmp_path / "workinjury", "seed": 7, "timeout": 90.0}]
    assert (tmp_path / "workinjury").is_dir()

