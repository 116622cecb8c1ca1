"""The reconciliation worker: ``yibao worker reconciliation``.

* consumes ``yibao.his.results.v1`` into the hospital-side ledger (inbox-deduplicated);
* consumes ``yibao.recon.commands.v1`` (run, approve, reject);
* runs the daily reconciliation at ``schedule_at`` (Asia/Shanghai) for ``schedule_days_back`` days ago;
* answers finance on its port (:mod:`yibao.reconciliation.api`) next to /metrics, /healthz, /readyz;
* publishes run progress on ``yibao.recon.results.v1`` and repairs on ``yibao.his.results.v1`` (outbox).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.web import View

from yibao.core import clock
from yibao.core.runtime import MessageContext, ServiceRuntime
from yibao.core.topics import topic

from .api import ApiResponse, ReconApi
from .commands import handle_command, parse_command, store_his_result
from .models import RunRequest
from .reconciler import Reconciler
from .runs import fail_stale_runs
from .schedule import next_fire, scheduled_day, scheduled_run_id
from .settings import ReconciliationSettings

__all__ = ["build", "main", "make_client"]

log = logging.getLogger(__name__)


def make_client(engine: Any, platform_settings: Any = None) -> Any:
    """The national-platform client of this service (settings ``YIBAO_PLATFORM_*``)."""
    from yibao.envelope.client import NationalClient
    from yibao.envelope.settings import PlatformSettings

    return NationalClient(platform_settings or PlatformSettings(), engine=engine, service="reconciliation")


def _respond(view: View, response: ApiResponse) -> Any:
    if response.is_json:
        return view.json(response.body, status=response.status)
    # the Content-Type goes as a header: aiohttp refuses a charset inside its content_type argument
    return view.bytes(response.body, status=response.status, headers={"Content-Type": response.content_type,
                                                                       **response.headers})


def build(settings: ReconciliationSettings | None = None, *, client: Any = None,
          platform_settings: Any = None) -> ServiceRuntime:
    settings = settings or ReconciliationSettings()
    runtime = ServiceRuntime(settings, name="reconciliation")
    client = client if client is not None else make_client(runtime.engine, platform_settings)
    default_optins = getattr(getattr(client, "settings", None), "mdtrtarea_admvs", None)
    reconciler = Reconciler(runtime.engine, client, settings, default_optins=default_optins,
                            catalog=getattr(client, "catalog", None), on_commit=runtime.relay.wake)
    api = ReconApi(reconciler)
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
                return await handle_command(reconciler, parse_command(ctx.value))

            await runtime.process(ctx, handle)

    @app.task
    async def _housekeeping() -> None:
        """Fail runs whose worker died, and keep the 单边账 gauges fresh."""
        while True:
            try:
                await reconciler.db(lambda conn: fail_stale_runs(conn, settings.run_stale_after_s,
                                                                 prefix=settings.topic_prefix))
                await reconciler.refresh_gauges()
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

    @app.page("/recon/runs")
    class Runs(View):
        async def get(self, request: Any) -> Any:
            return _respond(self, await api.list_runs())

        async def post(self, request: Any) -> Any:
            return _respond(self, await api.create_run(await request.read()))

    @app.page("/recon/runs/{run_id}")
    class Run(View):
        async def get(self, request: Any, run_id: str) -> Any:
            return _respond(self, await api.get_run(run_id))

    @app.page("/recon/runs/{run_id}/approve")
    class Approve(View):
        async def post(self, request: Any, run_id: str) -> Any:
            return _respond(self, await api.decide(run_id, await request.read(), approve=True))

    @app.page("/recon/runs/{run_id}/reject")
    class Reject(View):
        async def post(self, request: Any, run_id: str) -> Any:
            return _respond(self, await api.decide(run_id, await request.read(), approve=False))

    @app.page("/recon/runs/{run_id}/report/{fmt}")
    class Report(View):
        async def get(self, request: Any, run_id: str, fmt: str) -> Any:
            return _respond(self, await api.report(run_id, fmt))

    return runtime


def main() -> int:
    return build().run()

