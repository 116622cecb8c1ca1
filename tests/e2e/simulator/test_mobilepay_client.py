"""The bridge's MobilePayClient against the simulator over HTTP: real SM4/SM2 both ways, outcomes classified as the
chain engine needs them (a refusal, a lost answer, nothing sent), the call log masked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from yibao.chains.ports import CallLogBuffer, PlatformClient
from yibao.envelope.calllog import row_values
from yibao.envelope.crypto import generate_keypair
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, TransportError, UnknownOutcome
from yibao.envelope.mobilepay.client import MobilePayClient, NoReversal
from yibao.envelope.mobilepay.settings import MobilePaySettings


def client_for(sim: Any, private: str, **kw: Any) -> MobilePayClient:
    return MobilePayClient(MobilePaySettings(base_url=sim.url, private_key=private,
                                             platform_public_key=sim.platform_public_key_hex, retry_backoff_s=0.0,
                                             read_timeout_s=1.0, **kw))


def upload(sim: Any, med_org_ord: str, amount: str = "30.00", version: str = "2.0") -> dict[str, Any]:
    person = next(iter(sim.ledger.persons.values()))
    return {"version": version, "data": {
        "payAuthNo": "AUTH-1", "orgCodg": sim.settings.fixmedins_codes[0], "psnNo": person.psn_no,
        "insutype": person.insutype, "medOrgOrd": med_org_ord, "medType": "11", "medfeeSumamt": Decimal(amount),
        "idNo": person.certno, "userName": person.psn_name,
        "feedetailList": [{"feedetlSn": "1", "medListCodg": "XA01", "medinsListCodg": "HXA01", "cnt": Decimal("1"),
                           "pric": Decimal(amount), "detItemFeeSumamt": Decimal(amount),
                           "feeOcurTime": "2026-12-01 09:00:00"}]}}


async def test_the_client_is_the_engines_platform_client_and_pays_an_order(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    async with start(mp_hospital_public_key_hex=public) as sim:
        async with client_for(sim, private) as client:
            assert isinstance(client, PlatformClient) and client.platform == "mobilepay"
            log = CallLogBuffer()
            up = await client.call("6201", upload(sim, "MO-1"), call_log=log)
            msgid = await client.allocate_msgid()
            paid = await client.call("6202", {"data": {"payAuthNo": "AUTH-1", "payOrdId": up.output["payOrdId"],
                                                       "payToken": up.output["payToken"],
                                                       "orgCodg": sim.settings.fixmedins_codes[0]}},
                                     msgid=msgid, call_log=log)
            assert paid.output["ordStas"] == "4" and isinstance(paid.output["fundPay"], Decimal)
            order = sim.ledger.orders[up.output["payOrdId"]]
            assert order.org_biz_ser == msgid  # orgBizSer is the call's msgid
            assert sim.ledger.settlements[order.setl_id].msgid == msgid
            records = [r for r, _, _ in log.records]
            assert [(r.infno, r.outcome, r.platform) for r in records] == [("6201", "success", "mobilepay"),
                                                                          ("6202", "success", "mobilepay")]
            rows = [row_values(r, input_obj=i, output_obj=o) for r, i, o in log.records]
            person = next(iter(sim.ledger.persons.values()))
            text = str(rows)
            assert "AUTH-1" not in text and person.certno not in text and person.psn_name not in text
            assert up.output["payOrdId"] in text  # what reconciliation reads back stays
            with pytest.raises(NoReversal):
                await client.reverse("P", "M", "6202")


async def test_a_refusal_is_a_business_rejection_with_the_platforms_words(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    async with start(mp_hospital_public_key_hex=public) as sim, client_for(sim, private) as client:
        await client.call("6201", upload(sim, "MO-2"))
        with pytest.raises(BusinessRejection, match="repeat upload"):
            await client.call("6201", upload(sim, "MO-2"))


async def test_an_invalid_input_is_refused_before_anything_is_sent(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    async with start(mp_hospital_public_key_hex=public) as sim, client_for(sim, private) as client:
        bad = upload(sim, "MO-3")
        bad["data"]["medfeeSumamt"] = Decimal("31.00")
        with pytest.raises(EnvelopeValidationError, match="medfeeSumamt"):
            await client.call("6201", bad)
        with pytest.raises(EnvelopeValidationError, match="refdType"):
            await client.call("6203", {"data": {"payOrdId": "X", "appRefdSn": "R", "appRefdTime": "20261201090000",
                                                "totlRefdAmt": "1", "cashRefdAmt": "1", "psnAcctRefdAmt": "0",
                                                "fundRefdAmt": "0", "refdType": "SOME"}})
        assert sim.ledger.orders == {}


async def test_a_lost_answer_is_an_unknown_outcome_and_the_platform_did_it(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    async with start(mp_hospital_public_key_hex=public, faults=["6201:drop_reply:1"]) as sim, \
            client_for(sim, private) as client:
        with pytest.raises(UnknownOutcome):
            await client.call("6201", upload(sim, "MO-4"))
        assert len(sim.ledger.orders) == 1


async def test_an_answer_signed_by_someone_else_is_not_believed(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    _, stranger = generate_keypair()
    async with start(mp_hospital_public_key_hex=public) as sim:
        client = MobilePayClient(MobilePaySettings(base_url=sim.url, private_key=private, platform_public_key=stranger,
                                                   retry_backoff_s=0.0))
        async with client:
            with pytest.raises(UnknownOutcome, match="cannot be believed"):
                await client.call("6201", upload(sim, "MO-5"))


async def test_nothing_listening_is_a_transport_error(start) -> None:  # type: ignore[no-untyped-def]
    private, _ = generate_keypair()
    _, platform = generate_keypair()
    client = MobilePayClient(MobilePaySettings(base_url="http://127.0.0.1:9", private_key=private,
                                               platform_public_key=platform, retry_backoff_s=0.0, retry_attempts=1))
    async with client:
        with pytest.raises(TransportError):
            await client.call("6301", {"data": {"payOrdId": "X", "payToken": "T", "orgCodg": "H44010600001"}})


async def test_a_1_0_order_travels_with_the_1_0_version(start) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_keypair()
    async with start(mp_hospital_public_key_hex=public) as sim, client_for(sim, private) as client:
        log = CallLogBuffer()
        up = await client.call("6201", upload(sim, "MO-6", version="1.0"), call_log=log)
        assert sim.ledger.orders[up.output["payOrdId"]].version == "1.0"
        assert log.records[0][0].platform == "mobilepay-1.0"
        with pytest.raises(BusinessRejection, match="1.0 order"):
            await client.call("6301", {"data": {"payOrdId": up.output["payOrdId"], "payToken": up.output["payToken"],
                                                "orgCodg": sim.settings.fixmedins_codes[0]}})
