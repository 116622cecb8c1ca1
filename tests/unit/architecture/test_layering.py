"""The layering the design sets, checked on every import statement of the code (``ast``, not by running it): services
talk only through topics, never through each other's code; the simulator is never imported by a service; libraries
never import a service — except the ``yibao`` command, the composition root that starts them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {"ingest", "registration", "settlement", "upload_scheduler", "workinjury_sync", "mobilepay",
            "reconciliation", "his_writer", "counter"}
FOLDERS = {f"services/{s.replace('_', '-')}": f"yibao.{s}" for s in SERVICES}
LIBS = {f"libs/{p.name}": f"yibao.{p.name}" for p in (ROOT / "libs").iterdir() if (p / "__init__.py").exists()}
COMPOSITION_ROOTS = {"yibao.cli"}  #: `yibao worker <service>`, `yibao sim`: it starts what the others may not import


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _top(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "yibao" and len(parts) > 1 else parts[0]


def _violations(folder: str, package: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imports(path):
            top = _top(module)
            if top in forbidden and top != package:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


SERVICE_PACKAGES = {f"yibao.{s}" for s in SERVICES}


@pytest.mark.parametrize(("folder", "package"), sorted(FOLDERS.items()))
def test_a_service_never_imports_another_service_or_the_simulator(folder: str, package: str) -> None:
    if not (ROOT / folder).exists():
        pytest.skip(f"{folder} is not there")
    assert _violations(folder, package, SERVICE_PACKAGES | {"yibao.simulator"}) == []


@pytest.mark.parametrize(("folder", "package"), sorted(LIBS.items()))
def test_a_library_never_imports_a_service_or_the_simulator(folder: str, package: str) -> None:
    if package in COMPOSITION_ROOTS:
        pytest.skip("the yibao command is the composition root")
    assert _violations(folder, package, SERVICE_PACKAGES | {"yibao.simulator"}) == []


def test_the_simulator_never_imports_a_service() -> None:
    assert _violations("simulator", "yibao.simulator", SERVICE_PACKAGES) == []


def test_the_checks_see_every_service_and_library_folder() -> None:
    assert set(FOLDERS) >= {f"services/{p.name}" for p in (ROOT / "services").iterdir() if p.is_dir()
                            and not p.name.startswith((".", "__"))}
    assert {"libs/core", "libs/chains", "libs/envelope", "libs/hisevents"} <= set(LIBS)


def test_a_violation_would_be_found(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom yibao.settlement.chain import SettlementChain\n", encoding="utf-8")
    assert [m for _, m in _imports(bad)] == ["os", "yibao.settlement.chain"]
    assert _top("yibao.settlement.chain") == "yibao.settlement"
