"""The lag of each upload against its deadline, as ops see it on /metrics: the margin to the earliest deadline of
the records of a kind not accepted (negative once missed), the records past it, the backlog by status, the records
settled by outcome — labelled by target and kind only, never a record's key or a patient."""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest

from yibao.core import clock
from yibao.upload_scheduler.gauges import measure

from unit.upload_scheduler.harness import NOW, Harness, sample

pytestmark = pytest.mark.asyncio


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def _measure(h: Harness) -> None:
    async def db(fn: Any) -> Any:
        def unit() -> Any:
            with h.db.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(unit)

    await measure(db, h.config)


async def test_the_margin_to_the_deadline_goes_negative_once_missed_and_goes_away_when_accepted(
        h: Harness, sim: Any) -> None:
    week = sample(sim)
    page = next(i for i in week.items if i.kind == "4401")
    # discharged now (the page goes at 01:20 tomorrow), but HIS says it is owed two days ago
    h.source("4401", page.record, occurred=NOW, insuplc=page.insuplc_admdvs,
             deadline=NOW - _dt.timedelta(days=2))
    await h.run()
    await _measure(h)
    margin = value("yibao_upload_deadline_margin_seconds", target="national", kind="4401")
    missed_by = (clock.now() - (NOW - _dt.timedelta(days=2))).total_seconds()  # NOW is the harness's import time
    assert margin is not None and -missed_by - 60 < margin < -2 * 86400 + 60
    assert value("yibao_upload_overdue", target="national", kind="4401") == 1
    assert value("yibao_upload_backlog", target="national", kind="4401", status="pending") == 1
    before = value("yibao_upload_records_total", target="national", kind="4401", outcome="accepted") or 0
    await h.time_passes()
    assert h.record("4401", page.record["baseinfo"]["mdtrt_sn"]).status == "accepted"
    await _measure(h)
    assert value("yibao_upload_deadline_margin_seconds", target="national", kind="4401") is None
    assert value("yibao_upload_overdue", target="national", kind="4401") == 0
    assert value("yibao_upload_records_total", target="national", kind="4401", outcome="accepted") == before + 1


async def test_labels_never_carry_a_record_key_or_a_person(h: Harness, sim: Any) -> None:
    week = sample(sim, bad_day=0)
    for it in week.items:
        if it.kind in ("3503", "4101", "7101"):
            h.item(it)
    await h.run()
    await _measure(h)
    text = generate_latest(REGISTRY).decode()
    for it in week.items:
        if it.kind == "4101":
            info = it.record["setlinfo"]
            assert info["setl_id"] not in text and info["certno"] not in text and info["psn_name"] not in text
