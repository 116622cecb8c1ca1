"""The national platform over HTTP: envelopes, gateways, files, faults, admin."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
import zipfile
from decimal import Decimal

import httpx
import pytest

from yibao.simulator import smcrypto

from .conftest import CODE, body, envelope, loads, sign_in


async def person(client: httpx.AsyncClient, sim) -> dict:
    r = await client.get(sim.admin_url + "/admin/persons?limit=50")
    return next(p for p in r.json() if p["insutype"] == "310")


async def test_a_reused_msgid_is_rejected_over_http(sim) -> None:
    async with httpx.AsyncClient() as c:
        sign_no = await sign_in(c, sim)
        p = await person(c, sim)
        env = envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"]}}, sign_no=sign_no)
        first = loads(await c.post(sim.url + sim.settings.call_path, content=body(env)))
        again = loads(await c.post(sim.url + sim.settings.call_path, content=body(env)))
    assert first["infcode"] == 0 and first["output"]["baseinfo"]["psn_no"] == p["psn_no"]
    assert again["infcode"] == -1 and "msgid" in again["err_msg"]


async def test_admin_api_is_on_its_own_port(sim) -> None:
    assert sim.url != sim.admin_url
    async with httpx.AsyncClient() as c:
        assert (await c.get(sim.url + "/admin/ledger")).status_code in (404, 405)
        assert (await c.post(sim.admin_url + sim.settings.call_path, content=b"{}")).status_code in (404, 405)
        assert (await c.get(sim.admin_url + "/admin/health")).json() == {"ok": True}


# --- tif -----------------------------------------------------------------------------------------------------

def tif_headers(paasid: str = "yibao_paas", token: str = "tif-token-for-tests", *, ts: int | None = None,
                nonce: str | None = None) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    sig = hashlib.sha256(f"{stamp}{token}{nonce}{stamp}".encode()).hexdigest()
    return {"x-tif-paasid": paasid, "x-tif-timestamp": stamp, "x-tif-nonce": nonce, "x-tif-signature": sig}


async def test_tif_gateway_accepts_a_good_signature_and_rejects_the_rest(start) -> None:
    async with start(gateway="tif") as sim, httpx.AsyncClient() as c:
        url = sim.url + sim.settings.call_path
        sign = lambda: body(envelope("9001", {"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}}))  # noqa: E731
        assert loads(await c.post(url, content=sign(), headers=tif_headers()))["infcode"] == 0
        assert (await c.post(url, content=sign())).status_code == 401
        assert (await c.post(url, content=sign(), headers=tif_headers(paasid="stranger"))).status_code == 403
        assert (await c.post(url, content=sign(), headers=tif_headers(token="wrong"))).status_code == 401
        assert (await c.post(url, content=sign(), headers=tif_headers(ts=int(time.time()) - 3600))).status_code == 401
        used = tif_headers(nonce="nonce-once")
        assert (await c.post(url, content=sign(), headers=used)).status_code == 200
        assert (await c.post(url, content=sign(), headers=tif_headers(nonce="nonce-once"))).status_code == 401
        counters = (await c.get(sim.admin_url + "/admin/counters")).json()
        assert counters["gateway_refusals"] == {"401": 4, "403": 1}


# --- _api ----------------------------------------------------------------------------------------------------

def api_headers(infno: str, *, secret: str = "yibao-api-secret", key: str = "yibao-access-key",
                ts: int | None = None, name: str | None = None) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time() * 1000))
    name = name or f"hsa-fsi-{infno}"
    text = f"_api_access_key={key}&_api_name={name}&_api_timestamp={stamp}&_api_version=1.0.0"
    sig = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return {"_api_name": name, "_api_version": "1.0.0", "_api_timestamp": stamp, "_api_access_key": key,
            "_api_signature": sig}


async def test_api_gateway_accepts_a_good_signature_and_rejects_the_rest(start) -> None:
    async with start(gateway="_api") as sim, httpx.AsyncClient() as c:
        url = sim.url + "/fsi/api/hsa-fsi-9001"
        sign = lambda: body(envelope("9001", {"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}}))  # noqa: E731
        assert loads(await c.post(url, content=sign(), headers=api_headers("9001")))["infcode"] == 0
        assert (await c.post(url, content=sign())).status_code == 401
        assert (await c.post(url, content=sign(), headers=api_headers("9001", secret="wrong"))).status_code == 401
        assert (await c.post(url, content=sign(), headers=api_headers("9001", key="stranger"))).status_code == 403
        assert (await c.post(url, content=sign(), headers=api_headers("9001", name="hsa-fsi-2207"))).status_code == 403
        stale = api_headers("9001", ts=int(time.time() * 1000) - 3_600_000)
        assert (await c.post(url, content=sign(), headers=stale)).status_code == 401


# --- encrypted -----------------------------------------------------------------------------------------------

async def test_encrypted_gateway_decrypts_verifies_and_answers_sealed(start) -> None:
    private, public = smcrypto.sm2_keypair()
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    async with start(gateway="encrypted", hospital_public_key_hex=public.hex()) as sim, httpx.AsyncClient() as c:
        url = sim.url + sim.settings.call_path

        def sealed(payload: dict, signer: bytes = private) -> bytes:
            plain = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            env = envelope("9001", {})
            env["input"] = base64.b64encode(smcrypto.sm4_ecb_encrypt(key, plain)).decode()
            env["cainfo"] = base64.b64encode(smcrypto.sm2_sign_raw(signer, public, plain)).decode()
            env["signtype"] = "SM2"
            return body(env)

        answer = loads(await c.post(url, content=sealed({"signIn": {"opter_no": "OP01", "ip": "127.0.0.1"}})))
        assert answer["infcode"] == 0 and isinstance(answer["output"], str)
        plain = smcrypto.sm4_ecb_decrypt(key, base64.b64decode(answer["output"]))
        assert smcrypto.sm2_verify_raw(sim.platform_public_key, plain, base64.b64decode(answer["cainfo"]))
        assert "sign_no" in json.loads(plain)["signinoutb"]
        other_private, _ = smcrypto.sm2_keypair()
        bad = loads(await c.post(url, content=sealed({"signIn": {"opter_no": "OP01", "ip": "1"}}, other_private)))
        assert bad["infcode"] == -1 and "cainfo" in bad["err_msg"]
        clear = loads(await c.post(url, content=body(envelope("9001", {"signIn": {"opter_no": "OP01", "ip": "1"}}))))
        assert clear["infcode"] == -1 and "ciphertext" in clear["err_msg"]


# --- files ---------------------------------------------------------------------------------------------------

async def test_9101_upload_then_9102_download_round_trip(sim) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("detail.txt", "S1\tM1\tP1\t10.00\t5.00\t0\t0\n")
    async with httpx.AsyncClient() as c:
        sign_no = await sign_in(c, sim)
        env = envelope("9101", {"fsUploadIn": {"filename": "detail.zip", "fixmedins_code": CODE}}, sign_no=sign_no)
        up = loads(await c.post(sim.url + sim.settings.upload_path,
                                files={"file": ("detail.zip", buf.getvalue(), "application/zip")},
                                data={"envelope": json.dumps(env, ensure_ascii=False)}))
        assert up["infcode"] == 0, up["err_msg"]
        info = up["output"]
        assert set(info) == {"file_qury_no", "filename", "dld_endtime"}
        down_env = envelope("9102", {"fsDownloadIn": {"file_qury_no": info["file_qury_no"], "filename": "detail.zip",
                                                      "fixmedins_code": CODE}}, sign_no=sign_no)
        down = await c.post(sim.url + sim.settings.download_path, content=body(down_env))
        assert down.headers["content-type"] == "application/octet-stream" and down.content == buf.getvalue()
        missing = envelope("9102", {"fsDownloadIn": {"file_qury_no": "NOPE", "filename": "x", "fixmedins_code": CODE}},
                           sign_no=sign_no)
        error = await c.post(sim.url + sim.settings.download_path, content=body(missing))
        assert error.headers["content-type"].startswith("application/json") and loads(error)["infcode"] == -1


# --- faults --------------------------------------------------------------------------------------------------

async def outpatient_until_2207(c: httpx.AsyncClient, sim, *, timeout: float | None = None) -> tuple[str, dict]:
    url = sim.url + sim.settings.call_path
    sign_no = await sign_in(c, sim)
    p = await person(c, sim)
    ins = p["insuplc_admdvs"]

    async def ok(infno: str, payload: dict) -> dict:
        r = loads(await c.post(url, content=body(envelope(infno, payload, sign_no=sign_no, insuplc=ins))))
        assert r["infcode"] == 0, r["err_msg"]
        return r["output"]

    reg = await ok("2201", {"data": {"psn_no": p["psn_no"], "insutype": "310", "begntime": "2024-05-01 09:00:00",
                                     "mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"], "ipt_otp_no": "MZ" + secrets.token_hex(4),
                                     "atddr_no": "D1", "dr_name": "医生", "dept_code": "K1", "dept_name": "内科", "caty": "A03"}})
    mdtrt_id = reg["data"]["mdtrt_id"]
    await ok("2203", {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": p["psn_no"], "med_type": "11",
                                    "begntime": "2024-05-01 09:00:00"}})
    await ok("2204", {"feedetail": [{"feedetl_sn": "F1", "mdtrt_id": mdtrt_id, "psn_no": p["psn_no"], "chrg_bchno": "B1",
                                     "fee_ocur_time": "2024-05-01 09:10:00", "med_list_codg": "XA01",
                                     "medins_list_codg": "HXA01", "det_item_fee_sumamt": "25.00", "cnt": "1", "pric": "25"}]})
    env = envelope("2207", {"data": {"psn_no": p["psn_no"], "mdtrt_cert_type": "02", "mdtrt_cert_no": p["certno"],
                                     "med_type": "11", "medfee_sumamt": "25.00", "psn_setlway": "01", "mdtrt_id": mdtrt_id,
                                     "chrg_bchno": "B1", "acct_used_flag": "1", "insutype": "310"}},
                   sign_no=sign_no, insuplc=ins)
    return mdtrt_id, env


async def test_commit_then_timeout_changes_the_ledger_while_the_client_times_out(start) -> None:
    async with start(faults=["2207:commit_then_timeout:1"]) as sim, httpx.AsyncClient() as c:
        mdtrt_id, env = await outpatient_until_2207(c, sim)
        with pytest.raises(httpx.ReadTimeout):
            await c.post(sim.url + sim.settings.call_path, content=body(env), timeout=0.5)
        settlements = (await c.get(sim.admin_url + "/admin/settlements")).json()
        assert [s["msgid"] for s in settlements if s["mdtrt_id"] == mdtrt_id] == [env["msgid"]]
        counters = (await c.get(sim.admin_url + "/admin/counters")).json()
        assert counters["faults"] == {"2207:commit_then_timeout": 1}


async def test_drop_reply_commits_and_closes_the_connection(start) -> None:
    async with start(faults=["2207:drop_reply:1"]) as sim, httpx.AsyncClient() as c:
        mdtrt_id, env = await outpatient_until_2207(c, sim)
        with pytest.raises(httpx.TransportError):
            await c.post(sim.url + sim.settings.call_path, content=body(env), timeout=5)
        visit = (await c.get(f"{sim.admin_url}/admin/visits/{mdtrt_id}")).json()
        assert visit["details"]["F1"]["status"] == "settled"


async def test_reset_and_5xx_do_nothing(start) -> None:
    async with start(faults=["2207:reset:1"]) as sim, httpx.AsyncClient() as c:
        _, env = await outpatient_until_2207(c, sim)
        with pytest.raises(httpx.TransportError):
            await c.post(sim.url + sim.settings.call_path, content=body(env), timeout=5)
        assert (await c.get(sim.admin_url + "/admin/settlements")).json() == []
        put = await c.put(sim.admin_url + "/admin/faults", json={"rules": ["2207:http_5xx:1:502"]})
        assert put.json()["rules"] == ["2207:http_5xx:1.0:502"]
        env["msgid"] = env["msgid"][:-4] + "9999"
        assert (await c.post(sim.url + sim.settings.call_path, content=body(env))).status_code == 502
        assert (await c.get(sim.admin_url + "/admin/settlements")).json() == []


async def test_business_error_fault_answers_infcode_minus_one(start) -> None:
    async with start(faults=["1101:business_error:1"]) as sim, httpx.AsyncClient() as c:
        sign_no = await sign_in(c, sim)
        env = envelope("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x"}}, sign_no=sign_no)
        answer = loads(await c.post(sim.url + sim.settings.call_path, content=body(env)))
        assert answer["infcode"] == -1 and "simulated" in answer["err_msg"]


async def test_admin_reset_empties_the_ledger(start) -> None:
    async with start() as sim, httpx.AsyncClient() as c:
        await outpatient_until_2207(c, sim)
        assert (await c.get(sim.admin_url + "/admin/visits")).json()
        await c.post(sim.admin_url + "/admin/reset")
        assert (await c.get(sim.admin_url + "/admin/visits")).json() == []


async def test_admin_clock_dates_settlements(start) -> None:
    async with start() as sim, httpx.AsyncClient() as c:
        await c.put(sim.admin_url + "/admin/clock", json={"now": "2024-03-01 10:00:00", "frozen": True})
        _, env = await outpatient_until_2207(c, sim)
        answer = loads(await c.post(sim.url + sim.settings.call_path, content=body(env)))
        assert answer["output"]["setlinfo"]["setl_time"] == "2024-03-01 10:00:00"
        assert isinstance(answer["output"]["setlinfo"]["medfee_sumamt"], Decimal)
