"""The HTTP API (framework-free layer), the command topic's messages, the daily schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from unit.reconciliation.recon_fakes import TODAY, entry
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.reconciliation.api import ReconApi
from yibao.reconciliation.commands import handle_command, parse_command
from yibao.reconciliation.models import ReconCommand, RunRequest
from yibao.reconciliation.runs import get_run, run_id_for_command
from yibao.reconciliation.schedule import next_fire, scheduled_day, scheduled_run_id


def body(**kw) -> bytes:
    return json.dumps(kw).encode()


async def test_posting_a_run_answers_its_id_and_runs_it(reconciler) -> None:
    api = ReconApi(reconciler)
    reply = await api.create_run(body(date=TODAY.isoformat(), by="finance-li"))
    assert reply.status == 202 and reply.body["state"] == "running"
    await reconciler.wait_idle()
    status = await api.get_run(reply.body["run_id"])
    assert status.status == 200 and status.body["state"] == "balanced"
    assert status.body["requested_by"] == "finance-li" and status.body["trigger"] == "http"


@pytest.mark.parametrize("payload, message", [
    (b"[1]", "JSON object"), (body(), "date"), (body(date="2026-13-01"), "not a date"),
    (body(date="2026-01-02", to="2026-01-01"), "before"), (body(date="2026-01-01", to="2026-03-01"), "at most"),
])
async def test_a_bad_run_request_is_400_with_the_reason(reconciler, payload, message) -> None:
    reply = await ReconApi(reconciler).create_run(payload)
    assert reply.status == 400 and message in reply.body["message"]


async def test_an_overlapping_run_request_is_409_and_refused(reconciler) -> None:
    await reconciler.submit(RunRequest.for_day(TODAY))
    reply = await ReconApi(reconciler).create_run(body(date=TODAY.isoformat()))
    assert reply.status == 409 and reply.body["state"] == "refused"


async def test_an_unknown_run_is_404(reconciler) -> None:
    api = ReconApi(reconciler)
    assert (await api.get_run("R-none")).status == 404
    assert (await api.decide("R-none", body(by="li", reason="x"), approve=True)).status == 404
    assert (await api.report("R-none", "xlsx")).status == 404


async def test_approval_over_http_records_who_and_why(reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    api = ReconApi(reconciler)
    assert (await api.decide(run.run_id, body(by="li"), approve=True)).status == 409  # no reason
    reply = await api.decide(run.run_id, body(by="li", reason="checked"), approve=True)
    assert reply.status == 200 and reply.body["state"] == "repaired_and_balanced"
    diff = (await api.get_run(run.run_id)).body["differences"][0]
    assert (diff["approved_by"], diff["approval_reason"], diff["status"]) == ("li", "checked", "repaired")


async def test_reports_are_served_in_three_formats(reconciler) -> None:
    run = await reconciler.run(RunRequest.for_day(TODAY))
    api = ReconApi(reconciler)
    xlsx = await api.report(run.run_id, "xlsx")
    assert xlsx.status == 200 and xlsx.body[:2] == b"PK" and "spreadsheet" in xlsx.content_type
    assert (await api.report(run.run_id, "html")).body.startswith(b"<!DOCTYPE html>")
    assert json.loads((await api.report(run.run_id, "json")).body)["run"]["run_id"] == run.run_id
    assert (await api.report(run.run_id, "pdf")).status == 400
    assert (await api.report("../etc", "json")).status == 404


# --- commands ----------------------------------------------------------------------------------------------


def test_a_command_that_is_not_one_is_bad_input() -> None:
    for raw in (None, b"nope", b'{"command_id": "c1", "kind": "explode"}', b'{"command_id": "c1", "kind": "run"}',
                b'{"command_id": "c1", "kind": "approve", "run_id": "R1"}'):
        with pytest.raises(InputError):
            parse_command(raw)


async def test_a_run_command_names_a_run_derived_from_its_id(reconciler, engine) -> None:
    command = ReconCommand(command_id="cmd-1", kind="run", date_from=TODAY, by="scheduler")
    assert await handle_command(reconciler, command) == "processed"
    assert await handle_command(reconciler, command) == "processed"  # redelivered: the same run
    await reconciler.wait_idle()
    with engine.connect() as conn:
        run = get_run(conn, run_id_for_command("cmd-1"))
    assert run is not None and run.trigger == "command" and run.state == "balanced"


async def test_an_approve_command_applies_and_a_repeat_is_a_duplicate(reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    command = ReconCommand(command_id="a-1", kind="approve", run_id=run.run_id, by="li", reason="ok")
    assert await handle_command(reconciler, command) == "processed"
    assert await handle_command(reconciler, command) == "duplicate"


async def test_an_approve_command_waits_for_a_running_run(reconciler, book) -> None:
    book(entry("HO", "40.00"))
    submitted = await reconciler.submit(RunRequest.for_day(TODAY))
    command = ReconCommand(command_id="a-2", kind="approve", run_id=submitted.run_id, by="li", reason="ok")
    import asyncio

    waiting = asyncio.create_task(handle_command(reconciler, command, poll_s=0.05))
    await asyncio.sleep(0.1)
    await reconciler.execute(submitted.run_id)
    assert await waiting == "processed"


async def test_a_command_for_an_unknown_run_is_bad_input(reconciler) -> None:
    with pytest.raises(InputError):
        await handle_command(reconciler, ReconCommand(command_id="x", kind="reject", run_id="R-no", by="li"))


# --- schedule ----------------------------------------------------------------------------------------------


def test_the_daily_run_fires_at_the_configured_shanghai_time() -> None:
    morning = dt.datetime(2026, 5, 1, 1, 0, tzinfo=clock.SHANGHAI)
    assert next_fire(morning, dt.time(2, 30)) == dt.datetime(2026, 5, 1, 2, 30, tzinfo=clock.SHANGHAI)
    later = dt.datetime(2026, 5, 1, 2, 30, tzinfo=clock.SHANGHAI)
    assert next_fire(later, dt.time(2, 30)) == dt.datetime(2026, 5, 2, 2, 30, tzinfo=clock.SHANGHAI)


def test_the_schedule_reads_utc_times_as_shanghai() -> None:
    utc = dt.datetime(2026, 4, 30, 18, 0, tzinfo=dt.timezone.utc)  # 02:00 on 1 May in Shanghai
    assert next_fire(utc, dt.time(2, 30)).date() == dt.date(2026, 5, 1)


def test_the_daily_run_reconciles_the_previous_day_once() -> None:
    fired = dt.datetime(2026, 5, 1, 2, 30, tzinfo=clock.SHANGHAI)
    assert scheduled_day(fired) == dt.date(2026, 4, 30)
    assert scheduled_run_id(dt.date(2026, 4, 30)) == scheduled_run_id(dt.date(2026, 4, 30))
    assert scheduled_run_id(dt.date(2026, 4, 30)) != scheduled_run_id(dt.date(2026, 5, 1))
