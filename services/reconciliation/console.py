"""The finance console: server-rendered pages under ``/console`` on the reconciliation worker's port.

No build step and no script: HTML written here, one stylesheet, the daily chart as inline SVG. Pages:

====================================  ==========================================================================
``/console/login``                    log in with a static token or an identity-provider token (JWT); a
                                      request carrying ``Authorization: Bearer`` (a proxy in front forwarding
                                      the provider's token) needs no login
``/console``                          the day's runs and earlier ones with their state; a run for a day
                                      (clerk); the chart of daily totals HIS against the platform
``/console/runs/{id}``                a run: differences by class, repairs waiting for approval (approve or
                                      reject with a reason: approver, four eyes), reports to download
``/console/differences/{id}``         one difference down to the settlement: both sides' amounts, the ledger
                                      entry, the repair and its approval
``/console/runs/{id}/report/{fmt}``   the Excel or HTML report (clerk, approver; audited)
``/console/audit``                    the audit log (approver, ops)
====================================  ==========================================================================

Protection: forms carry a CSRF token (the session's; the login form's is a double-submit cookie) and a
cross-origin ``Origin`` is refused; cookies are HttpOnly, SameSite=Strict (and Secure unless
``console_cookie_secure`` is off); every answer has a strict Content-Security-Policy and the usual security
headers. psn_no is masked in lists for everyone and shown whole only on a difference's page to clerks and
approvers; ops see it masked everywhere.
"""

from __future__ import annotations

import hmac
import html
import secrets
import urllib.parse
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from yibao.core import clock
from yibao.core.privacy import mask_value

from . import audit
from .api import ApiResponse, BodyError, HttpRequest, ReconApi, RunBody, _run_request
from .audit import Actor
from .auth import authorize, bearer_token
from .chart import daily_totals, render_svg
from .classify import DIFFERENCE_LABELS
from .errors import AuthError, NotAuthenticated
from .ledger import entry_by_setl_id
from .runs import DifferenceRecord, RunRecord, difference, differences_of, get_run, list_runs
from .sessions import Session, close_session, find_session, open_session
from .settings import DIFFERENCE_CLASSES

__all__ = ["Console", "CONSOLE_CSP", "SESSION_COOKIE", "LOGIN_COOKIE", "STYLESHEET"]

SESSION_COOKIE = "yibao_session"
LOGIN_COOKIE = "yibao_login_csrf"
CONSOLE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
               "base-uri 'none'")

STYLESHEET = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f3b5b;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:bold}header .who{margin-left:auto;font-size:90%}
header form{display:inline}main{padding:1em 1.5em;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse;background:#fff;margin:.4em 0 1em}th,td{border:1px solid #ccd;padding:.25em .6em;
font-size:90%;text-align:left;vertical-align:top}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{padding:.1em .5em;border-radius:.6em;font-size:85%;white-space:nowrap}
.state-balanced,.state-repaired_and_balanced,.state-repaired,.state-resolved{background:#dff3e2;color:#1d6b2c}
.state-differences_found,.state-pending_approval{background:#fff1d6;color:#8a5a00}
.state-failed,.state-refused,.state-rejected,.state-manual{background:#fde2e1;color:#9b1c1c}
.state-running,.state-approved,.state-applying,.state-open{background:#e3ecfb;color:#1f4f99}
.flash{padding:.6em 1em;border-radius:.3em;margin:.8em 0}.ok{background:#dff3e2}.error{background:#fde2e1}
.warn{background:#fff1d6}form.inline{display:inline}label{display:block;margin:.4em 0 .1em}
textarea{width:40em;max-width:100%;height:4em}input[type=password],input[type=text]{width:30em;max-width:100%}
button{padding:.3em 1em;margin:.3em .3em .3em 0}.muted{color:#666;font-size:90%}
.login{max-width:36em;margin:4em auto;background:#fff;padding:1.5em 2em;border:1px solid #ccd;border-radius:.4em}
""".strip()

_FLASH = {
    "approved": ("ok", "Repairs approved and applied. / 修复已批准并执行。"),
    "rejected": ("ok", "Repairs rejected: they go to manual handling. / 修复已拒绝，转人工处理。"),
    "started": ("ok", "Run started; its state updates as it goes. / 对账已开始。"),
    "refused": ("error", "The run was refused: another run holds one of its days. / 对账被拒绝（日期重叠）。"),
    "loggedout": ("ok", "Logged out. / 已退出。"),
}

_STATUS_LABELS = {
    "pending_approval": "waiting for approval / 待审批",
    "approved": "approved / 已批准",
    "applying": "applying / 执行中",
    "repaired": "repaired / 已修复",
    "resolved": "resolved / 已一致",
    "manual": "manual handling / 人工处理",
    "rejected": "rejected / 已拒绝",
    "open": "open / 未处理",
    "superseded": "superseded / 已被后续对账接续",
}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _state(value: str, labels: dict[str, str] | None = None) -> str:
    text = (labels or {}).get(value, value.replace("_", " "))
    return f'<span class="state state-{esc(value)}">{esc(text)}</span>'


def _form_fields(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the form is not UTF-8") from None
    try:
        return urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=2000)
    except ValueError as exc:
        raise BodyError(400, f"the form cannot be read: {exc}") from None


def _one(fields: dict[str, list[str]], name: str, *, limit: int = 2000) -> str:
    values = fields.get(name) or [""]
    value = values[0]
    if len(value) > limit:
        raise BodyError(400, f"{name}: at most {limit} characters")
    return value


class Console:
    def __init__(self, api: ReconApi) -> None:
        self.api = api
        self.reconciler = api.reconciler
        self.settings = api.reconciler.settings

    # --- plumbing --------------------------------------------------------------------------------------------

    def _cookie(self, name: str, value: str, *, max_age: int | None = None) -> str:
        parts = [f"{name}={value}", "Path=/console", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.settings.console_cookie_secure:
            parts.append("Secure")
        return "; ".join(parts)

    def _page(self, title: str, body: str, *, who: Session | None = None, status: int = 200,
              cookies: Sequence[str] = ()) -> ApiResponse:
        nav = ""
        if who is not None:
            p = who.principal
            links = ['<a href="/console">Runs 对账</a>']
            if p.can("audit.read"):
                links.append('<a href="/console/audit">Audit 审计</a>')
            logout = (f'<form method="post" action="/console/logout"><input type="hidden" name="csrf" '
                      f'value="{esc(who.csrf)}"><button type="submit" id="logout">Log out 退出</button></form>'
                      if who.csrf else "")
            nav = (" ".join(links) + f'<span class="who" id="who">{esc(p.user)} ({esc(p.roles_text)})</span>'
                   + logout)
        page = ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<title>{esc(title)} · 医保对账 yibao-bridge</title>'
                '<link rel="stylesheet" href="/console/static/console.css"></head><body>'
                f'<header><span>医保对账 Reconciliation</span>{nav}</header><main>{body}</main></body></html>')
        return ApiResponse(status, page.encode("utf-8"), "text/html; charset=utf-8",
                           {"Content-Security-Policy": CONSOLE_CSP, "Referrer-Policy": "same-origin"}, tuple(cookies))

    @staticmethod
    def _redirect(location: str, cookies: Sequence[str] = ()) -> ApiResponse:
        return ApiResponse(303, b"", "text/plain; charset=utf-8", {"Location": location}, tuple(cookies))

    def _flash(self, request: HttpRequest) -> str:
        kind_text = _FLASH.get(request.query.get("done", ""))
        if kind_text is None:
            return ""
        return f'<div class="flash {kind_text[0]}" id="flash">{esc(kind_text[1])}</div>'

    async def _who(self, request: HttpRequest) -> Session | None:
        """The signed-in user: a bearer header (no CSRF needed: browsers never send it on their own), else the
        session cookie."""
        token = bearer_token(request.header("authorization"))
        if token is not None:
            return Session(await self.api.auth.averify(token), "", clock.now())
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        idle = self.settings.console_idle_timeout_s
        return await self.reconciler.db(lambda conn: find_session(conn, cookie, idle_s=idle))

    def _same_origin(self, request: HttpRequest) -> bool:
        """A form post from our own pages: the browser's Sec-Fetch-Site says so, or its Origin is our host."""
        site = request.header("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = request.header("origin")
        if not origin or origin == "null":
            return site is not None or origin is None  # "null" only with the browser's own same-origin word
        host = request.header("host") or ""
        return urllib.parse.urlsplit(origin).netloc.lower() == host.lower()

    def _csrf_ok(self, request: HttpRequest, who: Session, fields: dict[str, list[str]]) -> bool:
        if not who.csrf:  # bearer-header requests carry no ambient credential
            return True
        return self._same_origin(request) and hmac.compare_digest(_one(fields, "csrf").encode(), who.csrf.encode())

    async def _audit(self, actor: Actor, action: str, outcome: str, **kw: Any) -> None:
        await self.reconciler.db(lambda conn: audit.record(conn, actor, action, outcome, **kw))

    def _actor(self, request: HttpRequest, who: Session, permission: str | None = None) -> Actor:
        p = who.principal
        role = p.role_for(permission) if permission else p.roles_text
        return Actor(p.user, role, p.method, request.source)

    async def _require(self, request: HttpRequest) -> Session | ApiResponse:
        try:
            who = await self._who(request)
        except NotAuthenticated as exc:
            await self._audit(audit.ANONYMOUS(request.source), "login_failed", "denied", status=401,
                              detail=f"console bearer token: {exc}")
            return self._page("Log in", self._login_form("", str(exc)), status=401)
        if who is None:
            return self._redirect("/console/login")
        return who

    async def _forbidden(self, request: HttpRequest, who: Session, exc: AuthError, action: str,
                         run_id: str | None = None) -> ApiResponse:
        await self._audit(self._actor(request, who), action, "denied", run_id=run_id, status=exc.status,
                          detail=str(exc))
        return self._page("Not allowed", f'<h1>Not allowed 无权限</h1><div class="flash error" id="error">'
                          f'{esc(exc)}</div><p><a href="/console">Back to the runs</a></p>', who=who,
                          status=exc.status)

    # --- login -----------------------------------------------------------------------------------------------

    def _login_form(self, csrf: str, error: str = "") -> str:
        modes = self.api.auth.modes()
        hint = {("oidc", "static"): "a static token or a token of the hospital's identity provider",
                ("oidc",): "a token of the hospital's identity provider (JWT)",
                ("static",): "your static token"}.get(tuple(modes), "")
        message = f'<div class="flash error" id="error">{esc(error)}</div>' if error else ""
        if not modes:
            message += ('<div class="flash warn">No way to log in is configured: set '
                        'YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE or YIBAO_RECONCILIATION_OIDC_ISSUER.</div>')
        return (f'<div class="login"><h1>Finance console 财务对账</h1>{message}'
                '<form method="post" action="/console/login" id="login-form">'
                f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
                f'<label for="token">Token 令牌 <span class="muted">({esc(hint)})</span></label>'
                '<input type="password" id="token" name="token" autocomplete="off" required>'
                '<div><button type="submit" id="login">Log in 登录</button></div></form>'
                '<p class="muted">Your identity and roles come from the token. Everything you do here is recorded '
                'in the audit log.</p></div>')

    async def login_page(self, request: HttpRequest) -> ApiResponse:
        csrf = secrets.token_urlsafe(24)
        return self._page("Log in", self._login_form(csrf), cookies=[self._cookie(LOGIN_COOKIE, csrf, max_age=1800)])

    async def login(self, request: HttpRequest) -> ApiResponse:
        csrf = secrets.token_urlsafe(24)
        fresh = [self._cookie(LOGIN_COOKIE, csrf, max_age=1800)]
        try:
            fields = _form_fields(request.body)
            token, sent = _one(fields, "token", limit=8192).strip(), _one(fields, "csrf")
        except BodyError as exc:
            return self._page("Log in", self._login_form(csrf, str(exc)), status=exc.status, cookies=fresh)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()) or not self._same_origin(request):
            why = ("the form came from another site" if not self._same_origin(request)
                   else "the form's CSRF token does not match (reload the page)")
            await self._audit(audit.ANONYMOUS(request.source), "login_failed", "denied", status=400,
                              detail=f"console login: {why}")
            return self._page("Log in", self._login_form(csrf, "The login form expired; please try again."),
                              status=400, cookies=fresh)
        try:
            if not token:
                raise NotAuthenticated("a token is required")
            principal = await self.api.auth.averify(token)
        except NotAuthenticated as exc:
            await self._audit(audit.ANONYMOUS(request.source), "login_failed", "denied", status=401,
                              detail=f"console login: {exc}")
            return self._page("Log in", self._login_form(csrf, f"Login failed: {exc}"), status=401, cookies=fresh)
        ttl = self.settings.console_session_ttl_s
        actor = Actor(principal.user, principal.roles_text, principal.method, request.source)

        def start(conn: Any) -> str:
            cookie, _session = open_session(conn, principal, source=request.source, ttl_s=ttl)
            audit.record(conn, actor, "login", "ok", status=303, detail=f"console, {principal.method} token")
            return cookie

        cookie = await self.reconciler.db(start)
        return self._redirect("/console", [self._cookie(SESSION_COOKIE, cookie, max_age=int(ttl)),
                                           self._cookie(LOGIN_COOKIE, "", max_age=0)])

    async def logout(self, request: HttpRequest) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            fields = _form_fields(request.body)
        except BodyError as exc:
            return self._page("Error", f'<div class="flash error">{esc(exc)}</div>', who=who, status=exc.status)
        if not self._csrf_ok(request, who, fields):
            return self._page("Error", '<div class="flash error" id="error">The form expired; reload the page.</div>',
                              who=who, status=403)
        cookie = request.cookies.get(SESSION_COOKIE, "")
        actor = self._actor(request, who)

        def end(conn: Any) -> None:
            close_session(conn, cookie)
            audit.record(conn, actor, "logout", "ok", status=303)

        await self.reconciler.db(end)
        return self._redirect("/console/login?done=loggedout", [self._cookie(SESSION_COOKIE, "", max_age=0)])

    # --- runs ------------------------------------------------------------------------------------------------

    def _runs_table(self, runs: Iterable[RunRecord], table_id: str) -> str:
        rows = []
        for r in runs:
            progress = f"{esc(r.step or '')} {r.done}/{r.total}" if r.state == "running" else ""
            period = r.date_from.isoformat() + ("" if r.date_to == r.date_from else f" ~ {r.date_to.isoformat()}")
            message = (r.message or "")[:160]
            rows.append(f'<tr><td><a class="run-link" href="/console/runs/{esc(r.run_id)}">{esc(r.run_id)}</a></td>'
                        f"<td>{esc(period)}</td><td>{_state(r.state)} {progress}</td><td>{esc(r.trigger)}</td>"
                        f"<td>{esc(r.requested_by or '')}</td><td>{esc(clock.format_datetime(r.created_at))}</td>"
                        f"<td>{esc(message)}</td></tr>")
        if not rows:
            return f'<p class="muted" id="{table_id}">None.</p>'
        return (f'<table id="{table_id}"><thead><tr><th>run</th><th>period 对账期间</th><th>state 状态</th>'
                "<th>trigger</th><th>requested by 发起人</th><th>started</th><th>message</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")

    async def runs_page(self, request: HttpRequest) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            authorize(who.principal, "run.read")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "read")
        runs = await self.reconciler.db(lambda conn: list_runs(conn, limit=60))
        totals = await self.reconciler.db(lambda conn: daily_totals(conn, days=14))
        today = clock.today()
        todays = [r for r in runs if clock.as_shanghai(r.created_at).date() == today]
        earlier = [r for r in runs if clock.as_shanghai(r.created_at).date() != today]
        trigger = ""
        if who.principal.can("run.trigger"):
            yesterday = (today.toordinal() - 1)
            default = type(today).fromordinal(yesterday).isoformat()
            trigger = ('<h2>Reconcile a day 发起对账</h2><form method="post" action="/console/runs" id="trigger-form">'
                       f'<input type="hidden" name="csrf" value="{esc(who.csrf)}">'
                       f'<label for="date">Day (or first day) 日期</label><input type="date" id="date" name="date" '
                       f'value="{default}" required><label for="to">Last day (optional) 截止日期</label>'
                       '<input type="date" id="to" name="to"><div><button type="submit" id="trigger">Run 3201/3202 '
                       '对账</button></div></form>')
        body = (f"<h1>Reconciliation runs 对账</h1>{self._flash(request)}"
                f"<h2>Today's runs 今日对账 ({esc(today.isoformat())})</h2>{self._runs_table(todays, 'runs-today')}"
                f"<h2>Daily totals, HIS against the platform 每日汇总（医院 vs 医保平台）</h2>{render_svg(totals)}"
                f"{trigger}<h2>Earlier runs 历史对账</h2>{self._runs_table(earlier, 'runs-earlier')}")
        return self._page("Runs", body, who=who)

    async def trigger(self, request: HttpRequest) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            authorize(who.principal, "run.trigger")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "trigger")
        actor = self._actor(request, who, "run.trigger")
        try:
            fields = _form_fields(request.body)
            if not self._csrf_ok(request, who, fields):
                raise BodyError(403, "the form expired or came from another site; reload the page")
            data = {"date": _one(fields, "date", limit=20)}
            if _one(fields, "to", limit=20):
                data["to"] = _one(fields, "to", limit=20)
            run_request = _run_request(RunBody.read(data), "http", who.principal.user)
        except BodyError as exc:
            await self._audit(actor, "trigger", "refused", status=exc.status, detail=str(exc))
            return self._page("Error", f'<div class="flash error" id="error">{esc(exc)}</div>'
                              '<p><a href="/console">Back</a></p>', who=who, status=exc.status)
        run = await self.reconciler.start(run_request, actor=actor)
        done = "refused" if run.state == "refused" else "started"
        return self._redirect(f"/console/runs/{urllib.parse.quote(run.run_id)}?done={done}")

    def _difference_rows(self, diffs: Sequence[DifferenceRecord], *, selectable: bool) -> str:
        rows = []
        for d in diffs:
            pick = ""
            if selectable:
                pick = (f'<td><input type="checkbox" name="ids" value="{d.id}" id="pick-{d.id}" checked></td>'
                        if d.status == "pending_approval" else "<td></td>")
            rows.append(
                f"<tr>{pick}<td><a class=\"difference-link\" href=\"/console/differences/{d.id}\">#{d.id}</a></td>"
                f"<td>{esc(d.setl_id)}</td><td>{esc(mask_value(d.psn_no) if d.psn_no else '')}</td>"
                f"<td>{esc(d.channel)}</td><td class=\"num\">{_money(d.his_medfee_sumamt)}</td>"
                f"<td class=\"num\">{_money(d.plat_medfee_sumamt)}</td><td>{esc(d.action or '')}</td>"
                f"<td class=\"num\">{_money(d.amount)}</td><td>{_state(d.status, _STATUS_LABELS)}</td>"
                f"<td>{esc(d.approved_by or '')}</td></tr>")
        head = "<th></th>" if selectable else ""
        return (f"<table><thead><tr>{head}<th>#</th><th>setl_id 结算ID</th><th>psn_no</th><th>channel</th>"
                "<th>HIS 医院金额</th><th>platform 平台金额</th><th>repair 修复</th><th>amount</th><th>status</th>"
                f"<th>decided by</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")

    async def run_page(self, request: HttpRequest, run_id: str, *, error: str = "", status: int = 200) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            authorize(who.principal, "run.read")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "read", run_id)
        run = await self.reconciler.db(lambda conn: get_run(conn, run_id))
        if run is None:
            return self._page("Not found", f'<h1>No run {esc(run_id[:40])}</h1><p><a href="/console">Back</a></p>',
                              who=who, status=404)
        diffs = [d for d in await self.reconciler.db(lambda conn: differences_of(conn, run_id))]
        p = who.principal
        parts = [f'<h1>Run <span id="run-id">{esc(run.run_id)}</span></h1>', self._flash(request)]
        if error:
            parts.append(f'<div class="flash error" id="error">{esc(error)}</div>')
        period = run.date_from.isoformat() + ("" if run.date_to == run.date_from else f" ~ {run.date_to.isoformat()}")
        parts.append(f'<table id="run-summary"><tr><th>state 状态</th><td id="run-state">{_state(run.state)}</td></tr>'
                     f"<tr><th>period 对账期间</th><td>{esc(period)}</td></tr>"
                     f"<tr><th>requested by 发起人</th><td id=\"requested-by\">{esc(run.requested_by or '')}"
                     f" ({esc(run.trigger)})</td></tr>"
                     f"<tr><th>message</th><td>{esc(run.message or '')}</td></tr>"
                     f"<tr><th>started / finished</th><td>{esc(clock.format_datetime(run.created_at))} / "
                     f"{esc(clock.format_datetime(run.finished_at) if run.finished_at else '')}</td></tr></table>")
        if p.can("report.download") and run.state != "running":
            parts.append('<h2>Reports 报表</h2><p>'
                         f'<a id="report-xlsx" href="/console/runs/{esc(run_id)}/report/xlsx">Excel (.xlsx)</a> · '
                         f'<a id="report-html" href="/console/runs/{esc(run_id)}/report/html">HTML</a></p>')
        pending = [d for d in diffs if d.status == "pending_approval"]
        if pending:
            parts.append(f'<h2>Repairs waiting for approval 待审批修复 ({len(pending)})</h2>')
            if p.can("repair.decide"):
                if run.requested_by and run.requested_by.casefold() == p.user.casefold():
                    parts.append('<div class="flash warn" id="four-eyes-note">You requested this run: under the '
                                 'four-eyes rule another approver must decide. / 本次对账由您发起，须由其他审批人审批。'
                                 '</div>')
                parts.append(f'<form method="post" action="/console/runs/{esc(run_id)}/decide" id="decide-form">'
                             f'<input type="hidden" name="csrf" value="{esc(who.csrf)}">'
                             + self._difference_rows(pending, selectable=True)
                             + '<label for="reason">Reason 理由 (required)</label>'
                             '<textarea id="reason" name="reason" maxlength="500" required></textarea><div>'
                             '<button type="submit" name="action" value="approve" id="approve">Approve 批准</button>'
                             '<button type="submit" name="action" value="reject" id="reject">Reject 拒绝</button>'
                             '</div></form>')
            else:
                parts.append(self._difference_rows(pending, selectable=False)
                             + '<p class="muted">An approver decides these. / 由审批人审批。</p>')
        parts.append("<h2>Differences by class 差异分类</h2>")
        counts = {c: sum(d.diff_class == c for d in diffs) for c in DIFFERENCE_CLASSES}
        parts.append('<table id="class-counts"><thead><tr><th>class</th><th>count</th></tr></thead><tbody>'
                     + "".join(f'<tr><td><a href="#class-{c}">{esc(DIFFERENCE_LABELS[c][0])} / '
                               f'{esc(DIFFERENCE_LABELS[c][1])}</a></td><td class="num">{n}</td></tr>'
                               for c, n in counts.items()) + "</tbody></table>")
        for c in DIFFERENCE_CLASSES:
            of_class = [d for d in diffs if d.diff_class == c]
            if of_class:
                parts.append(f'<section id="class-{c}"><h2>{esc(DIFFERENCE_LABELS[c][0])} / '
                             f'{esc(DIFFERENCE_LABELS[c][1])} ({len(of_class)})</h2>'
                             f"{self._difference_rows(of_class, selectable=False)}</section>")
        parts.append('<p><a href="/console">Back to the runs 返回</a></p>')
        return self._page(f"Run {run_id}", "".join(parts), who=who, status=status)

    async def decide(self, request: HttpRequest, run_id: str) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            fields = _form_fields(request.body)
            action = _one(fields, "action", limit=10)
            if action not in ("approve", "reject"):
                raise BodyError(400, "action: approve or reject")
        except BodyError as exc:
            return await self.run_page(request, run_id, error=str(exc), status=exc.status)
        try:
            role = authorize(who.principal, "repair.decide")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, action, run_id)
        actor = self._actor(request, who).as_role(role)
        try:
            if not self._csrf_ok(request, who, fields):
                raise BodyError(403, "the form expired or came from another site; reload the page")
            reason = _one(fields, "reason", limit=500).strip()
            if not reason:
                raise BodyError(400, "a reason is required / 请填写理由")
            try:
                ids = [int(v) for v in fields.get("ids", [])][:1000] or None
            except ValueError:
                raise BodyError(400, "ids: difference numbers") from None
            if ids is None:
                raise BodyError(400, "tick at least one repair / 请至少选择一项")
        except BodyError as exc:
            await self._audit(actor, action, "refused", run_id=run_id, status=exc.status, detail=str(exc))
            return await self.run_page(request, run_id, error=str(exc), status=exc.status)
        reply = await self.api.apply_decision(who.principal, actor, run_id, approve=action == "approve",
                                              reason=reason, ids=ids)
        if reply.status != 200:
            return await self.run_page(request, run_id, error=str(reply.body.get("message")), status=reply.status)
        done = "approved" if action == "approve" else "rejected"
        return self._redirect(f"/console/runs/{urllib.parse.quote(run_id)}?done={done}")

    async def difference_page(self, request: HttpRequest, difference_id: str) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            authorize(who.principal, "run.read")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "read")
        if not difference_id.isdigit() or len(difference_id) > 18:
            return self._page("Not found", "<h1>No such difference</h1>", who=who, status=404)
        d = await self.reconciler.db(lambda conn: difference(conn, int(difference_id)))
        if d is None:
            return self._page("Not found", "<h1>No such difference</h1>", who=who, status=404)
        entry = await self.reconciler.db(lambda conn: entry_by_setl_id(conn, d.setl_id))
        personal = who.principal.can("personal.read")

        def psn(value: str | None) -> str:
            return esc(value if personal or not value else mask_value(value))

        english, chinese = DIFFERENCE_LABELS.get(d.diff_class, (d.diff_class, ""))
        rows = [("run", f'<a href="/console/runs/{esc(d.run_id)}" id="back-to-run">{esc(d.run_id)}</a>'),
                ("class 类别", f"{esc(english)} / {esc(chinese)} (row code {esc(d.row_code)})"),
                ("setl_id 结算ID", esc(d.setl_id)), ("mdtrt_id 就诊ID", esc(d.mdtrt_id)),
                ("psn_no 人员编号", f'<span id="psn-no">{psn(d.psn_no)}</span>'),
                ("clr_type / setl_optins", f"{esc(d.clr_type)} / {esc(d.setl_optins)}"),
                ("refd_setl_flag", esc(d.refd_setl_flag)), ("channel", esc(d.channel)),
                ("HIS visit", esc(d.his_visit_id)), ("msgid", esc(d.msgid)), ("memo", esc(d.memo)),
                ("first seen", esc(clock.format_datetime(d.first_seen_at)))]
        amounts = ('<table id="amounts"><thead><tr><th></th><th>HIS 医院</th><th>platform 医保平台</th></tr></thead>'
                   f'<tbody><tr><th>medfee_sumamt</th><td class="num">{_money(d.his_medfee_sumamt)}</td>'
                   f'<td class="num">{_money(d.plat_medfee_sumamt)}</td></tr><tr><th>fund_pay_sumamt</th>'
                   f'<td class="num">{_money(d.his_fund_pay_sumamt)}</td><td class="num">'
                   f'{_money(d.plat_fund_pay_sumamt)}</td></tr><tr><th>acct_pay</th><td class="num">'
                   f'{_money(d.his_acct_pay)}</td><td class="num">{_money(d.plat_acct_pay)}</td></tr></tbody></table>')
        repair = [("repair 修复", esc(d.action)), ("amount", _money(d.amount)),
                  ("status", _state(d.status, _STATUS_LABELS)), ("decided by", esc(d.approved_by)),
                  ("decided at", esc(clock.format_datetime(d.approved_at) if d.approved_at else "")),
                  ("reason", esc(d.approval_reason)), ("outcome", esc(d.outcome))]
        settlement = '<p class="muted">The hospital ledger holds no entry with this setl_id.</p>'
        if entry is not None:
            settlement = ('<table id="settlement">' + "".join(
                f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in (
                    ("status", esc(entry.status)), ("HIS visit", esc(entry.his_visit_id)),
                    ("visit kind", esc(entry.visit_kind)), ("settled at", esc(clock.format_datetime(entry.setl_time))),
                    ("insutype 险种", esc(entry.insutype)), ("psn_no", psn(entry.psn_no)),
                    ("medfee_sumamt", _money(entry.medfee_sumamt)), ("fund_pay_sumamt", _money(entry.fund_pay_sumamt)),
                    ("acct_pay", _money(entry.acct_pay)), ("psn_cash_pay", _money(entry.psn_cash_pay)),
                    ("orig_setl_id", esc(entry.orig_setl_id)), ("producer", esc(entry.producer)),
                    ("msgid", esc(entry.msgid)))) + "</table>")
        body = (f'<h1>Difference <span id="difference-id">#{d.id}</span> · {esc(d.setl_id)}</h1>'
                '<table id="difference">' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
                + "</table><h2>Amounts 金额对比</h2>" + amounts
                + "<h2>The settlement in the hospital ledger 医院结算记录</h2>" + settlement
                + '<h2>Repair 修复</h2><table id="repair">'
                + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in repair) + "</table>")
        return self._page(f"Difference {d.id}", body, who=who)

    async def report(self, request: HttpRequest, run_id: str, fmt: str) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            role = authorize(who.principal, "report.download")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "report", run_id)
        if fmt not in ("xlsx", "html"):
            return self._page("Not found", "<h1>Reports are Excel or HTML</h1>", who=who, status=404)
        reply = await self.api.serve_report(self._actor(request, who).as_role(role), run_id, fmt, attachment=True)
        if reply.status != 200:
            return self._page("Not found", f'<h1>No {esc(fmt)} report for run {esc(run_id[:40])}</h1>', who=who,
                              status=reply.status)
        return reply

    async def audit_page(self, request: HttpRequest) -> ApiResponse:
        who = await self._require(request)
        if isinstance(who, ApiResponse):
            return who
        try:
            authorize(who.principal, "audit.read")
        except AuthError as exc:
            return await self._forbidden(request, who, exc, "read")
        rows = await self.reconciler.db(lambda conn: audit.recent(conn, limit=300))
        body = ('<h1>Audit log 审计日志</h1><table id="audit"><thead><tr><th>at 时间</th><th>who</th><th>role</th>'
                '<th>how</th><th>action</th><th>run</th><th>differences</th><th>outcome</th><th>from</th>'
                '<th>detail</th></tr></thead><tbody>'
                + "".join(f"<tr><td>{esc(clock.format_datetime(r.at))}</td><td>{esc(r.actor)}</td><td>{esc(r.role)}"
                          f"</td><td>{esc(r.method)}</td><td>{esc(r.action)}</td><td>{esc(r.run_id or '')}</td>"
                          f"<td>{esc(', '.join(map(str, r.difference_ids or [])))}</td><td>{_state(r.outcome)}</td>"
                          f"<td>{esc(r.source)}</td><td>{esc(r.detail or '')}</td></tr>" for r in rows)
                + "</tbody></table>")
        return self._page("Audit", body, who=who)

    async def stylesheet(self, request: HttpRequest) -> ApiResponse:
        return ApiResponse(200, STYLESHEET.encode(), "text/css; charset=utf-8", {"Cache-Control": "max-age=3600"})

