"""The final inpatient settlement and the discharge in force, through the whole bridge (real processes, real Kafka
and PostgreSQL, the simulator) — issue 11: the short chaos run saw a 2304 refused with "order: discharge (2402)
before the final settlement" while registration was between a 2405 and the 2402 after it.

Here the HIS tables are held back so that the races happen on purpose: every stay is discharged first with one
charge line still on its way; then the late lines, the cashier's final settlements and — for the stays HIS
discharged twice (取消出院, then 出院 again) — the cancellation and the second discharge all arrive together.
Settlement asks registration to reopen the stays for their late lines while registration is serving HIS's own
cancellation and discharge: whatever the interleaving, every request must be answered with success, the
platform's ledger must agree, and no 2303/2304 may be refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from e2e.chains.chain_day import ChainRig, Day, bridge_on_stack
from support.kafka import consume
from yibao.core.results import SettlementFact
from yibao.core.topics import topic
from yibao.fakedata.cdc import RawCdcMessage
from yibao.fakedata.his import INPATIENT_PATHS
from yibao.hisevents.models import Cancellation, ChargeLineAdded, ChargeLineReversed, Discharge, SettlementRequested
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("discharge-races"))


def _events(rig: ChainRig, m: RawCdcMessage) -> list[object]:
    if m.value is None:
        return []
    return list(rig.ingestor.ingest(m.topic, 0, 0, m.key, m.value).events)


@dataclass
class _Split:
    """A day's CDC messages, held back so that the races happen on purpose."""

    day: Day
    first: list[RawCdcMessage]  #: everything up to each stay's first discharge, but the late lines and the cashier
    late: list[RawCdcMessage]  #: per stay, the last charge line nothing reverses: it arrives after the discharge
    finals: list[RawCdcMessage]  #: the cashier's final settlements and refunds
    after_discharge: list[RawCdcMessage]  #: 取消出院 and the discharge again, for the stays HIS discharged twice
    discharged: set[str]  #: stays discharged by ``first``
    cancelled: set[str]  #: stays whose discharge HIS cancelled (then discharged again)


def _split(rig: ChainRig) -> _Split:
    day = rig.day(outpatients=0, inpatients=2 * len(INPATIENT_PATHS))
    events = [(m, _events(rig, m)) for m in day.messages]
    reversed_lines = {e.init_feedetl_sn for _, es in events for e in es if isinstance(e, ChargeLineReversed)}
    late: dict[str, RawCdcMessage] = {}
    for m, es in events:
        for e in es:
            if isinstance(e, ChargeLineAdded) and e.feedetl_sn not in reversed_lines:
                late[e.his_visit_id] = m
    held = {id(m) for m in late.values()}
    discharged: set[str] = set()
    first: list[RawCdcMessage] = []
    finals: list[RawCdcMessage] = []
    after_discharge: list[RawCdcMessage] = []
    for m, es in events:
        visits = {e.his_visit_id for e in es}
        if id(m) in held:
            continue
        if m.topic.endswith(".YB_REFUND_REQUEST") or any(
                isinstance(e, SettlementRequested) and e.mid_setl_flag == "0" for e in es):
            finals.append(m)
        elif m.topic.endswith(".INP_DISCHARGE") and visits & discharged:
            after_discharge.append(m)
        else:
            if any(isinstance(e, Discharge) for e in es):
                discharged |= visits
            first.append(m)
    cancelled = {e.his_visit_id for m in after_discharge for e in _events(rig, m)
                 if isinstance(e, Cancellation) and e.target == "discharge"}
    assert cancelled, "no stay of the generated day was discharged twice"
    return _Split(day, first, list(late.values()), finals, after_discharge, discharged, cancelled)


def _check(rig: ChainRig, split: _Split, answers: object) -> None:
    problems = rig.problems(split.day, answers)  # type: ignore[arg-type]
    assert not problems, rig.explain(problems)
    refused = [(infno, visit) for infno in ("2303", "2304")
               for visit, status, _ in rig.calls("settlement", infno) if status == "rejected"]
    assert not refused, f"a final settlement went to a stay the platform did not hold discharged: {refused}"
    refused = [visit for visit, status, _ in rig.calls("registration", "2405") if status == "rejected"]
    assert not refused, f"a reopening's 2405 came after the final settlement it was asked for: {refused}"


async def test_late_lines_and_a_cancelled_discharge_arriving_together_end_with_every_final_settlement_settled(
        rig: ChainRig) -> None:
    split = _split(rig)
    await rig.produce(split.first)
    await rig.results_until(lambda rs: split.discharged <= {r.his_visit_id for r in rs if r.kind == "discharged"})
    # everything else at once: the late lines, the cashier, HIS's cancellation and second discharge
    await rig.produce(split.late + split.finals + split.after_discharge)
    answers = await rig.answers(split.day, timeout=240)
    _check(rig, split, answers)
    reopened = [r for r in answers.results if r.kind == "discharged" and (r.detail or {}).get("reopened_for_settlement")]
    assert reopened, "no stay was reopened for its late lines: the race was not played"


async def test_a_reopening_asked_before_hiss_own_cancellation_and_discharge_is_never_overtaken_by_the_final_settlement(
        rig: ChainRig) -> None:
    split = _split(rig)
    await rig.produce(split.first)
    await rig.results_until(lambda rs: split.discharged <= {r.his_visit_id for r in rs if r.kind == "discharged"})
    # registration is away while settlement asks to reopen the stays for their late lines; HIS cancels the
    # discharge and discharges again meanwhile: when registration is back, HIS's cancellation and discharge are
    # ahead of the reopening in its queue (HIS order), and the stay is discharged again before it is reopened
    rig.bridge.kill_worker("registration")  # SIGKILL: a stopped worker would sign the institution out (9002)
    try:
        await rig.produce(split.late + split.finals)
        facts = topic("settlement_facts", rig.bridge.prefix)

        def asked(records: list) -> bool:  # type: ignore[type-arg]
            kinds = [SettlementFact.model_validate_json(r.value) for r in records]
            return split.cancelled <= {f.his_visit_id for f in kinds if f.kind == "reopen_requested"}

        records = await consume(rig.bridge.info.kafka_bootstrap, [facts], until=asked, timeout=120)
        assert asked(records), "settlement did not ask to reopen the stays discharged twice"
        await rig.produce(split.after_discharge)
    finally:
        rig.bridge.start_worker("registration")
    answers = await rig.answers(split.day, timeout=240)
    _check(rig, split, answers)
    again = {r.his_visit_id for r in answers.results
             if r.kind == "discharged" and (r.detail or {}).get("reopened_for_settlement")}
    assert split.cancelled <= again, "the stays discharged twice by HIS are discharged once more by the reopening"
