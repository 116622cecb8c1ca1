"""The work-injury platform's HTTP faces: ``POST <wi_path_prefix><GYxxx>`` (the envelope, faults applied around
the business layer as on the national side) and its admin routes.

    GET  /admin/workinjury                    the platform's state (counts, statuses; no personal data but tails)
    POST /admin/workinjury/offer              {"infno": "GYD001", "records": [...]}: records to be downloaded
    POST /admin/workinjury/filings            an approved filing (or a list) the platform holds already
    GET  /admin/workinjury/journal/{trans_no} what the platform answered to one serial (as GYD053 would)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import wire
from .state import jsonable
from .workinjury import WorkInjuryRefusal

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["handle", "add_admin_routes", "SIMULATED_BUSINESS_ERROR"]

SIMULATED_BUSINESS_ERROR = "模拟业务错误 (simulated business error)"
_JSON = "application/json;charset=UTF-8"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps_bytes(body), status=status, headers={"Content-Type": _JSON})


async def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


async def handle(sim: Simulator, request: web.Request, path_infno: str) -> web.StreamResponse:
    """One work-injury request: faults before, the business layer, faults after (the work is then done)."""
    platform = sim.workinjury
    try:
        envelope = wire.loads(await request.read())
    except Exception:  # noqa: BLE001 - unreadable body
        return _json(platform.clear_error("请求报文不是JSON"))
    decision = sim.faults.decide(path_infno or "?")
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    if decision.before == "reset":
        return await _drop(request)
    if decision.before == "http_5xx":
        return web.Response(status=decision.status, text="simulated gateway failure")
    forced = SIMULATED_BUSINESS_ERROR if decision.before == "business_error" else None
    reply, _, _ = platform.handle(envelope, path_infno, forced_error=forced)
    if decision.after == "drop_reply":
        await _drop(request)
    if decision.after == "commit_then_timeout":
        await asyncio.sleep(sim.settings.hold_s)
        await _drop(request)
    return _json(reply)


def add_admin_routes(routes: web.RouteTableDef, sim: Simulator) -> None:
    platform = sim.workinjury

    @routes.get("/admin/workinjury")
    async def state(_: web.Request) -> web.Response:
        return _json(jsonable(platform.snapshot()))

    @routes.post("/admin/workinjury/offer")
    async def offer(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        try:
            ids = platform.offer(str(body.get("infno", "")), list(body.get("records") or []))
        except (WorkInjuryRefusal, KeyError, TypeError) as exc:
            return _json({"error": f"cannot offer these records: {exc}"}, 400)
        return _json({"offered": ids})

    @routes.post("/admin/workinjury/filings")
    async def filings(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        items = body if isinstance(body, list) else [body]
        try:
            for item in items:
                platform.add_filing(dict(item))
        except (KeyError, TypeError):
            return _json({"error": "a filing needs filing_no, certno, psn_no, mdtrt_admdvs, org_type, begin_date, "
                                   "end_date"}, 400)
        return _json({"filings": len(platform.filings)})

    @routes.get("/admin/workinjury/journal/{trans_no}")
    async def journal(request: web.Request) -> web.Response:
        known = platform.journal.get(request.match_info["trans_no"])
        if known is None:
            return _json({"error": "no such serial"}, 404)
        return _json(jsonable({"infno": known.infno, "at": known.at, "infcode": known.infcode,
                               "err_msg": known.err_msg, "output": known.output}))
