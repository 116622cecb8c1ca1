"""The realtime checks HIS asks over HTTP, as plain functions of the body: the platform's verdict, the field named for
a bad request, the time budget — and never a 500."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json

import pytest

from unit.workinjury_sync.harness import Harness
from yibao.fakedata.workinjury import card_no_of
from yibao.simulator.workinjury import card_mac_of, ecard_qr
from yibao.workinjury_sync.http import check_response


async def _ask(h: Harness, path: str, body: object, **kw: object) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await check_response(h.client, h.config, path, raw, timeout_s=kw.get("timeout_s", 2.0))  # type: ignore[arg-type]


async def test_a_filing_check_passes_for_a_valid_filing_and_fails_outside_it(h: Harness) -> None:
    p = h.month.patients[0]
    h.approved_filing(p)
    status, body = await _ask(h, "/workinjury/filing-check", {"certno": p.certno, "check_date": "2026-11-10"})
    assert (status, body["result"], body["infno"]) == (200, "passed", "GYD051")
    assert body["output"]["filing_no"] == f"BA{p.apply_no}"
    status, body = await _ask(h, "/workinjury/filing-check", {"certno": p.certno, "check_date": "2027-06-01"})
    assert (status, body["result"]) == (200, "failed") and body["output"]["msg"]


async def test_card_authentication_and_internal_authentication(h: Harness) -> None:
    p = h.month.patients[0]
    h.approved_filing(p)
    card = card_no_of(p.certno)
    status, body = await _ask(h, "/workinjury/card-auth", {"certno": p.certno, "card_no": card})
    assert (status, body["result"]) == (200, "passed")
    status, body = await _ask(h, "/workinjury/card-auth", {"certno": p.certno, "card_no": "K000000000"})
    assert (status, body["result"]) == (200, "failed")
    status, body = await _ask(h, "/workinjury/card-internal-auth", {
        "card_no": card, "card_random": "12345678", "card_mac": card_mac_of(card, "12345678")})
    assert (status, body["result"]) == (200, "passed")


async def test_an_electronic_card_code_is_parsed_by_the_platform(h: Harness) -> None:
    p = h.month.patients[0]
    qr = ecard_qr(p.certno, p.person.psn_no, p.person.psn_name, h.now() + _dt.timedelta(minutes=5))
    status, body = await _ask(h, "/workinjury/ecard-scan", {"qr_code": qr})
    assert status == 200 and body["output"]["psn_no"] == p.person.psn_no


async def test_a_person_without_a_filing_is_refused_in_the_platforms_words(h: Harness) -> None:
    status, body = await _ask(h, "/workinjury/card-auth", {"certno": "110101199001011234", "card_no": "K1"})
    assert status == 422 and "备案" in body["error"]


@pytest.mark.parametrize(("body", "field"), [
    ({"check_date": "2026-11-10"}, "certno"),
    ({"certno": "1", "check_date": "not a date"}, "check_date"),
    ({"certno": "1", "check_date": "2026-11-10", "scene": "9"}, "scene"),
    ({"certno": "1" * 51, "check_date": "2026-11-10"}, "certno"),
    ({"certno": "1", "check_date": "2026-11-10", "extra": 1}, "extra"),
])
async def test_a_bad_request_is_a_400_naming_the_field(h: Harness, body: dict, field: str) -> None:
    status, answer = await _ask(h, "/workinjury/filing-check", body)
    assert status == 400 and field in answer["error"]


@pytest.mark.parametrize("raw", [b"", b"[1,2]", b"{bad json", "{}".encode() * 40000])
async def test_a_body_that_is_not_a_json_object_is_refused_never_a_500(h: Harness, raw: bytes) -> None:
    status, answer = await _ask(h, "/workinjury/card-auth", raw)
    assert status in (400, 413) and answer["error"]


async def test_the_time_budget_answers_504_when_the_platform_is_slow(h: Harness) -> None:
    class Slow:
        async def call(self, *args: object, **kw: object) -> None:
            await asyncio.sleep(5)

    status, body = await check_response(Slow(), h.config, "/workinjury/ping", None, timeout_s=0.1)
    assert status == 504 and "0.1 s" in body["error"]


async def test_without_the_key_pair_the_checks_say_so_with_503(h: Harness, sqlite_engine) -> None:  # type: ignore[no-untyped-def]
    from yibao.envelope.workinjury import WorkInjuryClient, WorkInjuryPlatformSettings

    client = WorkInjuryClient(WorkInjuryPlatformSettings(), engine=sqlite_engine, catalog=h.config.catalog)
    status, body = await check_response(client, h.config, "/workinjury/ping", None, timeout_s=1.0)
    assert status == 503 and "PRIVATE_KEY" in body["error"]
    await client.aclose()


async def test_settlements_by_person_need_no_feedback(h: Harness) -> None:
    p = h.month.patients[0]
    filing_no = h.approved_filing(p)
    h.his(h.month.admitted(p, filing_no, h.now()))
    h.his(h.month.fee_lines(p, p.lines, h.now()))
    h.his(h.month.settled(p, h.now()))
    await h.drain()
    status, body = await _ask(h, "/workinjury/settlements", {"certno": p.certno})
    assert status == 200 and [r["setl_no"] for r in body["output"]["records"]] == [p.setl_no]
    assert not any(q.outstanding for q in h.sim.workinjury.queues.values())


async def test_an_unexpected_failure_of_the_platform_is_a_502_never_a_500(h: Harness) -> None:
    class Broken:
        async def call(self, *args: object, **kw: object) -> None:
            raise RuntimeError("something nobody expected")

    status, body = await check_response(Broken(), h.config, "/workinjury/ping", None, timeout_s=1.0)
    assert status == 502 and "RuntimeError" in body["error"]
