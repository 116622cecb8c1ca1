"""Faults: parsed strictly, reproducible by seed, counted."""

from __future__ import annotations

import pytest

from yibao.simulator.errors import SimulatorConfigError
from yibao.simulator.faults import FaultPlan, FaultRule


def fired(plan: FaultPlan, target: str, n: int) -> list[str]:
    return [",".join(plan.decide(target).fired) for _ in range(n)]


def test_faults_are_reproducible_by_seed() -> None:
    rules = ["2207:commit_then_timeout:0.3", "*:http_5xx:0.2", "*:latency:0.5:10-50"]
    a, b = FaultPlan(7, rules), FaultPlan(7, rules)
    assert fired(a, "2207", 200) == fired(b, "2207", 200)
    assert [a.decide("1101").delay_s for _ in range(50)] == [b.decide("1101").delay_s for _ in range(50)]


def test_another_seed_gives_another_sequence() -> None:
    rules = ["2207:drop_reply:0.5"]
    assert fired(FaultPlan(1, rules), "2207", 100) != fired(FaultPlan(2, rules), "2207", 100)


def test_reset_replays_the_same_sequence() -> None:
    plan = FaultPlan(3, ["*:business_error:0.4"])
    first = fired(plan, "2201", 50)
    plan.reset_counters()
    assert fired(plan, "2201", 50) == first


def test_a_rule_applies_only_to_its_transaction() -> None:
    plan = FaultPlan(1, ["2207:reset:1"])
    assert plan.decide("2207").before == "reset"
    assert plan.decide("2204").before == ""


def test_fired_faults_are_counted() -> None:
    plan = FaultPlan(1, ["2207:commit_then_timeout:1", "callback:duplicate:1"])
    for _ in range(3):
        plan.decide("2207")
    plan.decide("callback")
    assert plan.describe()["counters"] == {"2207:commit_then_timeout": 3, "callback:duplicate": 1}
    assert plan.describe()["calls"] == {"2207": 3, "callback": 1}


def test_probability_is_respected_roughly() -> None:
    plan = FaultPlan(11, ["*:business_error:0.25"])
    hits = sum(1 for _ in range(2000) if plan.decide("1101").before)
    assert 400 < hits < 600


def test_latency_distributions() -> None:
    import random

    rng = random.Random(0)
    assert FaultRule.parse("*:latency:1:200").latency_s(rng) == 0.2
    assert 0.05 <= FaultRule.parse("*:latency:1:50-60").latency_s(rng) <= 0.06
    assert FaultRule.parse("*:latency:1:exp100").latency_s(rng) >= 0


@pytest.mark.parametrize("text", ["2207:explode:0.1", "2207:reset", "2207:reset:1.5", "2207:duplicate:1",
                                  "callback:reset:1", "*:latency:1:abc"])
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(SimulatorConfigError):
        FaultRule.parse(text)


def test_late_callback_fault_delays_the_first_attempt() -> None:
    plan = FaultPlan(1, ["callback:late:1:2.5"])
    decision = plan.decide("callback")
    assert decision.delay_s == 2.5 and decision.fired == ["late"]


def test_wechat_pays_refund_loses_its_answer_only_when_a_rule_names_it() -> None:
    plan = FaultPlan(1, ["wechat_refund:drop_reply:1", "*:reset:1"])
    assert (plan.decide("wechat_refund").after, plan.decide("wechat_refund").before) == ("drop_reply", "")
    assert plan.decide("wechat").fired == []  # `*` is the national platform's, never WeChat Pay's
    with pytest.raises(SimulatorConfigError, match="wechat_refund"):
        FaultRule.parse("wechat_refund:abandon:1")
