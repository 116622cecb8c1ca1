"""`yibao replay uploads`: a rejected or parked record is sent once more by the worker (a second replay before it
went changes nothing); --dry-run only counts; --kind and --key narrow it."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from yibao.cli import replay

from unit.upload_scheduler.harness import Harness, sample

pytestmark = pytest.mark.asyncio


def args(**kw: Any) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    argv = ["uploads"] + [x for k, v in kw.items() for x in (f"--{k.replace('_', '-')}", v) if v is not True] + \
        [f"--{k.replace('_', '-')}" for k, v in kw.items() if v is True]
    return parser.parse_args(argv)


async def test_replay_uploads_sends_a_rejected_record_once_more(h: Harness, sim: Any, sqlite_url: str,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    week = sample(sim, bad_day=0)
    bad = [next(i for i in week.bad() if i.kind == "3301"), next(i for i in week.bad() if i.kind == "3401")]
    for it in bad:
        h.item(it)
    await h.run()
    assert replay.run(args(dry_run=True)) == 0
    out = capsys.readouterr().out
    assert "3301: 1 rejected record(s)" in out and "3401: 1 parked record(s)" in out and "would send 2" in out

    key = bad[0].record["data"]["fixmedins_hilist_id"]
    assert replay.run(args(kind="3301", key=key)) == 0
    assert "1 record(s) will be sent once more: {'3301': 1}" in capsys.readouterr().out
    assert replay.run(args(kind="3301")) == 0  # pending again already: nothing more
    assert "0 record(s)" in capsys.readouterr().out
    await h.run()
    assert h.sent("3301") == 2 and h.record("3301", key).sends == 2
    assert h.record("3401", bad[1].record["deptinfo"]["hosp_dept_codg"]).status == "parked"


async def test_replay_chains_knows_the_upload_scheduler() -> None:
    assert "upload-scheduler" in replay.CHAIN_SERVICES
