"""Adding workers scales out: a second replica of registration and settlement joins the consumer groups, the visits'
partitions are shared between the replicas, and the day ends as with one worker each — every request answered
once, with success, the platform's ledger agreeing — because a visit's events stay in one partition (key = visit)
and its chain state is in the database, not in the worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from yibao.fakedata.his import INPATIENT_PATHS, OUTPATIENT_PATHS
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

#: the chain services; ingest scales with the CDC topics' partitions (faust gives partition N of every topic to
#: one replica), and the test's CDC topics have one partition each, as small HIS tables often do
SERVICES = ("registration", "settlement")


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("scaling"))


def _handled(rig: ChainRig, worker: str) -> float:
    return sum(v for k, v in rig.bridge.workers[worker].metrics().items()
               if k.startswith("yibao_events_handled_total{") and 'outcome="processed"' in k)


async def test_two_replicas_of_each_service_share_the_visits_and_answer_every_request_once(rig: ChainRig) -> None:
    for service in SERVICES:
        rig.bridge.start_worker(f"{service}#2")
    day = rig.day(outpatients=2 * len(OUTPATIENT_PATHS), inpatients=2 * len(INPATIENT_PATHS), duplicates=10)
    answers = await rig.run(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    for service in SERVICES:
        shares = (_handled(rig, service), _handled(rig, f"{service}#2"))
        assert all(shares), f"{service}: one replica did all the work {shares}"
