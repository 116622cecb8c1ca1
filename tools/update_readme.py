"""Regenerate the generated blocks of README.md (settings reference, topic catalog, supported transactions,
performance figures) from the code and from bench/results.

    make readme        # or: .venv/bin/python tools/update_readme.py
Tests fail when the README's blocks differ from what this writes, so the README cannot go stale.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = {
    "settings": ["settings", "--markdown"],
    "topics": ["topics", "list", "--markdown"],
    "transactions": ["catalog", "--markdown"],
    "performance": [],
}


ROOT = README.parent


def performance() -> str:
    """The performance table, from bench/results (bench/report.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.table())


def generated(block: str) -> str:
    if block == "performance":
        return performance()
    out = subprocess.run([sys.executable, "-m", "yibao.cli.main", *BLOCKS[block]], capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    return out.strip()


def main() -> int:
    text = README.read_text(encoding="utf-8")
    for block in BLOCKS:
        pattern = re.compile(rf"(<!-- {block}:begin -->\n).*?(<!-- {block}:end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + generated(block) + "\n" + m.group(2), text)
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
