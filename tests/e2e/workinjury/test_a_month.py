"""A generated month for a few cross-province patients, through the real broker and database and the simulator's
work-injury platform: it ends with the platform's state equal to the hospital's, every download confirmed, every
upload inside its deadline, nothing twice — also with faults on, and with the worker killed mid-batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.workinjury.month import WiRig, bridge_on_stack
from yibao.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

#: lost answers (the work done, the reply dropped), resets before anything was done, 5xx after it was accepted
FAULTS = ["GYU101:commit_then_timeout:0.3", "GYU102:drop_reply:0.3", "GYU103:reset:0.3", "GYU004:http_5xx:0.5:500",
          "GYD001:commit_then_timeout:0.5", "GYU008:drop_reply:0.3", "GYU001:reset:0.3", "GYR003:drop_reply:0.5",
          "GYU003:commit_then_timeout:0.5", "GYD101:drop_reply:0.3", "GYD102:reset:0.2"]


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WiRig]:
    yield from bridge_on_stack(stack, tmp_path_factory.mktemp("workinjury"))


async def _month_ends_as_the_hospital_sees_it(rig: WiRig, **play: object) -> None:
    month = rig.month(patients=3, lines=(40, 90))
    month.patients[2].lines = month.patients[2].lines + [
        dict(line, fee_sn=f"{line['fee_sn']}X{i}") for i in range(8) for line in month.patients[2].lines][:620]
    ledger = await rig.play(month, **play)  # type: ignore[arg-type]
    platform = await rig.every_download_confirmed()
    results = [r for r in await rig.results() if r.case_key.split(":", 1)[-1].endswith(
        tuple(p.stay_id for p in month.patients)) or r.case_key.startswith(("application:", "month:"))]
    problems = ledger.problems(results, platform)
    assert not problems, "\n".join(problems[:30]) + "\n" + rig.worker.log_tail(20)
    for name, queue in platform["queues"].items():
        assert queue["delivered"] == queue["confirmed"], f"{name}: {queue}"


async def test_a_month_ends_with_the_platform_equal_to_the_hospital_every_download_confirmed(rig: WiRig) -> None:
    await _month_ends_as_the_hospital_sees_it(rig)
    assert rig.calls("GYU102").count((rig.calls("GYU102")[0][0], "step", "ok", None)) >= 1


async def test_a_month_with_faults_on_ends_the_same_nothing_twice(rig: WiRig) -> None:
    rig.bridge.set_faults(FAULTS)
    try:
        await _month_ends_as_the_hospital_sees_it(rig)
    finally:
        rig.bridge.set_faults([])
    fired = rig.admin("counters")["faults"]
    assert sum(fired.values()) > 0, fired
    resolutions = {res for infno in ("GYU101", "GYU102", "GYU103", "GYD001", "GYU008")
                   for _, purpose, _, res in rig.calls(infno) if purpose == "step" and res}
    assert resolutions & {"adopted", "absent"}, resolutions


async def test_a_worker_killed_mid_batch_resumes_without_loss_or_duplication(rig: WiRig) -> None:
    held = ["GYU102:latency:1:6000", "GYU102:commit_then_timeout:1"]

    async def kill_mid_batch() -> None:
        rig.bridge.set_faults(held)

    month = rig.month(patients=2, lines=(520, 560))
    killed: dict[str, str] = {}

    async def during() -> None:
        await kill_mid_batch()

    # play until the first fee-line batch is in flight, then kill the worker (SIGKILL: no last commit)
    import asyncio

    play = asyncio.create_task(rig.play(month, during=during))
    killed["case"] = await rig.wait_in_flight("GYU102", timeout=240)
    rig.bridge.kill_worker("workinjury-sync")
    before = rig.platform()["calls"].get("GYU102", 0)
    deadline = asyncio.get_running_loop().time() + 30
    while rig.platform()["calls"].get("GYU102", 0) <= before - 1 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
    rig.bridge.set_faults([])
    rig.bridge.start_worker("workinjury-sync")
    ledger = await play
    platform = await rig.every_download_confirmed()
    results = [r for r in await rig.results() if r.case_key.split(":", 1)[-1] in {p.stay_id for p in month.patients}
               or r.case_key.startswith(("application:", "month:"))]
    problems = ledger.problems(results, platform)
    assert not problems, "\n".join(problems[:30]) + "\n" + rig.worker.log_tail(20)
    journal = [(status, res) for case, purpose, status, res in rig.calls("GYU102")
               if case == killed["case"] and purpose == "step"]
    assert journal[0] in (("resolved", "adopted"), ("resolved", "absent")), journal


async def test_bad_input_is_refused_before_sending_with_the_field_named_and_parked_nothing_else_stops(
        rig: WiRig) -> None:
    import json
    from decimal import Decimal

    from support.kafka import consume, produce
    from yibao.core.messaging.deadletter import DeadLetter
    from yibao.core.topics import topic
    from yibao.workinjury_sync.demo import HisPlayer

    month = rig.month(patients=1, lines=(6, 6))
    p = month.patients[0]
    player: HisPlayer = rig.player
    rig.admin("workinjury/filings", method="POST", body={
        "filing_no": f"BA{p.apply_no}", "psn_no": p.person.psn_no, "certno": p.certno, "psn_name": p.person.psn_name,
        "insu_admdvs": p.insu_admdvs, "mdtrt_admdvs": "440100", "org_type": "1", "begin_date": "2026-01-01",
        "end_date": "2027-12-31"})
    from yibao.core import clock

    over_length = dict(p.lines[1], item_name="名" * 101)
    wrong_sum = dict(p.lines[2], amount=str(Decimal(p.lines[2]["amount"]) + 1),
                     self_amt=str(Decimal(p.lines[2]["self_amt"]) + 1))
    missing = month.admitted(p, f"BA{p.apply_no}", clock.now())
    del missing["adm_dept_name"]
    await produce(rig.bridge.info.kafka_bootstrap, [
        (topic("workinjury_requests", rig.bridge.prefix), f"stay:{p.stay_id}".encode(), b"{not json"),
        (topic("workinjury_requests", rig.bridge.prefix), f"stay:{p.stay_id}".encode(),
         json.dumps(missing).encode())])
    await player.send(month.admitted(p, f"BA{p.apply_no}", clock.now()),
                      month.fee_lines(p, [p.lines[0], over_length, wrong_sum, *p.lines[3:]], clock.now()))
    results = await player.wait_results(lambda rs: any(r.case_key == f"stay:{p.stay_id}" and r.request == "fee_lines"
                                                       for r in rs), what="the fee lines answered")
    (lines,) = [r for r in results if r.case_key == f"stay:{p.stay_id}" and r.request == "fee_lines"]
    assert lines.kind == "invalid" and lines.detail["uploaded"] == len(p.lines) - 2
    assert "fee_list.item_name: max_length 100" in lines.detail["not_uploaded"][over_length["fee_sn"]]
    assert "fee_list.amount: price × cnt" in lines.detail["not_uploaded"][wrong_sum["fee_sn"]]
    platform = rig.platform()
    (adm,) = [a for a in platform["admissions"] if a["ipt_no"] == p.ipt_no]
    assert adm["details"] == len(p.lines) - 2, "the good lines went up; the bad ones never left"
    records = await consume(rig.bridge.info.kafka_bootstrap, [topic("dlq", rig.bridge.prefix)], idle=1.0,
                            timeout=30)
    letters = [DeadLetter.model_validate_json(r.value) for r in records]
    reasons = [letter.reason for letter in letters if letter.service == "workinjury-sync"]
    assert any("not a work-injury request" in r and "JSONDecodeError" in r for r in reasons), reasons
    assert any("adm_dept_name" in r for r in reasons), reasons
    assert any("fee_list.item_name: max_length 100" in r for r in reasons), reasons
    assert all("名名名" not in r for r in reasons)
