"""The reconciliation worker: ``yibao worker reconciliation``.

* consumes ``yibao.his.results.v1`` into the hospital-side ledger (inbox-deduplicated);
* consumes ``yibao.recon.commands.v1`` (run, approve, reject), signed (:mod:`yibao.reconciliation.signing`);
* runs the daily reconciliation at ``schedule_at`` (Asia/Shanghai) for ``schedule_days_back`` days ago;
* answers finance on its port next to /metrics, /healthz, /readyz: the API (:mod:`yibao.reconciliation.api`) and
  the web console (:mod:`yibao.reconciliation.console`), both authenticated (:mod:`yibao.reconciliation.auth`);
* publishes run progress on ``yibao.recon.results.v1`` and repairs on ``yibao.his.results.v1`` (outbox).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faust.web import View

from yibao.core import clock
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.topics import topic

from .api import SECURITY_HEADERS, ApiResponse, HttpRequest, ReconApi
from .auth import Authenticator
from .commands import handle_signed_command, store_his_result
from .console import Console
from .sessions import purge_sessions
from .signing import CommandKeys, purge_nonces
from .models import RunRequest
from .reconciler import Reconciler
from .runs import fail_stale_runs
from .schedule import next_fire, scheduled_day, scheduled_run_id
from .settings import ReconciliationSettings

__all__ = ["build", "main", "make_client", "make_mobile"]

log = logging.getLogger(__name__)


def make_client(engine: Any, platform_settings: Any = None) -> Any:
    """The national-platform client of this service (settings ``YIBAO_PLATFORM_*``)."""
    from yibao.envelope.client import NationalClient
    from yibao.envelope.settings import PlatformSettings

    return NationalClient(platform_settings or PlatformSettings(), engine=engine, service="reconciliation")


def make_mobile(engine: Any, settings: ReconciliationSettings, mobile_settings: Any = None) -> Any:
    """The mobile-pay reconciliation's platform (settings ``YIBAO_MP_*``), or None when mobile pay is not
    configured (no hospital key): mobile runs then fail saying so."""
    from yibao.envelope.mobilepay.client import MobilePayClient
    from yibao.envelope.mobilepay.settings import MobilePaySettings

    from .mobile import MobileDeps

    mp = mobile_settings or MobilePaySettings()
    if not mp.private_key.get_secret_value() or not mp.platform_public_key:
        return None
    client = MobilePayClient(mp, engine=engine, service="reconciliation")
    return MobileDeps(client, mp.meaning, refund_via=settings.mobile_refund_via, org_codg=mp.org_codg,
                      wechat=make_wechat(engine))


def make_wechat(engine: Any, wechat_settings: Any = None) -> Any:
    """WeChat Pay's client (settings ``YIBAO_WECHAT_*``) for the daily bill, or None when WeChat Pay is not
    configured (the mobile runs then compare no bill)."""
    from yibao.envelope.mobilepay.wechat import WeChatPayClient, WeChatSettings

    ws = wechat_settings or WeChatSettings()
    return WeChatPayClient(ws, engine=engine, service="reconciliation") if ws.configured else None


async def _read_body(request: Any, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _source(request: Any) -> str:
    """Where a request came from, for the audit: the peer, and what a proxy says it forwarded for."""
    peer = request.remote or "-"
    forwarded = request.headers.get("X-Forwarded-For")
    return f"{peer} (for {forwarded[:120]})" if forwarded else peer


def _http_request(request: Any, body: bytes) -> HttpRequest:
    return HttpRequest(method=request.method, path=request.path,
                       headers={k.lower(): v for k, v in request.headers.items()}, remote=_source(request), body=body,
                       cookies=dict(request.cookies), query=dict(request.query))


def _respond(response: ApiResponse) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict

    headers: CIMultiDict[str] = CIMultiDict(SECURITY_HEADERS)
    for name, value in response.headers.items():
        headers[name] = value
    headers["Content-Type"] = response.content_type if not response.is_json else "application/json"
    for cookie in response.cookies:
        headers.add("Set-Cookie", cookie)
    return web.Response(body=response.encoded(), status=response.status, headers=headers)


Handler = Callable[..., Awaitable[ApiResponse]]


def _mount(app: Any, path: str, name: str, limit: int, **methods: Handler) -> None:
    """One route: each HTTP method's handler gets an :class:`HttpRequest` and the path's parameters."""

    async def serve(self: View, request: Any, **params: str) -> Any:
        handler = methods[request.method.lower()]
        body = b""
        if request.method in ("POST", "PUT", "PATCH"):
            read = await _read_body(request, limit)
            if read is None:
                return _respond(ApiResponse(413, {"error": "too_large",
                                                  "message": f"the body is larger than {limit} bytes"}))
            body = read
        try:
            return _respond(await handler(_http_request(request, body), **params))
        except Exception as exc:  # noqa: BLE001 - a request never takes the worker down, and never shows a trace
            log.error("request failed", extra={"fields": {"path": path, "error": type(exc).__name__}})
            return _respond(ApiResponse(500, {"error": "internal", "message": f"internal error "
                                                                             f"({type(exc).__name__})"}))

    app.page(path, name=name)(type(f"View_{name}", (View,), {m: serve for m in methods}))


def _mount_http(app: Any, settings: ReconciliationSettings, api: ReconApi, console: Console | None) -> None:
    limit = settings.max_body_bytes
    _mount(app, "/recon/whoami", "recon_whoami", limit, get=lambda r: api.whoami(r))
    _mount(app, "/recon/audit", "recon_audit", limit, get=lambda r: api.audit_log(r))
    _mount(app, "/recon/runs", "recon_runs", limit, get=lambda r: api.list_runs(r), post=lambda r: api.create_run(r))
    _mount(app, "/recon/runs/{run_id}", "recon_run", limit, get=lambda r, run_id: api.get_run(r, run_id))
    _mount(app, "/recon/runs/{run_id}/approve", "recon_approve", limit,
           post=lambda r, run_id: api.decide(r, run_id, approve=True))
    _mount(app, "/recon/runs/{run_id}/reject", "recon_reject", limit,
           post=lambda r, run_id: api.decide(r, run_id, approve=False))
    _mount(app, "/recon/runs/{run_id}/report/{fmt}", "recon_report", limit,
           get=lambda r, run_id, fmt: api.report(r, run_id, fmt))
    if console is None:
        return
    c = console
    _mount(app, "/console", "console_runs", limit, get=lambda r: c.runs_page(r))
    _mount(app, "/console/", "console_runs_slash", limit, get=lambda r: c.runs_page(r))
    _mount(app, "/console/login", "console_login", limit, get=lambda r: c.login_page(r), post=lambda r: c.login(r))
    _mount(app, "/console/logout", "console_logout", limit, post=lambda r: c.logout(r))
    _mount(app, "/console/runs", "console_trigger", limit, post=lambda r: c.trigger(r))
    _mount(app, "/console/runs/{run_id}", "console_run", limit, get=lambda r, run_id: c.run_page(r, run_id))
    _mount(app, "/console/runs/{run_id}/decide", "console_decide", limit, post=lambda r, run_id: c.decide(r, run_id))
    _mount(app, "/console/runs/{run_id}/report/{fmt}", "console_report", limit,
           get=lambda r, run_id, fmt: c.report(r, run_id, fmt))
    _mount(app, "/console/differences/{difference_id}", "console_difference", limit,
           get=lambda r, difference_id: c.difference_page(r, difference_id))
    _mount(app, "/console/audit", "console_audit", limit, get=lambda r: c.audit_page(r))
    _mount(app, "/console/static/console.css", "console_css", limit, get=lambda r: c.stylesheet(r))


def build(settings: ReconciliationSettings | None = None, *, client: Any = None,
          platform_settings: Any = None, mobile: Any = None) -> ServiceRuntime:
    settings = settings or ReconciliationSettings()
    runtime = ServiceRuntime(settings, name="reconciliation")
    client = client if client is not None else make_client(runtime.engine, platform_settings)
    default_optins = getattr(getattr(client, "settings", None), "mdtrtarea_admvs", None)
    mobile = mobile if mobile is not None else make_mobile(runtime.engine, settings)
    reconciler = Reconciler(runtime.engine, client, settings, default_optins=default_optins,
                            catalog=getattr(client, "catalog", None), on_commit=runtime.relay.wake, mobile=mobile)
    authenticator = Authenticator.from_settings(settings)
    keys = CommandKeys(settings.command_keys_file) if settings.command_keys_file else None
    if not authenticator.enabled:
        log.warning("no way to log in is configured: the reconciliation API and console refuse every request "
                    "(set YIBAO_RECONCILIATION_AUTH_STATIC_TOKENS_FILE or YIBAO_RECONCILIATION_OIDC_ISSUER)")
    if keys is None:
        log.warning("no command keys are configured: every command on the command topic is refused "
                    "(set YIBAO_RECONCILIATION_COMMAND_KEYS_FILE)")
    api = ReconApi(reconciler, authenticator)
    app = runtime.app
    results = app.topic(topic("his_results", settings.topic_prefix), value_type=bytes, key_type=bytes)
    commands = app.topic(topic("recon_commands", settings.topic_prefix), value_type=bytes, key_type=bytes)
    runtime.reconciler = reconciler  # type: ignore[attr-defined]  (tests and operators reach it here)

    @app.agent(results, name="reconciliation-ledger")
    async def ledger(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            ctx = MessageContext.of(event)

            async def handle() -> str:
                return await runtime.db(lambda conn: store_his_result(conn, ctx.value))

            await runtime.process(ctx, handle)

    @app.agent(commands, name="reconciliation-commands")
    async def command_agent(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            ctx = MessageContext.of(event)

            async def handle() -> str:
                return await handle_signed_command(
                    reconciler, keys, ctx.value, source=f"{ctx.topic}/{ctx.partition}/{ctx.offset}",
                    max_age_s=settings.command_max_age_s, clock_skew_s=settings.command_clock_skew_s)

            await runtime.process(ctx, handle)

    @app.task
    async def _housekeeping() -> None:
        """Fail runs whose worker died, and keep the 单边账 gauges fresh."""
        while True:
            try:
                await reconciler.db(lambda conn: fail_stale_runs(conn, settings.run_stale_after_s,
                                                                 prefix=settings.topic_prefix))
                await reconciler.refresh_gauges()
                forget = clock.now() - _dt.timedelta(seconds=2 * settings.command_max_age_s + 3600)
                await reconciler.db(lambda conn: (purge_nonces(conn, forget), purge_sessions(conn)))
            except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the worker
                log.warning("reconciliation housekeeping failed", extra={"fields": {"error": type(exc).__name__}})
            await asyncio.sleep(60)

    @app.task
    async def _daily() -> None:
        if not settings.schedule_enabled:
            return
        while True:
            fire_at = next_fire(clock.now(), settings.schedule_time())
            await asyncio.sleep(max(0.0, (fire_at - clock.now()).total_seconds()))
            day = scheduled_day(fire_at, settings.schedule_days_back)
            try:
                run = await reconciler.start(RunRequest.for_day(day, trigger="schedule", requested_by="schedule"),
                                             run_id=scheduled_run_id(day))
                log.info("daily reconciliation submitted", extra={"fields": {"run_id": run.run_id,
                                                                             "state": run.state}})
            except Exception as exc:  # noqa: BLE001 - tomorrow comes anyway
                log.error("daily reconciliation not submitted", extra={"fields": {"error": type(exc).__name__}})

    @app.task
    async def _daily_mobile() -> None:
        if not settings.mobile_schedule_enabled or mobile is None:
            return
        at = _dt.time.fromisoformat(settings.mobile_schedule_at)
        while True:
            fire_at = next_fire(clock.now(), at)
            await asyncio.sleep(max(0.0, (fire_at - clock.now()).total_seconds()))
            day = scheduled_day(fire_at, settings.schedule_days_back)
            try:
                run = await reconciler.start(RunRequest.for_day(day, trigger="schedule", requested_by="schedule",
                                                                scope="mobile"), run_id="M" + scheduled_run_id(day))
                log.info("daily mobile-pay reconciliation submitted", extra={"fields": {"run_id": run.run_id,
                                                                                        "state": run.state}})
            except Exception as exc:  # noqa: BLE001 - tomorrow comes anyway
                log.error("daily mobile-pay reconciliation not submitted",
                          extra={"fields": {"error": type(exc).__name__}})

    _mount_http(app, settings, api, Console(api) if settings.console_enabled else None)
    return runtime


def main() -> int:
    return build().run()

