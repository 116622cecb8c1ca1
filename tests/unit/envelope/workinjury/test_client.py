"""The work-injury client against the simulator's work-injury side (real HTTP on loopback, real SM2/SM4): what it
checks before sending, how it classifies each end of a call, what it records."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from yibao.chains.ports import CallLogBuffer
from yibao.core import clock
from yibao.core.db.schema import platform_calls
from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import generate_keypair
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome
from yibao.envelope.metrics import PLATFORM_CALLS
from yibao.envelope.workinjury import WorkInjuryClient, WorkInjuryPlatformSettings
from yibao.simulator import Simulator, SimulatorSettings

ORG = "H44010600001"


@pytest.fixture(scope="module")
def hospital_keys() -> tuple[str, str]:
    return generate_keypair()


@pytest.fixture
async def sim(hospital_keys: tuple[str, str]) -> AsyncIterator[Simulator]:
    settings = SimulatorSettings(port=0, admin_port=0, population_size=5, hold_s=0.3,
                                 wi_hospital_public_key_hex=hospital_keys[1])
    async with Simulator(settings) as simulator:
        yield simulator


def _client(sim: Simulator, engine: Engine, keys: tuple[str, str], **over: Any) -> WorkInjuryClient:
    settings = WorkInjuryPlatformSettings(**{
        "base_url": sim.url, "private_key": keys[0], "platform_public_key": sim.platform_public_key_hex,
        "retry_backoff_s": 0.0, "read_timeout_s": 2.0, **over})
    return WorkInjuryClient(settings, engine=engine, service="test")


@pytest.fixture
async def client(sim: Simulator, sqlite_engine: Engine, hospital_keys: tuple[str, str]) -> AsyncIterator[WorkInjuryClient]:
    c = _client(sim, sqlite_engine, hospital_keys)
    yield c
    await c.aclose()


def _filing(sim: Simulator, certno: str = "440106199001011234") -> dict[str, Any]:
    filing = {"filing_no": "BA0001", "psn_no": "P0001", "certno": certno, "psn_name": "测试", "insu_admdvs": "350100",
              "mdtrt_admdvs": "440100", "org_type": "1", "begin_date": "2026-01-01", "end_date": "2026-12-31"}
    sim.workinjury.add_filing(filing)
    return filing


def _admission(**over: Any) -> dict[str, Any]:
    return {"ipt_no": "ZY001", "org_code": ORG, "filing_no": "BA0001", "psn_no": "P0001", "certno": "440106199001011234",
            "psn_name": "测试", "visit_type": "1", "adm_time": dt.datetime(2026, 3, 2, 9, 0, tzinfo=clock.SHANGHAI),
            "adm_dept_code": "GK", "adm_dept_name": "骨科", "adm_diag_code": "S82.0", "adm_diag_name": "髌骨骨折",
            **over}


async def test_a_connectivity_check_goes_through_the_sealed_envelope_both_ways(client: WorkInjuryClient) -> None:
    reply = await client.call("GYU000", {"data": {"org_code": ORG}})
    assert reply.output["status"] == "ok"
    assert len(reply.trans_no) == 30 and reply.trans_no.startswith(ORG)


async def test_an_upload_the_platform_accepts_answers_its_ids(client: WorkInjuryClient, sim: Simulator) -> None:
    _filing(sim)
    reply = await client.call("GYU101", {"adm_list": [_admission()]})
    assert reply.output["result"] == [{"biz_no": "ZY001", "plat_no": f"{ORG}:ZY001"}]
    assert sim.workinjury.admissions[(ORG, "ZY001")]["status"] == "active"


async def test_a_missing_required_field_is_refused_before_sending_with_the_field_named(
        client: WorkInjuryClient, sim: Simulator, sqlite_engine: Engine) -> None:
    row = _admission()
    del row["adm_dept_name"]
    with pytest.raises(EnvelopeValidationError) as info:
        await client.call("GYU101", {"adm_list": [row]}, visit_key="stay:1")
    assert str(info.value) == "GYU101: adm_list[0].adm_dept_name: required"
    assert sim.workinjury.calls == {}
    with sqlite_engine.connect() as conn:
        (row_,) = conn.execute(select(platform_calls.c.outcome, platform_calls.c.platform)).all()
    assert tuple(row_) == ("invalid", "workinjury")


async def test_more_than_500_records_are_refused_before_sending(client: WorkInjuryClient, sim: Simulator) -> None:
    line = {"fee_sn": "1", "ipt_no": "ZY1", "org_code": ORG, "fee_time": "2026-03-02 10:00:00", "item_code": "X",
            "item_name": "n", "price": Decimal("1"), "cnt": Decimal("1"), "amount": Decimal("1"),
            "pool_amt": Decimal("1"), "self_amt": Decimal("0")}
    with pytest.raises(EnvelopeValidationError, match="at most 500 records per call"):
        await client.call("GYU102", {"fee_list": [{**line, "fee_sn": str(i)} for i in range(501)]})
    with pytest.raises(EnvelopeValidationError, match="at most 10 records per call"):
        await client.call("GYU002", {"atta_list": [{"atta_no": str(i), "atta_name": "a", "atta_type": "01",
                                                    "file_content": "QQ=="} for i in range(11)]})
    assert sim.workinjury.calls == {}


async def test_a_refusal_carries_the_platforms_words(client: WorkInjuryClient) -> None:
    with pytest.raises(BusinessRejection) as info:
        await client.call("GYU101", {"adm_list": [_admission()]})  # no filing BA0001
    assert "备案BA0001不存在" in info.value.err_msg and info.value.infcode == "-1"


async def test_without_the_key_pair_nothing_is_sent(sim: Simulator, sqlite_engine: Engine) -> None:
    client = WorkInjuryClient(WorkInjuryPlatformSettings(base_url=sim.url), engine=sqlite_engine)
    assert "YIBAO_WORKINJURY_PLATFORM_PRIVATE_KEY" in (client.missing_configuration() or "")
    with pytest.raises(ConfigurationError, match="key pair is not configured"):
        await client.call("GYU000", {"data": {"org_code": ORG}})
    await client.aclose()
    assert sim.workinjury.calls == {}


class _Tampering(httpx.AsyncBaseTransport):
    """Forwards to the simulator and flips one character of the reply's signature (a forged or damaged reply)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = json.loads(await response.aread())
        body["sign"] = ("A" if body["sign"][0] != "A" else "B") + body["sign"][1:]
        return httpx.Response(response.status_code, json=body)


async def test_a_reply_whose_signature_does_not_verify_is_not_believed(sim: Simulator, sqlite_engine: Engine,
                                                                      hospital_keys: tuple[str, str]) -> None:
    _filing(sim)
    settings = WorkInjuryPlatformSettings(base_url=sim.url, private_key=hospital_keys[0],
                                          platform_public_key=sim.platform_public_key_hex)
    client = WorkInjuryClient(settings, engine=sqlite_engine, transport=_Tampering())
    with pytest.raises(UnknownOutcome, match="cannot be opened"):
        await client.call("GYU101", {"adm_list": [_admission()]})
    await client.aclose()
    assert sim.workinjury.admissions[(ORG, "ZY001")]["status"] == "active", "it took effect: a lookup will tell"


async def test_a_request_wrapped_for_another_key_is_refused_unread(sim: Simulator, sqlite_engine: Engine,
                                                                  hospital_keys: tuple[str, str]) -> None:
    client = _client(sim, sqlite_engine, hospital_keys, platform_public_key=generate_keypair()[1])
    with pytest.raises(BusinessRejection, match="无法解密"):
        await client.call("GYU000", {"data": {"org_code": ORG}})
    await client.aclose()


async def test_a_request_signed_with_an_unknown_key_is_refused_by_the_platform(sim: Simulator,
                                                                              sqlite_engine: Engine) -> None:
    client = _client(sim, sqlite_engine, generate_keypair())
    with pytest.raises(BusinessRejection, match="验签失败"):
        await client.call("GYU000", {"data": {"org_code": ORG}})
    await client.aclose()


async def test_a_lost_answer_of_an_upload_is_unknown_and_gyd053_gives_it_back(
        client: WorkInjuryClient, sim: Simulator) -> None:
    _filing(sim)
    sim.faults.set_rules(["GYU101:commit_then_timeout:1"])
    with pytest.raises(UnknownOutcome) as info:
        await client.call("GYU101", {"adm_list": [_admission()]}, read_timeout_s=0.2)
    sim.faults.set_rules([])
    assert sim.workinjury.calls["GYU101"] == 1, "an upload is never sent again by the client"
    lost = info.value.msgid
    found = await client.call("GYD053", {"data": {"trans_code": "GYU101", "trans_no": lost}})
    assert found.output["infcode"] == "0" and found.output["output"]["result"][0]["biz_no"] == "ZY001"


async def test_gyd053_of_a_serial_the_platform_never_saw_says_not_found(client: WorkInjuryClient) -> None:
    with pytest.raises(BusinessRejection) as info:
        await client.call("GYD053", {"data": {"trans_code": "GYU101", "trans_no": f"{ORG}202603020900000001"}})
    assert client.catalog.says("not_found", info.value.err_msg)


async def test_a_check_whose_answer_was_lost_is_asked_again_under_a_new_serial(
        client: WorkInjuryClient, sim: Simulator) -> None:
    sim.faults.set_rules(["GYU000:drop_reply:1"])
    buffer = CallLogBuffer()
    with pytest.raises(UnknownOutcome):
        await client.call("GYU000", {"data": {"org_code": ORG}}, call_log=buffer)
    serials = [record.msgid for record, _, _ in buffer.records]
    assert len(serials) == 3 and len(set(serials)) == 3  # retry_attempts, each a new transNo
    assert {record.outcome for record, _, _ in buffer.records} == {"unknown"}


async def test_a_gateway_that_did_not_forward_is_retried_with_the_same_serial(
        client: WorkInjuryClient, sim: Simulator) -> None:
    _filing(sim)
    sim.faults.set_rules(["GYU101:http_5xx:1:503"])
    buffer = CallLogBuffer()
    with pytest.raises(Exception):
        await client.call("GYU101", {"adm_list": [_admission()]}, call_log=buffer)
    serials = {record.msgid for record, _, _ in buffer.records}
    assert len(buffer.records) == 3 and len(serials) == 1
    assert sim.workinjury.admissions == {}


async def test_call_records_go_to_the_sink_masked_and_counted_under_the_workinjury_platform(
        client: WorkInjuryClient, sim: Simulator) -> None:
    _filing(sim)
    before = PLATFORM_CALLS.labels("workinjury", "GYU101", "success")._value.get()
    buffer = CallLogBuffer()
    await client.call("GYU101", {"adm_list": [_admission()]}, visit_key="stay:9", call_log=buffer)
    ((record, input_obj, output_obj),) = buffer.records
    assert (record.platform, record.infno, record.outcome, record.visit_key) == ("workinjury", "GYU101", "success",
                                                                                 "stay:9")
    assert input_obj["adm_list"][0]["ipt_no"] == "ZY001" and output_obj["result"]
    assert PLATFORM_CALLS.labels("workinjury", "GYU101", "success")._value.get() == before + 1


async def test_attachment_contents_never_reach_the_call_log(client: WorkInjuryClient) -> None:
    buffer = CallLogBuffer()
    await client.call("GYU002", {"atta_list": [{"atta_no": "F1", "atta_name": "认定书.pdf", "atta_type": "01",
                                                "file_content": "JVBERi0xLjQK" * 100}]}, call_log=buffer)
    ((_, input_obj, _),) = buffer.records
    assert input_obj["atta_list"][0]["file_content"] == "<1200 characters>"


async def test_reversal_is_refused_there_is_no_chongzheng(client: WorkInjuryClient) -> None:
    with pytest.raises(ConfigurationError, match="no 冲正"):
        await client.reverse("P1", "x", "GYU102")
