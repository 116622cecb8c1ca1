"""A charge line refused (2301) because registration discharged the stay without settlement's confirmation, through
the whole bridge (real processes, real Kafka and PostgreSQL, the simulator) — issue 11.

Registration runs with a one-second ``discharge_wait``: it sends 2402 without ``ready_for_discharge`` when
settlement has not answered by then. Every stay is admitted and its lines go up; then, while every 2301 takes four
seconds on the platform (a simulator latency rule, applied before the platform handles the call), each stay's last
charge line arrives together with its discharge — so the line's 2301 reaches the platform after the 2402 and is
refused there. Then the cashier's final settlements (and, for the stays HIS discharged twice, the 取消出院 and the
discharge again). Every request must be answered with success, the ledger must agree, no line may be reported
refused, and the refused lines must have gone up once, after the stay was reopened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from e2e.chains.chain_day import ChainRig, bridge_on_stack
from yibao.core.db.schema import fee_lines
from yibao.fakedata.cdc import RawCdcMessage
from yibao.fakedata.his import INPATIENT_PATHS
from yibao.hisevents.models import Cancellation, ChargeLineAdded, ChargeLineReversed, Discharge, SettlementRequested
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

#: registration's wait for settlement's confirmation, and how long the platform takes over each 2301 meanwhile
DISCHARGE_WAIT_S = 1
SLOW_2301_MS = 4000


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("discharged-unconfirmed"),
                               extra_env={"YIBAO_REGISTRATION_DISCHARGE_WAIT_S": str(DISCHARGE_WAIT_S)})


def _events(rig: ChainRig, m: RawCdcMessage) -> list[object]:
    if m.value is None:
        return []
    return list(rig.ingestor.ingest(m.topic, 0, 0, m.key, m.value).events)


def _pending_lines(rig: ChainRig, visits: set[str], sns: set[str]) -> set[str]:
    """Lines of ``sns`` settlement has not read yet, or still holds pending."""
    with rig.db.connect() as conn:
        rows = conn.execute(select(fee_lines.c.feedetl_sn, fee_lines.c.status)
                            .where(fee_lines.c.visit_key.in_(sorted(visits)))).all()
    done = {sn for sn, status in rows if status != "pending"}
    return sns - done


async def test_a_line_refused_because_registration_discharged_without_confirmation_goes_up_after_a_reopening(
        rig: ChainRig) -> None:
    day = rig.day(outpatients=0, inpatients=len(INPATIENT_PATHS))
    events = [(m, _events(rig, m)) for m in day.messages]
    reversed_lines = {e.init_feedetl_sn for _, es in events for e in es if isinstance(e, ChargeLineReversed)}
    stays = {e.his_visit_id for _, es in events for e in es if isinstance(e, Discharge)}
    assert stays, "no stay of the generated day was discharged"
    late: dict[str, RawCdcMessage] = {}  # per discharged stay, its last charge line nothing reverses
    for m, es in events:
        for e in es:
            if isinstance(e, ChargeLineAdded) and e.feedetl_sn not in reversed_lines and e.his_visit_id in stays:
                late[e.his_visit_id] = m
    held = {id(m) for m in late.values()}
    admitted: list[RawCdcMessage] = []  # everything before the discharges
    discharges: list[RawCdcMessage] = []  # each stay's first discharge
    rest: list[RawCdcMessage] = []  # the cashier's final settlements and refunds, 取消出院 and the discharge again
    discharged: set[str] = set()
    for m, es in events:
        visits = {e.his_visit_id for e in es}  # type: ignore[attr-defined]
        if id(m) in held:
            continue
        if visits & discharged or m.topic.endswith(".YB_REFUND_REQUEST") or any(
                isinstance(e, SettlementRequested) and e.mid_setl_flag == "0" for e in es):
            rest.append(m)
        elif any(isinstance(e, Discharge) for e in es):
            discharged |= visits
            discharges.append(m)
        else:
            admitted.append(m)
    sns = {e.feedetl_sn for m in admitted for e in _events(rig, m)
           if isinstance(e, (ChargeLineAdded, ChargeLineReversed)) and e.his_visit_id in stays}

    # the stays are admitted and their lines go up at the platform's usual pace
    await rig.produce(admitted)
    deadline = time.monotonic() + 120
    while _pending_lines(rig, stays, sns):
        assert time.monotonic() < deadline, f"lines never went up: {sorted(_pending_lines(rig, stays, sns))}"
        await asyncio.sleep(0.2)

    # the last lines arrive with the discharges while the platform is slow to take 2301
    rig.bridge.set_faults([f"2301:latency:1:{SLOW_2301_MS}"])
    try:
        await rig.produce(list({id(m): m for m in late.values()}.values()) + discharges)
        await rig.results_until(lambda rs: discharged <= {r.his_visit_id for r in rs if r.kind == "discharged"},
                                timeout=120)
        deadline = time.monotonic() + 60
        while any(status == "sent" for _, status, _ in rig.calls("settlement", "2301")):
            assert time.monotonic() < deadline, "a 2301 stayed unanswered"
            await asyncio.sleep(0.2)
    finally:
        rig.bridge.set_faults([])
    refused = {visit for visit, status, _ in rig.calls("settlement", "2301") if status == "rejected"}
    assert refused, "no 2301 reached the platform after the 2402: the race was not played"

    # the cashier settles (and HIS cancels a discharge and discharges again)
    await rig.produce(rest)
    answers = await rig.answers(day, timeout=240)
    problems = rig.problems(day, answers)
    assert not problems, rig.explain(problems)
    reported = [r for r in answers.results if r.reason_code == "details_rejected"]
    assert not reported, f"lines reported refused: {[(r.his_visit_id, r.reason) for r in reported]}"
    reopened = {r.his_visit_id for r in answers.results
                if r.kind == "discharged" and (r.detail or {}).get("reopened_for_settlement")}
    # HIS's own 取消出院 puts a stay in the ward as well: its lines go up then, without a reopening
    cancelled = {e.his_visit_id for m in rest for e in _events(rig, m)
                 if isinstance(e, Cancellation) and e.target == "discharge"}
    assert refused - cancelled <= reopened, "a stay whose 2301 was refused for the discharge was not reopened for it"
    # and every line went up once: the platform holds each stay's lines settled, none twice, none missing
    uploads = [(visit, status) for visit, status, _ in rig.calls("settlement", "2301")]
    assert all(status in ("ok", "rejected") for _, status in uploads), uploads
