"""The uploads part of ``yibao demo`` (yibao.cli.uploads_demo) on the real broker and database: the day's inpatient
settlements on ``his_results`` get their 4101 结算清单 (a refunded one is withdrawn), a generated day of every other
upload goes to the national platform and the five other targets through a real ``yibao worker upload-scheduler``,
the planted bad records are refused with their reasons and accepted once HIS fixes them, and the lines the demo
prints carry the daily summary per target and kind, the refusals by reason and the catalogs in force."""

from __future__ import annotations

import asyncio
import re
import dataclasses
import datetime as _dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from support.kafka import produce
from support.stack import new_database
from yibao.cli import uploads_demo
from yibao.core import clock
from yibao.core.db.migrations import upgrade
from yibao.core.kafka import create_topics
from yibao.core.results import HisResult, SettlementSplit, stable_id
from yibao.core.topics import CATALOG, topic
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def _settled(setl_id: str, visit: str) -> HisResult:
    total = Decimal("2345.60")
    split = SettlementSplit(medfee_sumamt=total, fund_pay_sumamt=total - Decimal("300.00"),
                            psn_part_amt=Decimal("300.00"), acct_pay=Decimal("100.00"), psn_cash_pay=Decimal("200.00"))
    return HisResult(message_id=stable_id("demo-test", setl_id), his_visit_id=visit, visit_kind="inpatient",
                     kind="settled", service="settlement", setl_id=setl_id, mdtrt_id=f"M{setl_id}",
                     setl_time=clock.now() - _dt.timedelta(hours=1), insuplc_admdvs="440100", split=split)


def _refunded(setl_id: str, visit: str) -> HisResult:
    return HisResult(message_id=stable_id("demo-test-refund", setl_id), his_visit_id=visit, visit_kind="inpatient",
                     kind="refunded", service="settlement", setl_id=f"R{setl_id}", orig_setl_id=setl_id)


def test_the_demos_uploads(stack: Stack, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    upgrade(url)
    prefix = f"upd{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    asyncio.run(create_topics(info.kafka_bootstrap, [(s.full_name(prefix), s.partitions, {}) for s in CATALOG]))
    bridge = LocalBridge(info, tmp_path, prefix=prefix, services=(uploads_demo.SERVICE,), sim_seed=2026)
    uploads_demo.prepare(bridge, tmp_path)
    bridge.start()
    try:
        # the day's inpatient settlements, as settlement told HIS (the third refunded since)
        tag = uuid.uuid4().hex[:6].upper()
        stays = [(f"S{tag}{n}", f"ZY{tag}{n}") for n in range(3)]
        results = [_settled(s, v) for s, v in stays] + [_refunded(*stays[2])]
        asyncio.run(produce(info.kafka_bootstrap, [(topic("his_results", prefix), r.his_visit_id.encode(),
                                                    r.to_json()) for r in results]))
        lines = asyncio.run(uploads_demo.run(bridge, seed=2026, timeout=240))
        platform = bridge.admin("uploads")
    finally:
        bridge.stop()
    text = "\n".join(lines)
    print(text)
    assert "PROBLEMS" not in text, text
    assert "2 结算清单 for the day's inpatient settlements, 1 withdrawn as refunded" in text, text
    assert "every record HIS gave is now held by its platform" in text, text
    for target in uploads_demo.TARGETS:  # every target has its summary line
        assert any(line.startswith(f"  {target:9} due ") for line in lines), (target, text)
    assert "4101 2/3 (1 withdrawn)" in text, text
    # the planted bad records: refused with the platform's reason (or parked naming the field), then fixed
    refused = re.search(r"refused at first, by reason \((\d+)", text)
    assert refused and int(refused[1]) >= 10, text
    assert f"HIS sent {refused[1]} fixes: accepted {refused[1]}" in text, text
    assert "rejected 4101: diseinfo: 主诊断不唯一" in text and "parked 3401: deptinfo.itro: required" in text, text
    assert "catalogs in force" in text and "1305 ver 202400000003" in text, text
    # the national platform holds the two 清单 of the settlements not refunded, each once, and not the refunded one
    held = {r["key"]: r for r in platform["records"] if r["family"] == "4101"}
    assert {s for s, _ in stays[:2]} <= set(held) and stays[2][0] not in held
    assert all(held[s]["versions"] == 1 for s, _ in stays[:2])
