"""The chaos run, short (the long one is ``make chaos``): HIS days through the whole bridge while the database is
stopped for a minute, the broker restarted, workers killed with SIGKILL and the platform loses answers, resets and
answers 5xx — and afterwards every HIS request answered once, the ledgers agree, nothing parked, the day reconciled.

The run has a stack of its own (its broker and database are the ones stopped), never the session's."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.outages import require
from yibao.stack import kafka_kraft, postgres
from yibao.stack.chaos import ChaosPlan, ChaosReport, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.serial]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ChaosReport:
    for what, (ok, why) in (("a private PostgreSQL cluster", postgres.available()),
                            ("a restartable Kafka broker", kafka_kraft.available())):
        require(what, ok, why)
    plan = ChaosPlan(visits=150, scripted=("database:60", "broker", "kill:settlement", "kill:registration"),
                     disruptions=("kill",), every_s=(8.0, 15.0), timeout_s=900)
    report = run_chaos(plan, Path(tmp_path_factory.mktemp("chaos")), say=print)
    print(report.to_json())
    return report


def _explain(report: ChaosReport) -> str:
    return report.to_json()[:4000]


def test_every_disruption_of_the_plan_was_done(report: ChaosReport) -> None:
    done = [d.what for d in report.disruptions]
    assert any("PostgreSQL stopped for 60 s" in d for d in done), done
    assert any("broker restarted" in d for d in done), done
    assert sum(1 for d in done if d.startswith("SIGKILL")) >= 2, done
    assert not any("failed" in d for d in done), done
    assert sum(report.faults_fired.values()) > 0, "no platform fault fired"


def test_every_his_request_is_answered_exactly_once(report: ChaosReport) -> None:
    assert report.requests > 0
    assert not report.unanswered, _explain(report)
    assert not report.unexpected, _explain(report)


def test_the_platform_ledger_agrees_with_what_his_was_told(report: ChaosReport) -> None:
    assert report.settled > 0
    assert not report.ledger_problems, _explain(report)


def test_nothing_is_parked_and_no_dead_letter_is_written(report: ChaosReport) -> None:
    # an outage of the database or the broker is never the message's fault: it spends no attempt
    assert report.parked_visits == 0 and report.dead_letters == 0, _explain(report)


def test_the_day_reconciles_without_a_single_sided_ledger(report: ChaosReport) -> None:
    assert report.reconciliation.get("state") == "balanced", report.reconciliation
    assert report.single_sided == 0


def test_ingest_hands_each_visits_events_on_in_his_commit_order(report: ChaosReport) -> None:
    # the backlog after the database stop and the broker restart is worked through in HIS commit order across the
    # CDC topics, also across a SIGKILL of ingest
    assert not report.ingest_order_violations, report.ingest_order_violations[:20]
