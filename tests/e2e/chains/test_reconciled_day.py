"""A day of both chains under platform faults, then the day's reconciliation: the reconciliation worker books
what HIS was told (from the HIS results topic), 3201 compares it with the platform's ledger for every insurance
type, clearing type and clearing institution — and it balances. Every lost answer was resolved by the chains
(adopted, reversed by 2601, or sent again), so the day leaves no single-sided ledger (单边账) behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from support.finance_auth import bearer, write_static_tokens
from yibao.core import clock
from yibao.core.db.schema import recon_ledger
from yibao.fakedata.his import INPATIENT_PATHS, OUTPATIENT_PATHS
from yibao.stack import Stack
from yibao.stack.bridge import CHAIN_SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

FAULTS = ["2207:commit_then_timeout:0.3", "2304:commit_then_timeout:0.5", "2208:reset:0.3", "2305:http_5xx:0.5:500"]
FINAL = {"balanced", "differences_found", "repaired_and_balanced", "failed", "refused"}


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    tmp = tmp_path_factory.mktemp("reconciled")
    yield from bridge_on_stack(stack, tmp, services=(*CHAIN_SERVICES, "reconciliation"), extra_env={
        "YIBAO_RECONCILIATION_REPORTS_DIR": str(tmp / "reports"),
        "YIBAO_RECONCILIATION_SCHEDULE_ENABLED": "false",
        "YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE": str(write_static_tokens(tmp))})


def _booked(rig: ChainRig) -> set[str]:
    with rig.db.connect() as conn:
        return set(conn.execute(select(recon_ledger.c.setl_id)).scalars())


async def test_a_day_with_lost_answers_reconciles_without_a_single_sided_ledger(rig: ChainRig) -> None:
    day = rig.day(outpatients=2 * len(OUTPATIENT_PATHS), inpatients=2 * len(INPATIENT_PATHS))
    rig.bridge.set_faults(FAULTS)
    try:
        answers = await rig.run(day, timeout=180)
    finally:
        rig.bridge.set_faults([])
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    assert any(n for key, n in rig.fired().items() if key.endswith(":commit_then_timeout")), "no answer was lost"

    told = {r.setl_id for r in answers.results if r.setl_id and r.kind in ("settled", "refunded")}
    deadline = time.monotonic() + 60
    while not told <= _booked(rig):
        assert time.monotonic() < deadline, f"not booked by reconciliation: {sorted(told - _booked(rig))[:5]}"
        await asyncio.sleep(0.5)

    recon = rig.bridge.workers["reconciliation"].url
    async with httpx.AsyncClient(timeout=30, headers=bearer("li.clerk")) as client:
        reply = await client.post(f"{recon}/recon/runs", json={"date": clock.now().date().isoformat()})
        assert reply.status_code == 202, reply.text
        run_id = reply.json()["run_id"]
        deadline = time.monotonic() + 120
        while True:
            run = (await client.get(f"{recon}/recon/runs/{run_id}")).json()
            if run.get("state") in FINAL:
                break
            assert time.monotonic() < deadline, f"the run did not end: {run}"
            await asyncio.sleep(0.5)
    assert run["state"] == "balanced", run
    assert run["progress"]["total"] > 0 and run["summary"]["differences"] == 0, run
