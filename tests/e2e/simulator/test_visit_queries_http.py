"""5201 / 5303 over HTTP, the way a chain uses them: a 2201 or 2401 whose answer is lost (the platform did the work
and dropped the reply) is found by the hospital's own number, and sending it again is refused — never a second
visit. Inputs go through the catalog's validation, answers are read with the typed models."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from yibao.envelope.catalog import Catalog
from yibao.envelope.catalog.typed import output_model

from .conftest import body, envelope, loads, sign_in

Send = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]
WINDOW = {"begntime": "2024-05-01 00:00:00", "endtime": "2024-05-01 23:59:59"}


async def a_person(c: httpx.AsyncClient, sim) -> dict[str, Any]:
    r = await c.get(sim.admin_url + "/admin/persons?limit=50")
    return next(p for p in r.json() if p["insutype"] == "310")


def sender(c: httpx.AsyncClient, sim, sign_no: str, insuplc: str) -> Send:
    async def send(infno: str, payload: dict[str, Any]) -> httpx.Response:
        env = envelope(infno, payload, sign_no=sign_no, insuplc=insuplc)
        return await c.post(sim.url + sim.settings.call_path, content=body(env), timeout=5)
    return send


async def lose_the_answer(c: httpx.AsyncClient, sim, send: Send, infno: str, payload: dict[str, Any]) -> None:
    """Send once with the reply dropped (the platform commits, the hospital sees a broken connection)."""
    await c.put(sim.admin_url + "/admin/faults", json={"rules": [f"{infno}:drop_reply:1"]})
    with pytest.raises(httpx.TransportError):
        await send(infno, payload)
    await c.put(sim.admin_url + "/admin/faults", json={"rules": []})


async def test_a_lost_2201_is_found_by_5201_and_never_registered_twice(start) -> None:
    catalog = Catalog.load()
    async with start(validate_with_catalog=True) as sim, httpx.AsyncClient() as c:
        p = await a_person(c, sim)
        send = sender(c, sim, await sign_in(c, sim), p["insuplc_admdvs"])
        ipt_otp_no = "MZ" + secrets.token_hex(4)
        registration = {"data": {
            "psn_no": p["psn_no"], "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": p["certno"], "ipt_otp_no": ipt_otp_no, "atddr_no": "D1", "dr_name": "医生",
            "dept_code": "K1", "dept_name": "内科", "caty": "A03"}}
        await lose_the_answer(c, sim, send, "2201", registration)

        answer = loads(await send("5201", {"data": {"psn_no": p["psn_no"], **WINDOW}}))
        assert answer["infcode"] == 0, answer["err_msg"]
        assert catalog.validate_output("5201", answer["output"]) == []
        out = output_model(catalog, "5201").model_validate(answer["output"])
        found = [v for v in out.mdtrtinfo if v.ipt_otp_no == ipt_otp_no]  # type: ignore[attr-defined]
        assert len(found) == 1 and found[0].vali_flag != "0" and found[0].med_type == "12"

        again = loads(await send("2201", registration))
        assert again["infcode"] == -1 and "门诊号重复" in again["err_msg"]
        visits = (await c.get(sim.admin_url + "/admin/visits")).json()
        assert [v["mdtrt_id"] for v in visits if v["ipt_otp_no"] == ipt_otp_no] == [found[0].mdtrt_id]


async def test_a_lost_2401_is_found_by_5303_and_never_admitted_twice(start) -> None:
    catalog = Catalog.load()
    async with start(validate_with_catalog=True) as sim, httpx.AsyncClient() as c:
        p = await a_person(c, sim)
        send = sender(c, sim, await sign_in(c, sim), p["insuplc_admdvs"])
        ipt_no = "ZY" + secrets.token_hex(4)
        admission = {
            "mdtrtinfo": {
                "psn_no": p["psn_no"], "insutype": "310", "begntime": "2024-05-01 09:00:00", "mdtrt_cert_type": "02",
                "mdtrt_cert_no": p["certno"], "med_type": "21", "ipt_no": ipt_no, "atddr_no": "D1",
                "chfpdr_name": "主任", "adm_diag_dscr": "腹痛", "adm_dept_codg": "K2", "adm_dept_name": "外科",
                "adm_bed": "12", "dscg_maindiag_code": "K35.800", "dscg_maindiag_name": "急性阑尾炎"},
            "diseinfo": [{"psn_no": p["psn_no"], "diag_type": "1", "maindiag_flag": "1", "diag_srt_no": 1,
                          "diag_code": "K35.800", "diag_name": "急性阑尾炎", "diag_dept": "外科", "dise_dor_no": "D1",
                          "dise_dor_name": "主任", "diag_time": "2024-05-01 09:00:00"}],
        }
        await lose_the_answer(c, sim, send, "2401", admission)

        answer = loads(await send("5303", {"data": {"psn_no": p["psn_no"], **WINDOW}}))
        assert answer["infcode"] == 0, answer["err_msg"]
        assert catalog.validate_output("5303", answer["output"]) == []
        (held,) = output_model(catalog, "5303").model_validate(answer["output"]).data  # type: ignore[attr-defined]
        assert held.ipt_otp_no == ipt_no and held.endtime is None

        by_5201 = loads(await send("5201", {"data": {"psn_no": p["psn_no"], "med_type": "21", **WINDOW}}))
        assert [v["mdtrt_id"] for v in by_5201["output"]["mdtrtinfo"]] == [held.mdtrt_id]

        again = loads(await send("2401", admission))
        assert again["infcode"] == -1 and "已在院" in again["err_msg"]
        visits = (await c.get(sim.admin_url + "/admin/visits")).json()
        assert [v["mdtrt_id"] for v in visits if v["kind"] == "inpatient"] == [held.mdtrt_id]
