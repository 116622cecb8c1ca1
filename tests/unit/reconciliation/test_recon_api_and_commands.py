"""The HTTP API (framework-free layer) with its authentication, the signed commands of the command topic, the
daily schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from support.finance_auth import KEYS, token, write_command_keys, write_static_tokens
from unit.reconciliation.recon_fakes import TODAY, entry
from yibao.core import clock
from yibao.core.errors import InputError
from yibao.reconciliation.api import HttpRequest, ReconApi
from yibao.reconciliation.audit import recent
from yibao.reconciliation.auth import Authenticator, StaticTokens
from yibao.reconciliation.commands import handle_command, handle_signed_command, parse_command
from yibao.reconciliation.signing import CommandKeys, signed_command
from yibao.reconciliation.models import ReconCommand, RunRequest
from yibao.reconciliation.runs import get_run, run_id_for_command
from yibao.reconciliation.schedule import next_fire, scheduled_day, scheduled_run_id


def body(**kw) -> bytes:
    return json.dumps(kw).encode()


@pytest.fixture
def api(reconciler, tmp_path) -> ReconApi:
    return ReconApi(reconciler, Authenticator(static=StaticTokens(write_static_tokens(tmp_path))))


def req(method: str, path: str, user: str | None = None, payload: bytes = b"", **headers: str) -> HttpRequest:
    hdrs = {k.lower().replace("_", "-"): v for k, v in headers.items()}
    if user is not None:
        hdrs["authorization"] = f"Bearer {token(user)}"
    return HttpRequest(method, path, hdrs, "127.0.0.1", payload)


def audit_rows(engine) -> list:
    with engine.connect() as conn:
        return list(reversed(recent(conn)))


async def test_posting_a_run_answers_its_id_and_runs_it_as_the_caller(api, reconciler) -> None:
    reply = await api.create_run(req("POST", "/recon/runs", "li.clerk", body(date=TODAY.isoformat())))
    assert reply.status == 202 and reply.body["state"] == "running"
    await reconciler.wait_idle()
    status = await api.get_run(req("GET", "/", "li.clerk"), reply.body["run_id"])
    assert status.status == 200 and status.body["state"] == "balanced"
    assert status.body["requested_by"] == "li.clerk" and status.body["trigger"] == "http"


async def test_an_anonymous_request_is_401_with_a_bearer_challenge(api) -> None:
    reply = await api.list_runs(req("GET", "/recon/runs"))
    assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_wrong_token_is_401_and_audited_as_a_failed_login(api, engine) -> None:
    reply = await api.list_runs(req("GET", "/recon/runs", authorization="Bearer not-a-known-token-at-all"))
    assert reply.status == 401 and 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    [row] = audit_rows(engine)
    assert (row.action, row.outcome, row.actor, row.status) == ("login_failed", "denied", "-", 401)
    assert "not-a-known" not in (row.detail or "")


async def test_a_clerk_cannot_approve_403_audited(api, reconciler, book, engine) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="li.clerk"))
    reply = await api.decide(req("POST", "/", "li.clerk", body(reason="x")), run.run_id, approve=True)
    assert reply.status == 403 and "approver role" in reply.body["message"]
    assert audit_rows(engine)[-1].outcome == "denied"


async def test_ops_cannot_trigger_nor_download_reports(api, reconciler) -> None:
    run = await reconciler.run(RunRequest.for_day(TODAY))
    assert (await api.create_run(req("POST", "/", "sun.ops", body(date=TODAY.isoformat())))).status == 403
    assert (await api.report(req("GET", "/", "sun.ops"), run.run_id, "xlsx")).status == 403
    assert (await api.get_run(req("GET", "/", "sun.ops"), run.run_id)).status == 200


async def test_ops_see_psn_no_masked(api, reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    seen_by_ops = (await api.get_run(req("GET", "/", "sun.ops"), run.run_id)).body["differences"][0]
    seen_by_clerk = (await api.get_run(req("GET", "/", "li.clerk"), run.run_id)).body["differences"][0]
    assert seen_by_clerk["psn_no"] == "P-HO" and seen_by_ops["psn_no"] != "P-HO" and "*" in seen_by_ops["psn_no"]


@pytest.mark.parametrize("payload, message", [
    (b"[1]", "JSON object"), (body(), "date"), (body(date="2026-13-01"), "date"),
    (body(date="2026-01-02", to="2026-01-01"), "before"), (body(date="2026-01-01", to="2026-03-01"), "at most"),
    (body(date=20260101), "text"), (b"1e999999999", "JSON object"), (b'{"date": 1e999999999}', "text"),
    (b"[" * 30000 + b"]" * 30000, "deeply"), (b'{"date": NaN}', "not JSON"), (b"\xff\xfe", "UTF-8"),
    (body(date="2026-01-01", by="someone.else"), "token"), (body(date="2026-01-01", extra=1), "extra"),
    (body(date="2026-01-01", insutype={"a": [1]}), "insutype"), (b'{"date": "2026-01-01", "to": 1' + b"0" * 50 + b"}",
                                                               "not JSON"),
])
async def test_a_bad_run_request_is_4xx_with_the_reason_never_500(api, payload, message) -> None:
    reply = await api.create_run(req("POST", "/recon/runs", "li.clerk", payload))
    assert 400 <= reply.status < 500 and message in reply.body["message"], reply.body


async def test_a_body_over_the_limit_is_413(api) -> None:
    reply = await api.create_run(req("POST", "/recon/runs", "li.clerk", b'{"date": "' + b"x" * 70000 + b'"}'))
    assert reply.status == 413


@pytest.mark.parametrize("payload, message", [
    (body(), "reason"), (body(reason=""), "reason"), (body(reason=["x"]), "text"), (body(reason="ok", ids="1"), "ids"),
    (body(reason="ok", ids=[1.5]), "ids"), (body(reason="ok", ids=[True]), "ids"), (body(reason="ok", by="wang"), "token"),
    (b"{" * 5000, "not JSON"),
])
async def test_a_bad_decision_is_400(api, reconciler, book, payload, message) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="li.clerk"))
    reply = await api.decide(req("POST", "/", "wang.approver", payload), run.run_id, approve=True)
    assert reply.status == 400 and message in reply.body["message"], reply.body


async def test_an_overlapping_run_request_is_409_and_refused(api, reconciler) -> None:
    await reconciler.submit(RunRequest.for_day(TODAY))
    reply = await api.create_run(req("POST", "/", "li.clerk", body(date=TODAY.isoformat())))
    assert reply.status == 409 and reply.body["state"] == "refused"


async def test_an_unknown_run_is_404(api) -> None:
    assert (await api.get_run(req("GET", "/", "li.clerk"), "R-none")).status == 404
    assert (await api.decide(req("POST", "/", "wang.approver", body(reason="x")), "R-none", approve=True)).status == 404
    assert (await api.report(req("GET", "/", "li.clerk"), "R-none", "xlsx")).status == 404


async def test_approval_records_the_token_s_user_and_why(api, reconciler, book, engine) -> None:
    book(entry("HO", "40.00"))
    created = await api.create_run(req("POST", "/", "li.clerk", body(date=TODAY.isoformat())))
    await reconciler.wait_idle()
    run_id = created.body["run_id"]
    reply = await api.decide(req("POST", "/", "wang.approver", body(reason="checked")), run_id, approve=True)
    assert reply.status == 200 and reply.body["state"] == "repaired_and_balanced"
    diff = (await api.get_run(req("GET", "/", "wang.approver"), run_id)).body["differences"][0]
    assert (diff["approved_by"], diff["approval_reason"], diff["status"]) == ("wang.approver", "checked", "repaired")
    rows = [(r.actor, r.role, r.action, r.outcome, r.run_id) for r in audit_rows(engine)]
    assert ("li.clerk", "clerk", "trigger", "ok", run_id) in rows
    assert ("wang.approver", "approver", "approve", "ok", run_id) in rows


async def test_self_approval_is_403_four_eyes_and_audited(api, reconciler, book, engine) -> None:
    book(entry("HO", "40.00"))
    created = await api.create_run(req("POST", "/", "zhao.both", body(date=TODAY.isoformat())))
    await reconciler.wait_idle()
    run_id = created.body["run_id"]
    for approve in (True, False):
        reply = await api.decide(req("POST", "/", "zhao.both", body(reason="mine")), run_id, approve=approve)
        assert reply.status == 403 and reply.body["error"] == "four_eyes" and "another approver" in reply.body["message"]
    assert [r.outcome for r in audit_rows(engine) if r.action in ("approve", "reject")] == ["refused", "refused"]
    status = (await api.get_run(req("GET", "/", "zhao.both"), run_id)).body
    assert status["differences"][0]["status"] == "pending_approval"


async def test_reports_are_served_in_three_formats_and_each_download_audited(api, reconciler, engine) -> None:
    run = await reconciler.run(RunRequest.for_day(TODAY))
    who = req("GET", "/", "li.clerk")
    xlsx = await api.report(who, run.run_id, "xlsx")
    assert xlsx.status == 200 and xlsx.body[:2] == b"PK" and "spreadsheet" in xlsx.content_type
    html = await api.report(who, run.run_id, "html")
    assert html.body.startswith(b"<!DOCTYPE html>") and "sandbox" in html.headers["Content-Security-Policy"]
    assert json.loads((await api.report(who, run.run_id, "json")).body)["run"]["run_id"] == run.run_id
    assert (await api.report(who, run.run_id, "pdf")).status == 400
    assert (await api.report(who, "../etc", "json")).status == 404
    assert sum(r.action == "report" and r.outcome == "ok" for r in audit_rows(engine)) == 3


async def test_the_audit_log_is_for_approvers_and_ops(api) -> None:
    assert (await api.audit_log(req("GET", "/", "sun.ops"))).status == 200
    assert (await api.audit_log(req("GET", "/", "li.clerk"))).status == 403


async def test_whoami_names_the_caller(api) -> None:
    reply = await api.whoami(req("GET", "/", "zhao.both"))
    assert reply.body == {"user": "zhao.both", "roles": ["approver", "clerk"], "method": "static"}


# --- commands ----------------------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path) -> CommandKeys:
    return CommandKeys(write_command_keys(tmp_path))


def signed_by(user: str, command: ReconCommand, **kw) -> bytes:
    key_id, secret = KEYS[user]
    return signed_command(command.model_copy(update={"by": user}), key_id=key_id, secret=secret, **kw)


def test_a_command_that_is_not_one_is_bad_input() -> None:
    for raw in (None, b"nope", b'{"command_id": "c1", "kind": "explode"}', b'{"command_id": "c1", "kind": "run"}',
                b'{"command_id": "c1", "kind": "approve", "run_id": "R1"}'):
        with pytest.raises(InputError):
            parse_command(raw)


async def test_a_signed_run_command_names_a_run_derived_from_its_id(reconciler, engine, keys) -> None:
    value = signed_by("li.clerk", ReconCommand(command_id="cmd-1", kind="run", date_from=TODAY))
    assert await handle_signed_command(reconciler, keys, value, source="t/0/1") == "processed"
    assert await handle_signed_command(reconciler, keys, value, source="t/0/1") == "duplicate"  # redelivered
    await reconciler.wait_idle()
    with engine.connect() as conn:
        run = get_run(conn, run_id_for_command("cmd-1"))
    assert run is not None and run.trigger == "command" and run.state == "balanced"
    assert run.requested_by == "li.clerk"


async def test_a_signed_approve_command_applies_once(reconciler, book, keys, engine) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="li.clerk"))
    value = signed_by("wang.approver", ReconCommand(command_id="a-1", kind="approve", run_id=run.run_id, reason="ok", by="-"))
    assert await handle_signed_command(reconciler, keys, value, source="t/0/2") == "processed"
    assert await handle_signed_command(reconciler, keys, value, source="t/0/2") == "duplicate"
    with engine.connect() as conn:
        [row] = [r for r in recent(conn) if r.action == "approve"]
    assert (row.actor, row.role, row.method, row.source) == ("wang.approver", "approver", "command", "t/0/2")


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


async def test_a_self_approval_by_command_is_parked_with_the_four_eyes_reason(reconciler, book, keys) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="zhao.both"))
    value = signed_by("zhao.both", ReconCommand(command_id="a-3", kind="approve", run_id=run.run_id, reason="ok", by="-"))
    with pytest.raises(InputError, match="four eyes"):
        await handle_signed_command(reconciler, keys, value, source="t/0/3")


def _forge(value: bytes, **changes) -> bytes:
    obj = json.loads(value)
    obj.update(changes)
    return json.dumps(obj).encode()


@pytest.mark.parametrize("mutate, message", [
    (lambda v: _forge(v, signature=None, key_id=None), "unsigned"),
    (lambda v: _forge(v, kind="approve", run_id="R1"), "does not verify"),
    (lambda v: _forge(v, date_from="2020-01-01"), "does not verify"),
    (lambda v: _forge(v, key_id="nobody-key"), "unknown signing key"),
    (lambda v: _forge(v, signature="0" * 64), "does not verify"),
    (lambda v: _forge(v, signature="zz"), "hex"),
    (lambda v: b"{" * 3000, "JSON"),
    (lambda v: b"1e999999999", "JSON object"),
])
async def test_an_unsigned_or_forged_command_never_acts(reconciler, keys, engine, mutate, message) -> None:
    value = mutate(signed_by("li.clerk", ReconCommand(command_id="f-1", kind="run", date_from=TODAY)))
    with pytest.raises(InputError, match=message):
        await handle_signed_command(reconciler, keys, value, source="t/0/9")
    with engine.connect() as conn:
        assert get_run(conn, run_id_for_command("f-1")) is None
        assert recent(conn)[0].outcome == "refused"


async def test_a_command_claiming_another_issuer_is_refused(reconciler, keys) -> None:
    key_id, secret = KEYS["li.clerk"]
    value = signed_command(ReconCommand(command_id="f-2", kind="run", date_from=TODAY, by="wang.approver"),
                           key_id=key_id, secret=secret, role="clerk")
    with pytest.raises(InputError, match="belongs to li.clerk"):
        await handle_signed_command(reconciler, keys, value, source="t")


async def test_a_command_in_a_role_the_key_lacks_is_refused(reconciler, keys, book) -> None:
    value = signed_by("li.clerk", ReconCommand(command_id="f-3", kind="approve", run_id="R1", reason="x", by="-"))
    with pytest.raises(InputError, match="does not hold the role 'approver'"):
        await handle_signed_command(reconciler, keys, value, source="t")


async def test_a_stale_command_is_refused(reconciler, keys) -> None:
    old = ReconCommand(command_id="f-4", kind="run", date_from=TODAY, issued_at=clock.now() - dt.timedelta(hours=1))
    with pytest.raises(InputError, match="older than"):
        await handle_signed_command(reconciler, keys, signed_by("li.clerk", old), source="t")


async def test_a_nonce_reused_by_another_command_is_a_replay(reconciler, keys) -> None:
    first = signed_by("li.clerk", ReconCommand(command_id="n-1", kind="run", date_from=TODAY, nonce="N" * 20))
    second = signed_by("li.clerk", ReconCommand(command_id="n-2", kind="run", date_from=TODAY, nonce="N" * 20))
    assert await handle_signed_command(reconciler, keys, first, source="t") == "processed"
    with pytest.raises(InputError, match="replay"):
        await handle_signed_command(reconciler, keys, second, source="t")
    await reconciler.wait_idle()


async def test_without_keys_every_command_is_refused(reconciler) -> None:
    value = signed_by("li.clerk", ReconCommand(command_id="k-1", kind="run", date_from=TODAY))
    with pytest.raises(InputError, match="no command keys"):
        await handle_signed_command(reconciler, None, value, source="t")


def test_the_signature_covers_the_canonical_json_any_language_can_rebuild() -> None:
    value = signed_by("li.clerk", ReconCommand(command_id="c-9", kind="run", date_from=TODAY))
    obj = json.loads(value)
    unsigned = {k: v for k, v in obj.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    import hashlib
    import hmac

    assert hmac.new(KEYS["li.clerk"][1].encode(), canonical, hashlib.sha256).hexdigest() == obj["signature"]
    assert obj["role"] == "clerk" and obj["by"] == "li.clerk" and obj["sig_alg"] == "HMAC-SHA256"


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
