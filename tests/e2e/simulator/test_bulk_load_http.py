"""The admin bulk load over HTTP (a body far larger than the admin API's ordinary request limit), and the
counter of the platform's own handling time that a benchmark subtracts from a round trip."""

from __future__ import annotations

import httpx
import pytest

from .conftest import body, envelope, loads, sign_in

pytestmark = pytest.mark.e2e

HEADER = "setl_id\tmdtrt_id\tpsn_no\tsetl_time\tinsutype\tclr_type\tclr_optins\trefd_setl_flag\tmedfee_sumamt\t" \
         "fund_pay_sumamt\tacct_pay"


def bulk(n: int) -> bytes:
    rows = (f"S{i:09d}\tM{i:09d}\tP{i:09d}\t2024-05-01 10:00:00\t310\t11\t440100\t0\t10.00\t5.00\t1.00"
            for i in range(n))
    return ("\n".join([HEADER, *rows]) + "\n").encode()


async def test_a_large_day_is_loaded_in_one_request_and_3201_sees_it(sim) -> None:
    async with httpx.AsyncClient(timeout=60) as c:
        content = bulk(30_000)
        assert len(content) > 2 * 1024 * 1024
        reply = await c.post(sim.admin_url + "/admin/settlements/bulk", content=content)
        assert reply.status_code == 200 and reply.json() == {"loaded": 30_000, "settlements": 30_000}
        sign_no = await sign_in(c, sim)
        out = loads(await c.post(sim.url + sim.settings.call_path, content=body(envelope("3201", {"data": {
            "insutype": "310", "clr_type": "11", "setl_optins": "440100", "stmt_begndate": "2024-05-01",
            "stmt_enddate": "2024-05-01", "refd_setl_flag": "", "medfee_sumamt": "300000.00",
            "fund_pay_sumamt": "150000.00", "acct_pay": "30000.00", "fixmedins_setl_cnt": 30000}},
            sign_no=sign_no))))
        assert out["infcode"] == 0 and out["output"]["stmtinfo"]["stmt_rslt"] == "0"
        seconds = (await c.get(sim.admin_url + "/admin/counters")).json()["handler_seconds"]
        assert set(seconds) == {"9001", "3201"} and all(v > 0 for v in seconds.values())


async def test_a_malformed_bulk_body_is_refused_with_its_line(sim) -> None:
    async with httpx.AsyncClient() as c:
        reply = await c.post(sim.admin_url + "/admin/settlements/bulk",
                             content=HEADER.encode() + b"\nS1\tM1\tP1\tsoon\t310\t11\t440100\t0\t1\t1\t0\n")
        assert reply.status_code == 400 and reply.json() == {"error": "line 2: setl_time is not a date-time"}
        assert (await c.get(sim.admin_url + "/admin/settlements")).json() == []
