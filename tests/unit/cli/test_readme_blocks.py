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
