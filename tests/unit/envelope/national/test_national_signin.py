"""9001 sign-in session: obtained once, shared by workers through the database, renewed, signed out."""

from __future__ import annotations

import asyncio
import datetime as _dt

import httpx
import pytest
from sqlalchemy import select

from yibao.core.clock import SHANGHAI
from yibao.core.db.schema import signin_sessions
from yibao.envelope.errors import BusinessRejection, TransportError
from yibao.envelope.settings import PlatformSettings
from yibao.envelope.signin import SignInError, session_expiry

from unit.envelope.national.national_standins import fail, ok, reject

QUERY = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "X1"}}
SETTLE = {"data": {"psn_no": "P0001", "mdtrt_id": "M1"}}


async def test_first_call_signs_in_and_every_envelope_carries_the_sign_no(make_client, platform):
    client = make_client()
    await client.call("1101", QUERY)
    await client.call("1101", QUERY)
    sign_in = platform.calls("9001")
    assert len(sign_in) == 1
    assert sign_in[0].envelope["sign_no"] == ""
    assert set(sign_in[0].envelope["input"]["signIn"]) == {"opter_no", "mac", "ip"}
    assert [s.envelope["sign_no"] for s in platform.calls("1101")] == ["SN000001", "SN000001"]


async def test_workers_of_a_service_share_one_sign_in(make_client, platform):
    workers = [make_client() for _ in range(3)]
    await asyncio.gather(*(w.call("1101", QUERY) for w in workers for _ in range(5)))
    assert len(platform.calls("9001")) == 1
    assert {s.envelope["sign_no"] for s in platform.calls("1101")} == {"SN000001"}


async def test_a_worker_reads_the_sign_no_another_worker_obtained(make_client, platform, sqlite_engine):
    first, second = make_client(), make_client()
    await first.call("1101", QUERY)
    await second.call("1101", QUERY)
    assert len(platform.calls("9001")) == 1
    assert second.signin.signed_in_here is False and first.signin.signed_in_here is True


async def test_expired_session_is_renewed(make_client, platform):
    client = make_client(PlatformSettings(signin_renew_s=0.05, retry_backoff_s=0))
    await client.call("1101", QUERY)
    await asyncio.sleep(0.1)
    await client.call("1101", QUERY)
    assert [s.envelope["sign_no"] for s in platform.calls("1101")] == ["SN000001", "SN000002"]


async def test_invalid_sign_no_answer_renews_the_session_and_resends_under_a_new_msgid(make_client, platform):
    platform.on("1101", reject("签到信息无效，请重新签到"), ok({"baseinfo": {}}))
    response = await make_client().call("1101", QUERY)
    calls = platform.calls("1101")
    assert [c.envelope["sign_no"] for c in calls] == ["SN000001", "SN000002"]
    assert calls[0].envelope["msgid"] != calls[1].envelope["msgid"] == response.msgid


async def test_invalid_sign_no_on_a_settlement_with_a_persisted_msgid_is_raised_not_resent(make_client, platform):
    platform.on("2207", reject("未签到"), ok({"setlinfo": {}}))
    client = make_client()
    msgid = await client.allocate_msgid()
    with pytest.raises(BusinessRejection):
        await client.call("2207", SETTLE, msgid=msgid, insuplc_admdvs="440100")
    assert len(platform.calls("2207")) == 1
    await client.call("2207", SETTLE, msgid=await client.allocate_msgid(), insuplc_admdvs="440100")
    assert platform.calls("2207")[1].envelope["sign_no"] == "SN000002"


async def test_invalidation_reaches_every_worker_without_a_second_sign_in(make_client, platform):
    first, second = make_client(), make_client()
    await first.call("1101", QUERY)
    await second.call("1101", QUERY)  # both now hold SN000001

    def platform_forgot_sn1(seen):
        return (reject("签到已失效") if seen.envelope["sign_no"] == "SN000001" else ok({}))(seen)

    platform.on("1101", platform_forgot_sn1)
    await first.call("1101", QUERY)  # rejected, renews (SN000002), resent
    await second.call("1101", QUERY)  # rejected with its cached SN000001, reads SN000002, resent
    assert len(platform.calls("9001")) == 2
    assert [c.envelope["sign_no"] for c in platform.calls("1101")[2:]] == [
        "SN000001", "SN000002", "SN000001", "SN000002"]


async def test_close_signs_out_with_9002_and_marks_the_session(make_client, platform, sqlite_engine):
    client = make_client()
    await client.call("1101", QUERY)
    await client.aclose()
    sign_out = platform.calls("9002")
    assert len(sign_out) == 1
    assert sign_out[0].envelope["input"] == {"signOut": {"sign_no": "SN000001", "opter_no": "yibao"}}
    with sqlite_engine.connect() as conn:
        row = conn.execute(select(signin_sessions)).mappings().one()
    assert row["sign_no"] == "SN000001" and row["signed_out_at"] is not None


async def test_a_worker_that_did_not_sign_in_does_not_sign_out(make_client, platform):
    first, second = make_client(), make_client()
    await first.call("1101", QUERY)
    await second.call("1101", QUERY)
    await second.aclose()
    assert platform.calls("9002") == []


async def test_failed_sign_in_is_a_transport_error_and_the_call_is_not_sent(make_client, platform):
    platform.on("9001", reject("操作员不存在"))
    with pytest.raises(SignInError) as caught:
        await make_client(PlatformSettings(retry_attempts=1, retry_backoff_s=0)).call("1101", QUERY)
    assert isinstance(caught.value, TransportError)
    assert platform.calls("1101") == []


async def test_a_failed_sign_in_leaves_no_claim_behind(make_client, platform, sqlite_engine):
    platform.on("9001", fail(httpx.ConnectError), ok({"signinoutb": {"sign_no": "SN-LATE"}}))
    client = make_client(PlatformSettings(retry_attempts=1, retry_backoff_s=0))
    with pytest.raises(SignInError):
        await client.call("1101", QUERY)
    await client.call("1101", QUERY)
    assert platform.calls("1101")[-1].envelope["sign_no"] == "SN-LATE"


def test_session_expires_after_the_renewal_interval_or_at_shanghai_midnight():
    morning = _dt.datetime(2024, 1, 1, 9, 0, tzinfo=SHANGHAI)
    evening = _dt.datetime(2024, 1, 1, 22, 0, tzinfo=SHANGHAI)
    assert session_expiry(morning, 4 * 3600, True) == _dt.datetime(2024, 1, 1, 13, 0, tzinfo=SHANGHAI)
    assert session_expiry(evening, 4 * 3600, True) == _dt.datetime(2024, 1, 2, 0, 0, tzinfo=SHANGHAI)
    assert session_expiry(evening, 4 * 3600, False) == _dt.datetime(2024, 1, 2, 2, 0, tzinfo=SHANGHAI)


async def test_signin_can_be_switched_off(make_client, platform):
    await make_client(PlatformSettings(signin_enabled=False, retry_backoff_s=0)).call("1101", QUERY)
    assert platform.calls("9001") == [] and platform.calls("1101")[0].envelope["sign_no"] == ""
