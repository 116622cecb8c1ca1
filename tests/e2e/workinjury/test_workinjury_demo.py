"""``yibao demo --workinjury`` on the real broker and database: the CLI hands the stack to the work-injury demo
(services/workinjury-sync/demo.py), which starts its own simulator side and the workinjury-sync worker, plays a
generated month of cross-province stays and prints the SLA figures — every upload inside its 30-minute deadline,
every download confirmed, the platform's state equal to the hospital's."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from support.stack import new_database
from yibao.cli import demo
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_the_demos_workinjury_month(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = dataclasses.replace(stack.info, database_url=new_database(stack, tmp_path))
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--workinjury", "--timeout", "600"])
    status = demo._workinjury(info, tmp_path, args)
    text = capsys.readouterr().out
    print(text)
    assert status == 0, text
    assert "work injury: a month of 3 cross-province stays" in text, text
    uploads = re.search(r"uploads inside their 30-minute deadline: (\d+)/(\d+)", text)
    assert uploads and uploads[1] == uploads[2] and int(uploads[1]) > 0, text
    downloads = re.search(r"downloads: (\d+) records delivered, (\d+) confirmed with GYU008, 0 awaiting", text)
    assert downloads and downloads[1] == downloads[2], text
    assert "the platform's state equals the hospital's: yes" in text, text
    assert (tmp_path / "workinjury" / "workinjury-sync.log").exists()  # its logs beside the day's
