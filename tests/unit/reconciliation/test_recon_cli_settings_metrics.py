"""``yibao recon`` (the CLI module), the settings and the metrics the dashboards expect."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from support.finance_auth import cli_env as finance_cli_env
from support.finance_auth import write_command_keys
from unit.reconciliation.recon_fakes import TODAY, FakePlatform, PEntry, entry
from yibao.reconciliation import cli, metrics
from yibao.reconciliation.audit import recent
from yibao.reconciliation.settings import DEFAULT_ROW_CODES, ReconciliationSettings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="yibao recon")
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path, platform: FakePlatform,
            engine) -> FakePlatform:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("YIBAO_RECONCILIATION_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("YIBAO_RECONCILIATION_INSUTYPES", '["310"]')
    monkeypatch.setenv("YIBAO_RECONCILIATION_CLR_TYPES", '["11"]')
    monkeypatch.setenv("YIBAO_RECONCILIATION_OPTINS_LOOKBACK_DAYS", "0")
    monkeypatch.setattr("yibao.reconciliation.app.make_client", lambda engine, settings=None: platform)
    monkeypatch.setenv("YIBAO_RECONCILIATION_COMMAND_KEYS_FILE", str(write_command_keys(tmp_path)))
    monkeypatch.setenv("YIBAO_TEST_SECRETS", str(tmp_path))
    act_as(monkeypatch, "zhao.both")
    return platform


def act_as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    import os

    for name, value in finance_cli_env(user, Path(os.environ["YIBAO_TEST_SECRETS"])).items():
        monkeypatch.setenv(name, value)


def test_recon_run_reconciles_as_the_configured_identity(cli_env, capsys, engine) -> None:
    assert cli.run(parse("run", "--date", TODAY.isoformat())) == 0
    out = capsys.readouterr().out
    assert "state: balanced" in out
    with engine.connect() as conn:
        [row] = recent(conn)
    assert (row.actor, row.role, row.method, row.action) == ("zhao.both", "clerk", "cli", "trigger")


def test_recon_without_an_identity_refuses_to_act(cli_env, monkeypatch, capsys) -> None:
    monkeypatch.delenv("YIBAO_RECONCILIATION_CLI_USER")
    assert cli.run(parse("run", "--date", TODAY.isoformat())) == 4
    assert "YIBAO_RECONCILIATION_CLI_USER" in capsys.readouterr().err


def test_recon_has_no_by_option() -> None:
    with pytest.raises(SystemExit):
        parse("approve", "R1", "--by", "someone", "--reason", "x")


def test_recon_approve_of_ones_own_run_is_refused_four_eyes(cli_env, book, capsys) -> None:
    book(entry("HO", "40.00"))
    cli.run(parse("run", "--date", TODAY.isoformat(), "--json"))
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert cli.run(parse("approve", run_id, "--reason", "mine")) == 4
    assert "four eyes" in capsys.readouterr().err


def test_recon_approve_by_a_clerk_is_refused(cli_env, book, capsys, monkeypatch) -> None:
    book(entry("HO", "40.00"))
    cli.run(parse("run", "--date", TODAY.isoformat(), "--json"))
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    act_as(monkeypatch, "li.clerk")
    assert cli.run(parse("approve", run_id, "--reason", "x")) == 4
    assert "approver" in capsys.readouterr().err


def test_recon_run_exits_1_when_differences_remain(cli_env, book, capsys) -> None:
    book(entry("HO", "40.00"))
    assert cli.run(parse("run", "--date", TODAY.isoformat(), "--json")) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "differences_found" and data["differences"][0]["setl_id"] == "HO"


def test_recon_approve_then_status_and_report(cli_env, book, capsys, tmp_path, monkeypatch) -> None:
    book(entry("HO", "40.00"))
    cli.run(parse("run", "--date", TODAY.isoformat(), "--json"))
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    act_as(monkeypatch, "wang.approver")
    assert cli.run(parse("approve", run_id, "--reason", "checked")) == 0
    capsys.readouterr()
    assert cli.run(parse("status", run_id)) == 0
    assert "repaired_and_balanced" in capsys.readouterr().out
    target = tmp_path / "copy.xlsx"
    assert cli.run(parse("report", run_id, "--format", "xlsx", "--out", str(target))) == 0
    assert target.read_bytes()[:2] == b"PK"
    assert cli.run(parse("list")) == 0 and run_id in capsys.readouterr().out


def test_recon_status_of_an_unknown_run_exits_3(cli_env) -> None:
    assert cli.run(parse("status", "R-none")) == 3


def test_recon_status_on_an_unmigrated_database_says_so(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert cli.run(parse("status", "R-1")) == 2
    assert "yibao db upgrade" in capsys.readouterr().err


def test_recon_run_refuses_a_bad_period(cli_env) -> None:
    assert cli.run(parse("run", "--date", "2026-02-02", "--to", "2026-02-01")) == 2
    with pytest.raises(SystemExit):
        parse("run", "--date", "yesterday")


def test_recon_without_a_subcommand_prints_help(capsys) -> None:
    assert cli.run(parse()) == 2


# --- settings ----------------------------------------------------------------------------------------------


def test_the_worker_port_and_prefix_are_the_designs() -> None:
    assert ReconciliationSettings.default_web_port == 6066
    assert ReconciliationSettings.model_config["env_prefix"] == "YIBAO_RECONCILIATION_"
    assert ReconciliationSettings.service_name == "reconciliation"


def test_the_row_code_table_is_the_national_one_by_default_and_checked() -> None:
    assert ReconciliationSettings().row_codes == DEFAULT_ROW_CODES
    with pytest.raises(ValidationError):
        ReconciliationSettings(row_codes={"1": "lost"})


def test_an_approval_threshold_is_never_a_float() -> None:
    assert ReconciliationSettings(auto_approve_max_amount="12.50").auto_approve_max_amount == Decimal("12.50")
    with pytest.raises(ValidationError):
        ReconciliationSettings(auto_approve_max_amount=12.5)


def test_a_bad_schedule_time_or_class_is_refused() -> None:
    with pytest.raises(ValidationError):
        ReconciliationSettings(schedule_at="25:99")
    with pytest.raises(ValidationError):
        ReconciliationSettings(auto_approve_classes=["everything"])


# --- metrics -----------------------------------------------------------------------------------------------


def test_the_metrics_are_the_ones_dashboards_and_alerts_query() -> None:
    assert metrics.RUNS._name == "yibao_recon_runs" and metrics.RUNS._labelnames == ("result",)
    assert metrics.DIFFERENCES._labelnames == ("class",)
    assert metrics.SINGLE_SIDED_OPEN._name == "yibao_single_sided_open" and metrics.SINGLE_SIDED_OPEN._labelnames == ()
    assert metrics.SINGLE_SIDED_OLDEST_AGE._name == "yibao_single_sided_oldest_age_seconds"


def test_the_oldest_age_is_zero_when_nothing_is_open() -> None:
    import datetime as dt

    from yibao.core import clock

    now = clock.now()
    metrics.set_single_sided(2, now - dt.timedelta(hours=1), now)
    assert metrics.SINGLE_SIDED_OLDEST_AGE._value.get() == 3600
    metrics.set_single_sided(0, None)
    assert metrics.SINGLE_SIDED_OLDEST_AGE._value.get() == 0


async def test_runs_are_counted_by_result(reconciler) -> None:
    from yibao.reconciliation.models import RunRequest

    before = metrics.RUNS.labels("balanced")._value.get()
    await reconciler.run(RunRequest.for_day(TODAY))
    assert metrics.RUNS.labels("balanced")._value.get() == before + 1


def test_platform_entry_helper_keeps_amounts() -> None:
    assert PEntry.of(entry("S", "1.00")).medfee == Decimal("1.00")
