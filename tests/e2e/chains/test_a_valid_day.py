"""A valid HIS day through the whole bridge (real processes, real Kafka and PostgreSQL, the simulator): every HIS
request is answered with success and the platform's ledger agrees — whatever order the HIS tables arrive in and
however often the connector delivers a change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.chains.chain_day import ChainRig, bridge_on_stack, shuffled_tables
from yibao.fakedata.his import INPATIENT_PATHS, OUTPATIENT_PATHS
from yibao.hisevents.models import AdmissionChanged, Discharge
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("valid-day"))


async def test_a_valid_day_walking_every_rare_path_ends_with_every_request_answered_with_success(
        rig: ChainRig) -> None:
    # enough visits for the generator to force each rare path once (reversal, refund, cancel_early, self_pay,
    # diag_update; transfer, mid_settle, cancel_discharge, cancel_admission, refund)
    day = rig.day(outpatients=2 * len(OUTPATIENT_PATHS), inpatients=2 * len(INPATIENT_PATHS))
    assert day.requests["refund"] and day.requests["cancellation"]
    answers = await rig.run(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)


async def test_a_day_delivered_twice_with_its_tables_in_a_shuffled_order_gives_the_same_answers_once(
        rig: ChainRig) -> None:
    day = rig.day(outpatients=2 * len(OUTPATIENT_PATHS), inpatients=2 * len(INPATIENT_PATHS), duplicates=15)
    # the connector's tables (topics) interleaved at random, then the whole stream again (a connector restarted
    # from an old offset), in another random interleaving
    await rig.produce(shuffled_tables(day.messages, 1))
    await rig.produce(shuffled_tables(day.messages, 2))
    answers = await rig.answers(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)


async def test_admission_changes_overtaken_by_the_discharge_are_sent_by_cancelling_and_repeating_the_discharge(
        rig: ChainRig) -> None:
    day = rig.day(outpatients=0, inpatients=2 * len(INPATIENT_PATHS))
    changes = {e.event_id: e.his_visit_id for m in day.messages
               if m.topic.endswith(".INP_ADMISSION_LOG") and m.value is not None
               for e in rig.ingestor.ingest(m.topic, 0, 0, m.key, m.value).events
               if isinstance(e, AdmissionChanged)}
    assert changes
    held = (".INP_ADMISSION_LOG", ".YB_SETTLE_REQUEST", ".YB_REFUND_REQUEST")
    first = [m for m in day.messages if not m.topic.endswith(held)]
    discharged_visits = {e.his_visit_id for m in first if m.value is not None and m.topic.endswith(".INP_DISCHARGE")
                         for e in rig.ingestor.ingest(m.topic, 0, 0, m.key, m.value).events
                         if isinstance(e, Discharge)}
    waiting = set(changes.values()) & discharged_visits
    assert waiting, "no stay with a transfer was discharged in the generated day"
    # the discharges (and everything but the transfers and the cashier's requests) first: the stays are discharged
    await rig.produce(first)
    await rig.results_until(lambda rs: waiting <= {r.his_visit_id for r in rs if r.kind == "discharged"})
    # then the transfers, dated before those discharges
    await rig.produce([m for m in day.messages if m.topic.endswith(".INP_ADMISSION_LOG")])
    answered = await rig.results_until(lambda rs: set(changes) <= {r.his_request_id for r in rs})
    kinds = {r.his_request_id: (r.kind, r.reason) for r in answered if r.his_request_id in changes}
    assert all(kind == "admission_changed" for kind, _ in kinds.values()), kinds
    # then the cashier: every settlement as on a day in order
    await rig.produce([m for m in day.messages if m.topic.endswith(held[1:])])
    answers = await rig.answers(day)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
