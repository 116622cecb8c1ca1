"""The target adapters over HTTP against the simulator's platforms: each authentication (HMAC signature, token with
renewal after it expired, DRG organisation registration, bearer), the shared envelope, the outcomes classified as
the national client classifies them (a refusal, a lost answer, a connection refused), and the routing client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.errors import BusinessRejection, TransportError, UnknownOutcome
from yibao.simulator.server import Simulator
from yibao.simulator.settings import SimulatorSettings
from yibao.simulator.targets import CREDENTIALS, admin_update
from yibao.upload_scheduler.settings import UploadSchedulerSettings
from yibao.upload_scheduler.targets.catalog import build_catalog
from yibao.upload_scheduler.targets.router import RoutingClient, build_adapters

pytestmark = pytest.mark.asyncio
CATALOG = build_catalog(Catalog.load(None))


def settings(url: str, **kw: Any) -> UploadSchedulerSettings:
    c = CREDENTIALS
    return UploadSchedulerSettings(**{
        "targets_enabled": ["national", "zifei", "yimatong", "drg", "epidemic", "flu"],
        **{f"{t}_url": f"{url}/targets/{t}" for t in ("zifei", "yimatong", "drg", "epidemic", "flu")},
        "zifei_app_id": c["zifei"]["app_id"], "zifei_app_secret": c["zifei"]["secret"],
        "yimatong_app_id": c["yimatong"]["app_id"], "yimatong_app_secret": c["yimatong"]["secret"],
        "drg_app_key": c["drg"]["app_key"], "drg_app_secret": c["drg"]["secret"],
        "epidemic_token": c["epidemic"]["token"], "flu_token": c["flu"]["token"], "target_timeout_s": 2.0, **kw})


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(SimulatorSettings(port=0, admin_port=0, population_size=10, hold_s=0.1,
                                    faults=["YQ.UPLOAD:commit_then_timeout:1", "FLU.DEATH:reset:1"]))
    async with s:
        yield s


@pytest.fixture
async def adapters(sim: Simulator) -> AsyncIterator[dict[str, Any]]:
    out = build_adapters(settings(sim.url), CATALOG, "H44010600001")
    yield out
    for a in out.values():
        await a.aclose()


ZF_RECORD = {"visit_no": "MZ1", "visit_type": "1", "psn_cert_type": "01", "certno": "440106199001011234",
             "psn_name": "测试", "visit_time": "2025-03-04 10:00:00", "dept_code": "A03", "medfee_sumamt": "12.00",
             "fees": [{"fee_sn": "F1", "item_code": "X1", "item_name": "挂号", "cnt": "1", "pric": "12",
                       "amt": "12.00", "fee_time": "2025-03-04 10:00:00"}]}


async def test_zifei_signs_each_request_and_answers_a_task_polled_to_its_results(adapters: dict[str, Any]) -> None:
    reply = await adapters["zifei"].call("ZF.UPLOAD", {"records": [ZF_RECORD]}, msgid="M1")
    task = reply.output["task_id"]
    done = await adapters["zifei"].call("ZF.TASK", {"task_id": task}, msgid="M2")
    assert done.output["status"] == "done" and done.output["results"][0]["visit_no"] == "MZ1"
    with pytest.raises(BusinessRejection, match="任务不存在"):
        await adapters["zifei"].call("ZF.TASK", {"task_id": "T-none"}, msgid="M3")


async def test_a_wrong_secret_is_refused_and_said_so(sim: Simulator) -> None:
    [zifei] = build_adapters(settings(sim.url, targets_enabled=["zifei"], zifei_app_secret="wrong"), CATALOG,
                             "H44010600001").values()
    try:
        with pytest.raises(BusinessRejection, match="credentials refused"):
            await zifei.call("ZF.UPLOAD", {"records": [ZF_RECORD]}, msgid="M1")
    finally:
        await zifei.aclose()


async def test_yimatong_renews_its_token_once_it_expired(sim: Simulator, adapters: dict[str, Any]) -> None:
    ymt = adapters["yimatong"]
    await ymt.call("YMT.CHILD", {"drug_trac_codg": "81000000000000000001"}, msgid="M1")
    admin_update(sim.ledger, {"expire_tokens": True})
    reply = await ymt.call("YMT.CHILD", {"drug_trac_codg": "81000000000000000001"}, msgid="M2")
    assert reply.output


async def test_drg_registers_the_organisation_and_registers_again_after_a_401(
        sim: Simulator, adapters: dict[str, Any]) -> None:
    drg = adapters["drg"]
    hospital = {"hospital": {"org_code": "H44010600001", "org_name": "模拟医院", "hosp_lv": "3", "admdvs": "440100"}}
    assert (await drg.call("DRG.HOSP", hospital, msgid="M1")).output == {"key": "H44010600001"}
    admin_update(sim.ledger, {"expire_tokens": True})
    await drg.call("DRG.HOSP_M", hospital, msgid="M2")


async def test_a_lost_answer_and_a_dropped_connection_are_unknown_outcomes(adapters: dict[str, Any]) -> None:
    rows = {"rows": [{"indicator_code": "YQ1", "period_start": "2025-03-04 10:00:00",
                      "period_end": "2025-03-04 10:15:00", "value": "3"}]}
    with pytest.raises(UnknownOutcome):
        await adapters["epidemic"].call("YQ.UPLOAD", rows, msgid="M1", read_timeout_s=0.05)
    death = {"death": {"case_id": "C1", "death_time": "2025-03-04 10:00:00", "psn_name": "测试",
                       "death_cause": "肺炎"}}
    with pytest.raises(UnknownOutcome):
        await adapters["flu"].call("FLU.DEATH", death, msgid="M2")


async def test_an_unreachable_target_is_a_transport_error(sim: Simulator) -> None:
    [flu] = build_adapters(settings("http://127.0.0.1:9", targets_enabled=["flu"]), CATALOG, "H1").values()
    try:
        with pytest.raises(TransportError):
            await flu.call("FLU.SUMM", {"summary": {"case_id": "C1", "summary_text": "好转"}}, msgid="M1")
    finally:
        await flu.aclose()


async def test_the_routing_client_sends_each_transaction_to_its_platform(adapters: dict[str, Any]) -> None:
    class National:
        platform = "national"
        called: list[str] = []

        async def call(self, infno: str, input: Any, **kw: Any) -> Any:
            self.called.append(infno)
            return {"national": infno}

        async def allocate_msgid(self) -> str:
            return "H0001"

    national = National()
    client = RoutingClient(national, {"flu": adapters["flu"]})
    assert await client.call("4101", {}) == {"national": "4101"}
    assert await client.allocate_msgid() == "H0001"
    from yibao.envelope.errors import EnvelopeValidationError

    with pytest.raises(EnvelopeValidationError, match="not in YIBAO_UPLOAD_SCHEDULER_TARGETS_ENABLED"):
        await client.call("DRG.MRP", {})
