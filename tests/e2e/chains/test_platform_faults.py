"""Every fault of the simulator on every chain step: the day ends as a fault-free day does (every HIS request
answered with success), the platform's ledger agrees with HIS, and nothing is settled twice.

One day covers all of them. A controller arms, for each step kind (2201 2203 2204 2207 2208, 2401 2301 2402 2304
2305), one fault group at a time with probability 1 — latency with a 503 (refused before reaching the platform),
then a reset (nothing done, answer lost), then a 500 (the gateway may have forwarded it: outcome unknown), then
commit-then-timeout (done, answer lost) — and moves to the next group as soon as the simulator's counters show
the armed one fired. So the first request reaching each step meets every fault in turn, whatever visit it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from yibao.fakedata.his import INPATIENT_PATHS, OUTPATIENT_PATHS
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

STEPS = ("2201", "2203", "2204", "2207", "2208", "2401", "2301", "2402", "2304", "2305")
#: the fault groups each step meets in turn (rules are TARGET:KIND:PROBABILITY[:PARAM])
GROUPS = (("latency:1:300", "http_5xx:1:503"), ("reset:1",), ("http_5xx:1:500",), ("commit_then_timeout:1",))
KINDS = ("latency", "http_5xx", "reset", "commit_then_timeout")
#: how an unknown outcome of the step is resolved, by the step's documented policy: query and adopt what the
#: platform did (or send again if it did nothing), 2601 first for settlements and their cancellations
RESOLUTIONS = {
    "2201": {"adopted", "absent"}, "2401": {"adopted", "absent"}, "2402": {"adopted", "absent"},
    "2204": {"adopted", "absent"}, "2301": {"adopted", "absent"}, "2203": {"retried"},
    "2207": {"adopted", "nothing_done"}, "2304": {"adopted", "nothing_done"},
    "2208": {"adopted", "nothing_done"}, "2305": {"adopted", "nothing_done"},
}


class FaultController:
    """Arms each step's fault groups one after the other, advancing when the armed group has fired."""

    def __init__(self, rig: ChainRig) -> None:
        self.rig = rig
        self.pending = {infno: list(GROUPS) for infno in STEPS}
        self.armed: dict[str, tuple[str, ...]] = {}
        self.baseline: dict[str, int] = {}

    def _arm(self) -> None:
        for infno, queue in self.pending.items():
            if infno not in self.armed and queue:
                self.armed[infno] = queue.pop(0)
        self.baseline = self.rig.fired()
        self.rig.bridge.set_faults([f"{infno}:{rule}" for infno, group in self.armed.items() for rule in group])

    def _fired(self, counters: dict[str, int], infno: str, rule: str) -> bool:
        key = f"{infno}:{rule.split(':')[0]}"
        return counters.get(key, 0) > self.baseline.get(key, 0)

    async def run(self, stop: asyncio.Event) -> None:
        self._arm()
        while not stop.is_set() and self.armed:
            await asyncio.sleep(0.05)
            counters = self.rig.fired()
            done = [infno for infno, group in self.armed.items()
                    if all(self._fired(counters, infno, rule) for rule in group)]
            if done:
                for infno in done:
                    del self.armed[infno]
                self._arm()
        self.rig.bridge.set_faults([])


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("faults"))


async def test_every_fault_on_every_step_ends_as_a_fault_free_day_and_nothing_is_settled_twice(rig: ChainRig) -> None:
    day = rig.day(outpatients=2 * len(OUTPATIENT_PATHS), inpatients=2 * len(INPATIENT_PATHS))
    controller = FaultController(rig)
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    try:
        answers = await rig.run(day, timeout=240)
    finally:
        stop.set()
        await task
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    fired = rig.fired()
    missed = [f"{infno}:{kind}" for infno in STEPS for kind in KINDS if not fired.get(f"{infno}:{kind}")]
    assert not missed, f"faults that never met their step: {missed}"
    for infno, expected in RESOLUTIONS.items():
        service = "registration" if infno in ("2201", "2203", "2401", "2402") else "settlement"
        resolved = {resolution for _, status, resolution in rig.calls(service, infno) if status == "resolved"}
        assert expected <= resolved, f"{infno}: unknown outcomes resolved {sorted(resolved)}, expected {expected}"
        assert not [c for c in rig.calls(service, infno) if c[1] in ("sent", "unknown")], f"{infno} left unresolved"
