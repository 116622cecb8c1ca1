"""The ``yibao`` entry point (yibao.cli.main): every registered command is reachable and well-formed."""

from __future__ import annotations

import importlib
import re

import pytest

from yibao.cli.main import COMMANDS, main
from yibao.core.topics import CATALOG


def _help(capsys: pytest.CaptureFixture[str], *path: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_help_lists_every_command(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    # a command path (topics, list) is listed by the help of its group (yibao topics --help)
    listing = _help(capsys, *path[:-1])
    assert re.search(rf"^\s+{re.escape(path[-1])}\b", listing, re.MULTILINE), listing


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_registered_command_module_imports_and_has_add_arguments_and_run(path: tuple[str, ...]) -> None:
    module_name = COMMANDS[path][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):  # as main.py: "not available in this build"
            pytest.skip(f"{module_name} is not written yet")
        raise
    assert callable(getattr(module, "add_arguments", None)) and callable(getattr(module, "run", None))


def test_a_command_group_alone_prints_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics"]) == 2
    assert "list" in capsys.readouterr().out


def test_topics_list_markdown_prints_one_row_per_catalog_topic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "list", "--markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert len(rows) == len(CATALOG)
    for spec, row in zip(CATALOG, rows):
        assert row.startswith(f"| `{spec.name}` | {spec.partitions} |")


def test_topics_list_uses_the_topic_prefix(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("YIBAO_TOPIC_PREFIX", "hospital1.")
    assert main(["topics", "list"]) == 0
    assert f"hospital1.{CATALOG[0].name}" in capsys.readouterr().out
