"""``yibao settings`` (yibao.cli.settings_ref): the settings reference, and the README that pastes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import EnvSettingsSource

from yibao.cli.main import main
from yibao.cli.settings_ref import env_names, env_prefixes, settings_classes
from yibao.core.settings import CommonSettings
from yibao.envelope.settings import PlatformSettings
from yibao.ingest.settings import IngestSettings
from yibao.simulator.settings import SimulatorSettings

README = Path(__file__).resolve().parents[3] / "README.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
REQUIRED_NAMES = ("KAFKA_BOOTSTRAP", "DATABASE_URL", "YIBAO_INGEST_MAPPING", "YIBAO_PLATFORM_BASE_URL")


def _output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["settings", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("args", [(), ("--markdown",)], ids=["text", "markdown"])
def test_the_command_lists_the_shared_service_and_platform_settings(capsys: pytest.CaptureFixture[str],
                                                                    args: tuple[str, ...]) -> None:
    text = _output(capsys, *args)
    for name in REQUIRED_NAMES:
        assert re.search(rf"\b{name}\b", text), name


def test_the_library_and_service_classes_are_all_documented() -> None:
    classes = settings_classes()
    for cls in (CommonSettings, IngestSettings, PlatformSettings, SimulatorSettings):
        assert cls in classes
    assert classes[0] is CommonSettings and len(classes) == len(set(classes))


def test_markdown_has_one_table_per_settings_class(capsys: pytest.CaptureFixture[str]) -> None:
    text = _output(capsys, "--markdown")
    assert text.count("| variable | type | default | description |") == len(settings_classes())
    for cls in settings_classes():
        assert f"### {cls.__name__}\n" in text


def test_every_table_row_has_four_cells(capsys: pytest.CaptureFixture[str]) -> None:
    for line in _output(capsys, "--markdown").splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) == 4, line


def test_every_field_of_every_class_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    text = _output(capsys)
    for cls in settings_classes():
        for name, field in cls.model_fields.items():
            assert env_names(cls, name, field)[0] in text, (cls.__name__, name)


def test_the_env_names_are_those_pydantic_settings_reads() -> None:
    for cls in settings_classes():
        for prefix in env_prefixes(cls):
            source = EnvSettingsSource(cls, env_prefix=prefix)
            for name, field in cls.model_fields.items():
                read = {env.upper() for _, env, _ in source._extract_field_info(field, name)}
                assert set(env_names(cls, name, field, prefix)) == read, (cls.__name__, name)


def test_a_services_inherited_settings_are_named_under_its_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    text = _output(capsys)
    assert "YIBAO_INGEST_LOG_LEVEL" in text and "YIBAO_INGEST_KAFKA_BOOTSTRAP" not in text


def test_secret_defaults_are_shown_as_secret(capsys: pytest.CaptureFixture[str]) -> None:
    secret_fields = [n for n, f in PlatformSettings.model_fields.items() if f.annotation is SecretStr]
    assert secret_fields
    rows = {line.split("|")[1].strip(" `"): line for line in _output(capsys, "--markdown").splitlines()
            if line.startswith("| `YIBAO_PLATFORM_")}
    for name in secret_fields:
        assert "`(secret)`" in rows[f"YIBAO_PLATFORM_{name.upper()}"]


def test_the_reference_never_shows_the_environment(capsys: pytest.CaptureFixture[str], clean_env: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = _output(capsys, "--markdown")
    (clean_env / "YIBAO_PLATFORM_API_SECRET").write_text("file-secret-Zq9", encoding="utf-8")
    monkeypatch.setenv("YIBAO_PLATFORM_TIF_TOKEN", "env-secret-Wk3")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:db-pass-Rt5@h/d")
    after = _output(capsys, "--markdown")
    assert after == before
    assert "secret-Zq9" not in after and "secret-Wk3" not in after and "db-pass" not in after


def test_the_readme_settings_section_is_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    readme = README.read_text(encoding="utf-8") if README.exists() else ""
    if BEGIN not in readme or END not in readme:
        pytest.skip("README.md has no settings section between the markers yet")
    section = readme.split(BEGIN, 1)[1].split(END, 1)[0]
    assert section.strip() == _output(capsys, "--markdown").strip(), (
        "README.md's settings section is stale: paste the output of `yibao settings --markdown` between "
        f"{BEGIN} and {END}"
    )
