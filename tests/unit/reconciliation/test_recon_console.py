"""The console's pages as functions of a request: login with CSRF, sessions, roles, four eyes, masking."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from support.finance_auth import token, write_static_tokens
from unit.reconciliation.recon_fakes import TODAY, entry
from yibao.reconciliation.api import HttpRequest, ReconApi
from yibao.reconciliation.auth import Authenticator, StaticTokens
from yibao.reconciliation.console import LOGIN_COOKIE, SESSION_COOKIE, Console
from yibao.reconciliation.models import RunRequest

HOST = "127.0.0.1:6066"


@pytest.fixture
def console(reconciler, tmp_path) -> Console:
    return Console(ReconApi(reconciler, Authenticator(static=StaticTokens(write_static_tokens(tmp_path)))))


def _cookies(reply) -> dict[str, str]:
    return {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in reply.cookies}


def form(**fields) -> bytes:
    return urllib.parse.urlencode(fields, doseq=True).encode()


def post(path: str, body: bytes, cookies: dict[str, str], **headers: str) -> HttpRequest:
    return HttpRequest("POST", path, {"host": HOST, "origin": f"http://{HOST}", **headers}, "10.0.0.7", body, cookies)


def get(path: str, cookies: dict[str, str] | None = None, **query: str) -> HttpRequest:
    return HttpRequest("GET", path, {"host": HOST}, "10.0.0.7", b"", cookies or {}, query)


async def login(console: Console, user: str) -> dict[str, str]:
    page = await console.login_page(get("/console/login"))
    csrf = _cookies(page)[LOGIN_COOKIE]
    assert f'value="{csrf}"' in page.body.decode()
    reply = await console.login(post("/console/login", form(token=token(user), csrf=csrf), {LOGIN_COOKIE: csrf}))
    assert reply.status == 303, reply.body
    return {SESSION_COOKIE: _cookies(reply)[SESSION_COOKIE]}


def csrf_of(html: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', html).group(1).decode()


async def test_anonymous_visitors_are_sent_to_the_login_page(console) -> None:
    reply = await console.runs_page(get("/console"))
    assert reply.status == 303 and reply.headers["Location"] == "/console/login"


async def test_login_sets_an_httponly_samesite_strict_cookie(console) -> None:
    page = await console.login_page(get("/console/login"))
    csrf = _cookies(page)[LOGIN_COOKIE]
    reply = await console.login(post("/console/login", form(token=token("li.clerk"), csrf=csrf), {LOGIN_COOKIE: csrf}))
    cookie = next(c for c in reply.cookies if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie


async def test_a_login_without_its_csrf_cookie_or_from_another_site_is_refused(console) -> None:
    body = form(token=token("li.clerk"), csrf="abc")
    assert (await console.login(post("/console/login", body, {}))).status == 400
    other_site = post("/console/login", body, {LOGIN_COOKIE: "abc"}, origin="https://evil.example")
    assert (await console.login(other_site)).status == 400


async def test_a_wrong_token_is_refused_on_the_login_page(console) -> None:
    page = await console.login_page(get("/console/login"))
    csrf = _cookies(page)[LOGIN_COOKIE]
    reply = await console.login(post("/console/login", form(token="wrong-token-0123456789", csrf=csrf),
                                     {LOGIN_COOKIE: csrf}))
    assert reply.status == 401 and b"Login failed" in reply.body and b"wrong-token" not in reply.body


async def test_pages_carry_a_strict_content_security_policy(console) -> None:
    cookies = await login(console, "li.clerk")
    page = await console.runs_page(get("/console", cookies))
    assert page.status == 200 and "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"] and b"<script" not in page.body


async def test_a_form_post_without_the_session_csrf_token_is_refused(console) -> None:
    cookies = await login(console, "li.clerk")
    reply = await console.trigger(post("/console/runs", form(date=TODAY.isoformat(), csrf="forged"), cookies))
    assert reply.status == 403


async def test_a_clerk_triggers_a_run_from_the_console(console, reconciler) -> None:
    cookies = await login(console, "li.clerk")
    page = await console.runs_page(get("/console", cookies))
    reply = await console.trigger(post("/console/runs", form(date=TODAY.isoformat(), csrf=csrf_of(page.body)), cookies))
    assert reply.status == 303 and "done=started" in reply.headers["Location"]
    await reconciler.wait_idle()


async def test_ops_see_no_trigger_form_no_reports_and_masked_psn_no(console, reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="li.clerk"))
    cookies = await login(console, "sun.ops")
    assert b"trigger-form" not in (await console.runs_page(get("/console", cookies))).body
    page = (await console.run_page(get(f"/console/runs/{run.run_id}", cookies), run.run_id)).body
    assert b"report-xlsx" not in page and b"decide-form" not in page
    diff_id = re.search(rb"/console/differences/(\d+)", page).group(1).decode()
    detail = (await console.difference_page(get("/", cookies), diff_id)).body
    assert b"P-HO" not in detail
    assert (await console.report(get("/", cookies), run.run_id, "xlsx")).status == 403


async def test_a_clerk_sees_psn_no_whole_only_on_the_drill_down(console, reconciler, book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY))
    cookies = await login(console, "li.clerk")
    page = (await console.run_page(get("/", cookies), run.run_id)).body
    assert b"P-HO" not in page
    diff_id = re.search(rb"/console/differences/(\d+)", page).group(1).decode()
    assert b'<span id="psn-no">P-HO</span>' in (await console.difference_page(get("/", cookies), diff_id)).body


async def test_self_approval_in_the_console_is_refused_and_another_approver_succeeds(console, reconciler,
                                                                                      book) -> None:
    book(entry("HO", "40.00"))
    run = await reconciler.run(RunRequest.for_day(TODAY, requested_by="zhao.both"))
    mine = await login(console, "zhao.both")
    page = (await console.run_page(get("/", mine), run.run_id)).body
    assert b"four-eyes-note" in page
    diff_id = re.search(rb'name="ids" value="(\d+)"', page).group(1).decode()
    refused = await console.decide(post("/", form(action="approve", reason="mine", ids=[diff_id],
                                                  csrf=csrf_of(page)), mine), run.run_id)
    assert refused.status == 403 and b"four eyes" in refused.body
    other = await login(console, "wang.approver")
    page = (await console.run_page(get("/", other), run.run_id)).body
    ok = await console.decide(post("/", form(action="approve", reason="checked", ids=[diff_id], csrf=csrf_of(page)),
                                   other), run.run_id)
    assert ok.status == 303 and "done=approved" in ok.headers["Location"]


async def test_logout_ends_the_session(console) -> None:
    cookies = await login(console, "li.clerk")
    page = await console.runs_page(get("/console", cookies))
    out = await console.logout(post("/console/logout", form(csrf=csrf_of(page.body)), cookies))
    assert out.status == 303
    assert (await console.runs_page(get("/console", cookies))).status == 303


async def test_a_bearer_header_needs_no_login(console) -> None:
    request = HttpRequest("GET", "/console", {"host": HOST, "authorization": f"Bearer {token('sun.ops')}"})
    assert (await console.runs_page(request)).status == 200


async def test_a_post_the_browser_calls_cross_site_is_refused(console) -> None:
    cookies = await login(console, "li.clerk")
    page = await console.runs_page(get("/console", cookies))
    body = form(date=TODAY.isoformat(), csrf=csrf_of(page.body))
    cross = post("/console/runs", body, cookies, origin="null", **{"sec-fetch-site": "cross-site"})
    assert (await console.trigger(cross)).status == 403
