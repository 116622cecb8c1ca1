"""The national client end to end against the platform simulator (in-process, loopback, real HTTP).

Everything is real here: the catalog, the envelope, the gateways, msgid leases and sign-in sessions on SQLite,
the call log — and the simulator's strict rules and faults on the other side.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from yibao.core.db import make_engine
from yibao.core.db.migrations import upgrade
from yibao.core.db.schema import platform_calls
from yibao.envelope import crypto
from yibao.envelope.client import NationalClient
from yibao.envelope.errors import BusinessRejection, UnknownOutcome
from yibao.envelope.national.files import FileErrorReply, build_zip, format_txt
from yibao.envelope.settings import PlatformSettings
from yibao.simulator import Simulator, SimulatorSettings

pytestmark = pytest.mark.e2e


@pytest.fixture
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    upgrade(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


def sim_settings(**kw: Any) -> SimulatorSettings:
    return SimulatorSettings(**{"port": 0, "admin_port": 0, "population_size": 20, "hold_s": 2.0, **kw})


def client_settings(sim: Simulator, **kw: Any) -> PlatformSettings:
    return PlatformSettings(**{"base_url": sim.url, "retry_backoff_s": 0, "read_timeout_s": 5, **kw})


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_settings()) as s:
        yield s


async def a_person(sim: Simulator) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        persons = (await c.get(sim.admin_url + "/admin/persons?limit=50")).json()
    return next(p for p in persons if p["insutype"] == "310")


async def admin(sim: Simulator, what: str) -> Any:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{sim.admin_url}/admin/{what}")).json()


async def until_settlement(client: NationalClient, person: dict[str, Any]) -> dict[str, Any]:
    """1101 → 2201 → 2203 → 2204 → 2206; the 2207 input, ready to send."""
    ins = person["insuplc_admdvs"]
    info = await client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"]}})
    psn_no = info.output["baseinfo"]["psn_no"]
    reg = await client.call("2201", {"data": {
        "psn_no": psn_no, "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": person["certno"], "ipt_otp_no": "MZ" + secrets.token_hex(4), "atddr_no": "D1",
        "dr_name": "医生", "dept_code": "K1", "dept_name": "内科", "caty": "A03"}}, insuplc_admdvs=ins)
    mdtrt_id = reg.output["data"]["mdtrt_id"]
    await client.call("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
                                             "begntime": "2024-05-01 09:00:00", "dise_codg": "J00",
                                             "dise_name": "感冒"},
                               "diseinfo": [{"diag_type": "1", "diag_srt_no": 1, "diag_code": "J00",
                                             "diag_name": "感冒", "diag_dept": "内科", "dise_dor_no": "D1",
                                             "dise_dor_name": "医生", "diag_time": "2024-05-01 09:05:00",
                                             "vali_flag": "1"}]}, insuplc_admdvs=ins)
    await client.call("2204", {"feedetail": [{
        "feedetl_sn": "F1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B1", "rx_circ_flag": "0",
        "fee_ocur_time": "2024-05-01 09:10:00", "med_list_codg": "XA01", "medins_list_codg": "HXA01",
        "det_item_fee_sumamt": Decimal("25.00"), "cnt": Decimal("1"), "pric": Decimal("25"),
        "bilg_dept_codg": "K1", "bilg_dept_name": "内科", "bilg_dr_codg": "D1", "bilg_dr_name": "医生",
        "hosp_appr_flag": "1"}]}, insuplc_admdvs=ins)
    data = {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"], "med_type": "11",
            "medfee_sumamt": Decimal("25.00"), "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1",
            "acct_used_flag": "1", "insutype": "310"}
    await client.call("2206", {"data": data}, insuplc_admdvs=ins)
    return {"data": {**data, "fulamt_ownpay_amt": Decimal("0"), "overlmt_selfpay": Decimal("0"),
                     "preselfpay_amt": Decimal("0"), "inscp_scp_amt": Decimal("25.00")}}


async def test_outpatient_settlement_through_the_client(sim, engine):
    person = await a_person(sim)
    async with NationalClient(client_settings(sim), engine=engine, service="it") as client:
        payload = await until_settlement(client, person)
        msgid = await client.allocate_msgid()
        settled = await client.call("2207", payload, msgid=msgid, insuplc_admdvs=person["insuplc_admdvs"])
    setlinfo = settled.output["setlinfo"]
    assert setlinfo["medfee_sumamt"] == setlinfo["fund_pay_sumamt"] + setlinfo["psn_part_amt"]
    assert [s["msgid"] for s in await admin(sim, "settlements")] == [msgid]
    with engine.connect() as conn:
        infnos = [r.infno for r in conn.execute(select(platform_calls.c.infno).order_by(platform_calls.c.id))]
    assert infnos[:2] == ["9001", "1101"] and infnos[-2:] == ["2207", "9002"]


async def test_commit_then_timeout_is_an_unknown_outcome_resolved_by_2601(engine):
    async with Simulator(sim_settings(faults=["2207:commit_then_timeout:1"])) as sim:
        person = await a_person(sim)
        settings = client_settings(sim, settlement_read_timeout_s=0.5)
        async with NationalClient(settings, engine=engine, service="it") as client:
            payload = await until_settlement(client, person)
            msgid = await client.allocate_msgid()
            with pytest.raises(UnknownOutcome) as caught:
                await client.call("2207", payload, msgid=msgid, insuplc_admdvs=person["insuplc_admdvs"])
            assert caught.value.msgid == msgid
            assert [s["msgid"] for s in await admin(sim, "settlements")] == [msgid]  # it did settle
            await client.reverse(payload["data"]["psn_no"], msgid, "2207", insuplc_admdvs=person["insuplc_admdvs"])
        assert [s["status"] for s in await admin(sim, "settlements")] == ["reversed"]


async def test_connection_reset_is_unknown_and_the_settlement_is_sent_once(engine):
    async with Simulator(sim_settings(faults=["2207:reset:1"])) as sim:
        person = await a_person(sim)
        async with NationalClient(client_settings(sim), engine=engine, service="it") as client:
            payload = await until_settlement(client, person)
            with pytest.raises(UnknownOutcome):
                await client.call("2207", payload, insuplc_admdvs=person["insuplc_admdvs"])
        counters = await admin(sim, "counters")
        assert counters["faults"] == {"2207:reset": 1}


async def test_platform_rejection_carries_its_err_msg(sim, engine):
    async with NationalClient(client_settings(sim), engine=engine, service="it") as client:
        with pytest.raises(BusinessRejection) as caught:
            await client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "no-such-person"}})
    assert caught.value.err_msg


@pytest.mark.parametrize("gateway", ["tif", "api", "encrypted"])
async def test_each_gateway_is_accepted_by_the_simulator(engine, gateway):
    key = "0123456789abcdeffedcba9876543210"
    private, public = crypto.generate_keypair()
    sim_kw: dict[str, Any] = {"gateway": "_api" if gateway == "api" else gateway}
    if gateway == "encrypted":
        sim_kw.update(sm4_key_hex=key, hospital_public_key_hex=public)
    async with Simulator(sim_settings(**sim_kw)) as sim:
        s = sim.settings
        kw: dict[str, Any] = {"gateway": gateway}
        if gateway == "tif":
            kw.update(tif_paasid=s.tif_paasid, tif_token=SecretStr(s.tif_token))
        elif gateway == "api":
            kw.update(api_access_key=s.api_access_key, api_secret=SecretStr(s.api_secret), api_version=s.api_version)
        else:
            kw.update(sm4_key=SecretStr(key), sm2_private_key=SecretStr(private),
                      platform_public_key=sim.platform_public_key_hex, require_response_signature=True)
        person = await a_person(sim)
        async with NationalClient(client_settings(sim, **kw), engine=engine, service="it") as client:
            info = await client.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": person["certno"]}})
        assert info.output["baseinfo"]["psn_no"]


async def test_9101_upload_and_9102_download(sim, engine):
    columns = ["setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag"]
    rows = [{"setl_id": "S1", "mdtrt_id": "M1", "psn_no": "P1", "medfee_sumamt": Decimal("10.00"),
             "fund_pay_sumamt": Decimal("5.00"), "acct_pay": Decimal("0.00"), "refd_setl_flag": "0"}]
    content = build_zip({"detail.txt": format_txt(rows, columns)})
    async with NationalClient(client_settings(sim), engine=engine, service="it") as client:
        uploaded = await client.upload(content, "detail.zip")
        assert await client.download(uploaded.file_qury_no, "detail.zip") == content
        assert (await client.download_rows(uploaded.file_qury_no, "detail.zip", columns))[0]["setl_id"] == "S1"
        with pytest.raises(FileErrorReply) as caught:
            await client.download("NO-SUCH-FILE", "x.zip")
    assert caught.value.err_msg
