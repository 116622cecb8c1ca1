"""What HIS and ops read: records by status, kind, key or visit (paged), one record, the lanes, the day's summary as
JSON and as an Excel workbook, the catalogs — never a record's content, a 400 naming the problem for a malformed
query, a 503 (never a 500) when the database cannot be reached."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from yibao.upload_scheduler import http

from unit.upload_scheduler.harness import Harness, sample

pytestmark = pytest.mark.asyncio


async def _loaded(h: Harness, sim: Any) -> Any:
    week = sample(sim, bad_day=0)
    for it in week.items:
        if it.kind in ("3401", "3503", "4402"):
            h.item(it)
    await h.run()
    return week


async def test_records_are_listed_by_status_and_paged_without_their_content(h: Harness, sim: Any) -> None:
    week = await _loaded(h, sim)
    with h.db.connect() as conn:
        status, body = http.records_response(conn, {"status": "rejected"})
        assert status == 200 and {r["kind"] for r in body["records"]} == {"3503", "4402"}
        assert all("payload" not in r and r["reason"] for r in body["records"])
        certno = next(i.record for i in week.items if i.kind == "3401")
        assert str(certno) not in str(body)
        status, page1 = http.records_response(conn, {"kind": "4402", "limit": "2"})
        assert status == 200 and len(page1["records"]) == 2 and page1["next"]
        status, page2 = http.records_response(conn, {"kind": "4402", "limit": "2", "after": page1["next"]})
        assert {r["key"] for r in page2["records"]}.isdisjoint({r["key"] for r in page1["records"]})
        one = page1["records"][0]
        assert http.record_response(conn, "4402", one["key"]) == (200, one)
        assert http.record_response(conn, "4402", "nothing")[0] == 404
        lanes = http.lanes_response(conn)[1]["lanes"]
        assert {"target": "national", "kind": "3401", "status": "parked", "records": 1} in lanes


@pytest.mark.parametrize(("params", "problem"), [({"status": "lost"}, "status"), ({"limit": "0"}, "limit"),
                                                 ({"after": "no-separator"}, "after"), ({"colour": "red"}, "colour")])
async def test_a_malformed_query_is_a_400_naming_the_parameter(h: Harness, params: dict[str, str],
                                                               problem: str) -> None:
    with h.db.connect() as conn:
        status, body = http.records_response(conn, params)
    assert status == 400 and problem in body["error"]


async def test_the_days_summary_as_json_and_as_a_workbook(h: Harness, sim: Any) -> None:
    await _loaded(h, sim)
    with h.db.connect() as conn:
        days = sorted({r["due_at"][:10] for r in http.records_response(conn, {"limit": "1000"})[1]["records"]})
        status, body = http.summary_response(conn, {"date": days[0]})
        assert status == 200 and body["total"]["due"] > 0 and body["total"]["rejected"] >= 1
        assert {p["status"] for p in body["problems"]} >= {"rejected"}
        status, data = http.summary_xlsx(conn, {"date": days[0]})
        assert status == 200 and isinstance(data, bytes)
        assert http.summary_response(conn, {"date": "yesterday"}) == (400, {"error": "date: YYYY-MM-DD"})
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["summary", "problems"]
    summary = list(wb["summary"].values)
    assert summary[1][:3] == ("target", "kind", "due") and summary[-1][0] == "total"
    problems = list(wb["problems"].values)
    assert problems[0][:3] == ("target", "kind", "key") and len(problems) > 1


async def test_catalog_endpoints(h: Harness) -> None:
    with h.db.connect() as conn:
        assert http.catalog_state_response(conn) == (200, {"catalogs": []})
        assert http.catalog_versions_response(conn, "1301", {})[0] == 200
        assert http.catalog_versions_response(conn, "13;01", {})[0] == 400
        assert http.catalog_versions_response(conn, "1301", {"limit": "x"})[0] == 400
        assert http.catalog_item_response(conn, "1301", "XA1")[0] == 404


async def test_a_database_that_does_not_answer_is_a_503() -> None:
    async def down(fn: Any) -> Any:
        raise ConnectionError("no route to host")

    status, body = await http.answer(down, lambda c: (200, {}))
    assert status == 503 and "database" in body["error"]


async def test_every_endpoint_is_routed() -> None:
    paths = [p for p, _ in http.routes()]
    assert paths == ["/uploads/records", "/uploads/records/{kind}/{key}", "/uploads/lanes", "/uploads/summary",
                     "/uploads/summary.xlsx", "/catalog/state", "/catalog/{infno}/versions",
                     "/catalog/{infno}/items/{code}"]
