"""Every call recorded: a masked row in platform_calls and Prometheus metrics without personal labels."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from yibao.core.db.schema import platform_calls
from yibao.envelope.calllog import calls_for_visit
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome

from unit.envelope.national.national_standins import fail, ok, reject

CERTNO = "440106199001011234"
PERSON = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": CERTNO, "certno": CERTNO, "psn_name": "张三丰"}}


def rows(engine, infno=None):
    with engine.connect() as conn:
        query = select(platform_calls).order_by(platform_calls.c.id)
        if infno:
            query = query.where(platform_calls.c.infno == infno)
        return [dict(r) for r in conn.execute(query).mappings()]


def metric(infno: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("yibao_platform_calls_total",
                                     {"platform": "national", "infno": infno, "outcome": outcome}) or 0.0


async def test_successful_call_is_recorded_with_its_msgid_visit_and_duration(make_client, platform, sqlite_engine):
    platform.on("1101", ok({"baseinfo": {"psn_no": "P1", "psn_name": "张三丰", "certno": CERTNO}}))
    response = await make_client().call("1101", PERSON, visit_key="V-1")
    [row] = rows(sqlite_engine, "1101")
    assert (row["service"], row["platform"], row["infno"], row["msgid"], row["visit_key"]) == (
        "test", "national", "1101", response.msgid, "V-1")
    assert row["outcome"] == "success" and row["infcode"] == "0"
    assert row["duration_ms"] is not None and row["started_at"].tzinfo is not None


async def test_input_and_output_are_stored_with_personal_data_masked(make_client, platform, sqlite_engine):
    platform.on("1101", ok({"baseinfo": {"psn_no": "P1", "psn_name": "张三丰", "certno": CERTNO}}))
    await make_client().call("1101", PERSON)
    [row] = rows(sqlite_engine, "1101")
    for text in (row["input_masked"], row["output_masked"]):
        assert CERTNO not in text and "张三丰" not in text
    assert json.loads(row["input_masked"])["data"]["mdtrt_cert_type"] == "02"
    assert json.loads(row["output_masked"])["baseinfo"]["psn_no"] != "P1"  # psn_no is personal (issue 11)


async def test_rejection_is_recorded_with_infcode_and_err_msg(make_client, platform, sqlite_engine):
    platform.on("1101", reject("人员不存在"))
    with pytest.raises(BusinessRejection):
        await make_client().call("1101", PERSON)
    [row] = rows(sqlite_engine, "1101")
    assert (row["outcome"], row["infcode"], row["err_msg"]) == ("rejected", "-1", "人员不存在")


async def test_unknown_outcome_is_recorded_with_the_msgid_sent(make_client, platform, sqlite_engine):
    platform.on("2207", fail(httpx.ReadTimeout))
    client = make_client()
    msgid = await client.allocate_msgid()
    with pytest.raises(UnknownOutcome):
        await client.call("2207", {"data": {"psn_no": "P1"}}, msgid=msgid, insuplc_admdvs="440100")
    [row] = rows(sqlite_engine, "2207")
    assert (row["outcome"], row["msgid"]) == ("unknown", msgid)


async def test_refusal_before_sending_is_recorded_as_invalid(make_client, platform, sqlite_engine):
    with pytest.raises(EnvelopeValidationError):
        await make_client().call("2201", {"data": {"psn_no": ""}}, visit_key="V-2")
    [row] = rows(sqlite_engine, "2201")
    assert (row["outcome"], row["visit_key"]) == ("invalid", "V-2")
    assert "data.psn_no" in row["err_msg"]


async def test_retry_after_nothing_was_sent_keeps_one_row_per_msgid(make_client, platform, sqlite_engine):
    platform.on("2207", fail(httpx.ConnectError), ok({"setlinfo": {}}))
    await make_client().call("2207", {"data": {"psn_no": "P1"}}, insuplc_admdvs="440100")
    [row] = rows(sqlite_engine, "2207")
    assert row["outcome"] == "success"


async def test_reversal_row_names_the_original_message(make_client, platform, sqlite_engine):
    await make_client().reverse("P1", "H44010600001202401010800000001", "2207", insuplc_admdvs="440100",
                                visit_key="V-3")
    [row] = rows(sqlite_engine, "2601")
    assert (row["omsgid"], row["oinfno"]) == ("H44010600001202401010800000001", "2207")
    assert [r["infno"] for r in calls_for_visit(sqlite_engine, "V-3")] == ["2601"]


async def test_metrics_count_calls_by_infno_and_outcome(make_client, platform):
    before_ok, before_rejected = metric("1101", "success"), metric("1101", "rejected")
    client = make_client()
    await client.call("1101", PERSON)
    platform.on("1101", reject("人员不存在"))
    with pytest.raises(BusinessRejection):
        await client.call("1101", PERSON)
    assert metric("1101", "success") == before_ok + 1
    assert metric("1101", "rejected") == before_rejected + 1
    count = REGISTRY.get_sample_value("yibao_platform_call_seconds_count", {"platform": "national", "infno": "1101"})
    assert count and count >= 2


def test_metric_labels_carry_no_message_or_person():
    names = {m.name: m for m in REGISTRY.collect()}
    for family in ("yibao_platform_calls", "yibao_platform_call_seconds"):
        for sample in names[family].samples:
            assert set(sample.labels) <= {"platform", "infno", "outcome", "le"}


async def test_call_log_failure_does_not_fail_the_call(make_client, platform, sqlite_engine, monkeypatch):
    client = make_client()
    await client.call("1101", PERSON)  # signs in first

    def broken(*args, **kwargs):
        from sqlalchemy.exc import OperationalError
        raise OperationalError("insert", {}, Exception("disk full"))

    monkeypatch.setattr(client.call_log, "write_sync", broken)
    assert (await client.call("1101", PERSON)).ok


async def test_a_call_cancelled_in_flight_is_logged_as_unknown(make_client, platform, sqlite_engine):
    import asyncio

    started = asyncio.Event()

    async def slow_peer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["infno"] != "2207":
            return platform.handler(request)
        started.set()
        await asyncio.sleep(30)
        return platform.handler(request)

    client = make_client(transport=httpx.MockTransport(slow_peer))
    await client.sign_in()
    task = asyncio.create_task(client.call("2207", {"data": {"psn_no": "P1"}}, insuplc_admdvs="440100"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = rows(sqlite_engine, "2207")
    assert row["outcome"] == "unknown"
