"""The README's generated blocks are what the code says today (regenerate with `make readme`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_topic_table_is_the_catalog() -> None:
    block = re.search(r"<!-- topics:begin -->\n(.*?)<!-- topics:end -->", README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md lost its topics markers"
    out = subprocess.run([sys.executable, "-m", "yibao.cli.main", "topics", "list", "--markdown"],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert block.group(1).strip() == out.strip(), "run `make readme`"


def test_the_readme_performance_table_is_what_the_bench_results_say() -> None:
    import importlib.util

    block = re.search(r"<!-- performance:begin -->\n(.*?)<!-- performance:end -->", README.read_text(encoding="utf-8"),
                      re.S)
    assert block, "README.md lost its performance markers"
    spec = importlib.util.spec_from_file_location("bench_report", README.parent / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    assert block.group(1).strip() == report.table().strip(), "run `make readme` after `make bench`"
