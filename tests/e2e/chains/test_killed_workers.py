"""A worker killed mid-chain (a real process, SIGKILL: no shutdown, no last commit) while its platform call is in
flight resumes, once started again, exactly where the chain stood: the call journalled before it was sent is
resolved by the step's policy — the platform finished it → adopted; the platform never did it → confirmed not done
(2601 冲正 finds nothing, or the query finds nothing) and sent again — nothing is lost, nothing done twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

#: the call is held 8 s by the platform (latency; with commit-then-timeout its answer is then held and dropped):
#: long enough for both steps of a test to be in flight at once when the worker is killed
HELD = "latency:1:8000"


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("killed"))


async def _killed_while_in_flight(rig: ChainRig, service: str, faults: list[str], steps: tuple[str, ...],
                                  *, outpatients: int, inpatients: int, platform_did_it: bool = True) -> None:
    day = rig.day(outpatients=outpatients, inpatients=inpatients)
    rig.bridge.set_faults(faults)
    await rig.produce(day.messages)
    held = await rig.wait_for_calls_in_flight(service, steps)
    rig.bridge.kill_worker(service)
    rig.bridge.set_faults([])
    rig.bridge.start_worker(service)
    answers = await rig.answers(day, timeout=120)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    for infno, visit in held.items():
        journal = [(status, resolution) for v, status, resolution in rig.calls(service, infno) if v == visit]
        if platform_did_it:
            assert journal[0] == ("resolved", "adopted"), f"{infno} of the killed worker: {journal}"
            assert ("ok", None) not in journal, f"{infno} sent again although the platform had done it: {journal}"
        else:
            assert journal[0][0] == "resolved" and journal[0][1] in ("absent", "nothing_done"), (
                f"{infno} of the killed worker was not confirmed as not done: {journal}")
            assert journal.count(("ok", None)) == 1, f"{infno} not sent again exactly once: {journal}"


async def test_settlement_killed_during_2207_and_2304_resumes_without_loss_or_duplication(rig: ChainRig) -> None:
    await _killed_while_in_flight(rig, "settlement", [f"2207:{HELD}", f"2304:{HELD}", "2304:commit_then_timeout:1"],
                                  ("2207", "2304"), outpatients=3, inpatients=1)


async def test_registration_killed_during_2201_and_2401_resumes_without_loss_or_duplication(rig: ChainRig) -> None:
    await _killed_while_in_flight(rig, "registration", [f"2201:{HELD}", f"2401:{HELD}", "2401:commit_then_timeout:1"],
                                  ("2201", "2401"), outpatients=3, inpatients=1)


async def test_settlement_killed_during_a_2207_the_platform_never_did_sends_it_again_once(rig: ChainRig) -> None:
    # held 8 s, then the connection is reset: the platform settles nothing
    await _killed_while_in_flight(rig, "settlement", [f"2207:{HELD}", "2207:reset:1"], ("2207",),
                                  outpatients=2, inpatients=0, platform_did_it=False)


async def test_registration_killed_during_a_2201_the_platform_never_did_sends_it_again_once(rig: ChainRig) -> None:
    await _killed_while_in_flight(rig, "registration", [f"2201:{HELD}", "2201:reset:1"], ("2201",),
                                  outpatients=2, inpatients=0, platform_did_it=False)
