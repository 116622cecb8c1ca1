"""Work the bridge cannot finish is parked, never dropped, and a command brings it back once the cause is fixed:
a platform refusing every 2207 (503 at the gateway) exhausts the settlement chain's attempts; the visit is parked,
HIS is told so with the reason, and the platform settled nothing. The gateway fixed, `yibao replay chains
--service settlement` makes the visit ready again and it settles — once, the platform's ledger agreeing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from yibao.core.db.schema import chain_visits
from yibao.stack import Stack
from yibao.stack.audit import audit

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    # few attempts and no retries inside the platform client: the chain gives up within seconds
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("parked"), extra_env={
        "YIBAO_SETTLEMENT_CHAIN_MAX_ATTEMPTS": "3", "YIBAO_PLATFORM_RETRY_ATTEMPTS": "1"})


def _parked(rig: ChainRig) -> set[str]:
    with rig.db.connect() as conn:
        return set(conn.execute(select(chain_visits.c.visit_key).where(
            chain_visits.c.service == rig.bridge.prefix + "settlement", chain_visits.c.status == "parked")).scalars())


def _replay(rig: ChainRig, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **rig.bridge.base_env()}
    return subprocess.run([sys.executable, "-m", "yibao.cli.main", "replay", "chains", "--service", "settlement",
                           *args], env=env, capture_output=True, text=True, timeout=120)


async def test_a_visit_parked_after_its_attempts_settles_once_when_replayed(rig: ChainRig) -> None:
    day = rig.day(outpatients=2, inpatients=0)
    settlements = day.requests["settlement"]
    assert settlements
    rig.bridge.set_faults(["2207:http_5xx:1:503"])
    answers = await rig.run(day)
    parked = {key: answers.answer("settlement", key) for key in settlements}
    assert all(a is not None and a.kind == "parked" for a in parked.values()), parked
    assert all(a.reason for a in parked.values() if a is not None), "HIS is told why"
    assert {visit for visit, _ in settlements} <= _parked(rig)
    assert rig.bridge.admin("settlements") == [], "the platform settled nothing"

    listed = _replay(rig, "--dry-run")
    assert listed.returncode == 0 and f"{len(_parked(rig))} parked visit(s)" in listed.stdout, listed.stdout

    rig.bridge.set_faults([])  # the gateway is fixed
    replayed = _replay(rig)
    assert replayed.returncode == 0, replayed.stderr
    results = await rig.results_until(lambda rs: all(
        any(r.kind == "settled" and (r.his_visit_id, r.his_request_id) == key for r in rs) for key in settlements))
    settled = [r for r in results if r.kind == "settled"]
    assert len(settled) == len({r.setl_id for r in settled}) == len(settlements), "each settled once"
    assert not _parked(rig)
    report = audit(results, rig.bridge.admin("settlements"))
    assert report.ok, report.problems
