"""``yibao_worker_ready`` shows the worker's readiness as of its newest check, whoever asked: the worker's own timer
checks it as well as each /readyz, so the gauge recovers from a transient "not ready" where no probe calls, and a
slow check that finishes after a newer one does not put back its older verdict."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from yibao.core import metrics
from yibao.registration.settings import RegistrationSettings


@pytest.fixture
def runtime(tmp_path: Path):
    from yibao.registration.app import build

    return build(RegistrationSettings(database_url=f"sqlite:///{tmp_path / 'r.sqlite'}"))


def shown(name: str) -> float:
    return metrics.WORKER_READY.labels(name)._value.get()


def test_the_ready_gauge_recovers_from_a_transient_problem_without_a_probe(runtime, monkeypatch) -> None:
    verdicts = iter([["database unreachable: timeout"], []])

    async def problems() -> list[str]:
        return next(verdicts)

    monkeypatch.setattr(runtime, "readiness_problems", problems)
    assert asyncio.run(runtime.check_readiness()) == ["database unreachable: timeout"]
    assert shown(runtime.name) == 0
    assert asyncio.run(runtime.check_readiness()) == []
    assert shown(runtime.name) == 1


def test_a_slow_check_finishing_after_a_newer_one_leaves_the_newer_verdict(runtime, monkeypatch) -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        calls = 0

        async def problems() -> list[str]:
            nonlocal calls
            calls += 1
            if calls == 1:  # the first probe saw the worker before it started, and its database ping hangs
                await release.wait()
                return ["not started"]
            return []

        monkeypatch.setattr(runtime, "readiness_problems", problems)
        slow = asyncio.create_task(runtime.check_readiness())
        await asyncio.sleep(0)
        assert await runtime.check_readiness() == []
        release.set()
        assert await slow == ["not started"]

    asyncio.run(scenario())
    assert shown(runtime.name) == 1

