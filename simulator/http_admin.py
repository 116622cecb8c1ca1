"""The admin API, on its own port (never mixed with the platform's): read the ledger, read/set faults, read
counters, reset, add persons or institutions, set the platform clock, read the platform's public keys.

    GET  /admin/health                    {"ok": true}
    GET  /admin/ledger                    everything below in one object
    GET  /admin/visits[/{mdtrt_id}]       visits with their fee details
    GET  /admin/settlements               settlement and cancellation entries (status active|cancelled|reversed)
    POST /admin/settlements/bulk          many entries at once: tab-separated text with a header (bulk.py)
    GET  /admin/reversals                 2601 reversals
    GET  /admin/sessions | /admin/messages | /admin/orders | /admin/files
    GET  /admin/persons?limit=N           persons (fictitious data of the run)
    POST /admin/persons                   a person (JSON) or a list of persons
    POST /admin/institutions              {"fixmedins_code": "..."}
    GET  /admin/faults                    rules, counters, calls;   PUT /admin/faults {"rules": ["2207:drop_reply:1"]}
    GET  /admin/counters                  fault counters, calls, gateway refusals, seconds spent in handlers
    POST /admin/reset                     empty the ledger, counters and nonces (persons back to the seed)
    GET  /admin/clock;  PUT /admin/clock  {"now": "2024-05-01 10:00:00", "frozen": false} or {"offset_s": 86400}
    GET  /admin/keys                      platform SM2 public key (hex), WeChat Pay's RSA public key (PEM)
    GET  /admin/wechat                    WeChat Pay's orders, refunds and notifications
    GET  /admin/workinjury                the work-injury platform's state (simulator/workinjury_http.py for the rest)
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from yibao.core import clock

from . import wire, workinjury_http
from .bulk import BulkLoadError, load_settlements
from .errors import SimulatorConfigError
from .population import person_from_any
from .state import jsonable

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["build_admin_app"]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps_bytes(body), status=status, content_type="application/json")


def build_admin_app(sim: Simulator) -> web.Application:
    ledger = sim.ledger
    routes = web.RouteTableDef()

    @routes.get("/admin/health")
    async def health(_: web.Request) -> web.Response:
        return _json({"ok": True})

    @routes.get("/admin/ledger")
    async def whole(_: web.Request) -> web.Response:
        return _json(ledger.snapshot())

    def section(name: str) -> Any:
        async def handler(_: web.Request) -> web.Response:
            return _json(ledger.snapshot()[name])
        return handler

    for name in ("sessions", "visits", "settlements", "reversals", "messages", "orders", "files"):
        routes.get(f"/admin/{name}")(section(name))

    @routes.get("/admin/visits/{mdtrt_id}")
    async def visit(request: web.Request) -> web.Response:
        with ledger.lock:
            found = ledger.visits.get(request.match_info["mdtrt_id"])
            if found is None:
                return _json({"error": "no such visit"}, 404)
            return _json(jsonable(found))

    @routes.post("/admin/settlements/bulk")
    async def bulk_settlements(request: web.Request) -> web.Response:
        try:
            # read from the stream: a bulk body is larger than the admin app's request limit (1 MiB)
            text = (await request.content.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            return _json({"error": "the body is not UTF-8 text"}, 400)
        default = sim.settings.fixmedins_codes[0] if sim.settings.fixmedins_codes else ""
        try:
            loaded = load_settlements(ledger, text.splitlines(), default_fixmedins_code=default)
        except BulkLoadError as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"loaded": loaded, "settlements": len(ledger.settlements)})

    @routes.get("/admin/persons")
    async def persons(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        with ledger.lock:
            return _json([p.public() for p in list(ledger.persons.values())[:limit]])

    @routes.post("/admin/persons")
    async def add_persons(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        items = body if isinstance(body, list) else [body]
        try:
            added = [person_from_any(p) for p in items]
        except Exception:  # noqa: BLE001
            return _json({"error": "a person needs at least psn_no"}, 400)
        for p in added:
            ledger.add_person(p)
        return _json({"added": [p.psn_no for p in added]})

    @routes.post("/admin/institutions")
    async def add_institution(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        code = str(body.get("fixmedins_code", ""))
        if len(code) != 12:
            return _json({"error": "fixmedins_code must be 12 characters"}, 400)
        with ledger.lock:
            ledger.institutions.add(code)
        return _json({"institutions": sorted(ledger.institutions)})

    @routes.get("/admin/faults")
    async def faults(_: web.Request) -> web.Response:
        return _json(sim.faults.describe())

    @routes.put("/admin/faults")
    async def set_faults(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        try:
            sim.faults.set_rules([str(r) for r in body.get("rules", [])])
        except SimulatorConfigError as exc:
            return _json({"error": str(exc)}, 400)
        return _json(sim.faults.describe())

    @routes.get("/admin/callback-url")
    async def callback_url(_: web.Request) -> web.Response:
        return _json({"url": sim.callbacks.callback_url})

    @routes.put("/admin/callback-url")
    async def set_callback_url(request: web.Request) -> web.Response:
        """Where the settlement-result callbacks of orders settled from now on go ("": none are sent)."""
        body = wire.loads(await request.read())
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
            return _json({"error": "url: an http:// or https:// URL, or \"\" to send no callbacks"}, 400)
        sim.callbacks.callback_url = url
        return _json({"url": url})

    @routes.get("/admin/counters")
    async def counters(_: web.Request) -> web.Response:
        described = sim.faults.describe()
        return _json({"faults": described["counters"], "calls": described["calls"],
                      "gateway_refusals": {str(k): v for k, v in sim.gateway_refusals.items()},
                      "handler_seconds": {k: Decimal(f"{v:.6f}") for k, v in sim.handler_seconds.items()}})

    @routes.post("/admin/reset")
    async def reset(_: web.Request) -> web.Response:
        sim.reset()
        return _json({"reset": True})

    @routes.get("/admin/clock")
    async def get_clock(_: web.Request) -> web.Response:
        return _json(sim.clock.describe())

    @routes.put("/admin/clock")
    async def set_clock(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        if body.get("now"):
            sim.clock.set(clock.parse_datetime(str(body["now"])), frozen=bool(body.get("frozen")))
        else:
            sim.clock.set(offset_s=float(body.get("offset_s", 0)))
        return _json(sim.clock.describe())

    @routes.get("/admin/keys")
    async def keys(_: web.Request) -> web.Response:
        return _json({"platform_public_key": sim.platform_public_key_hex,
                      "wechat_public_key_pem": sim.wechat.public_pem})

    @routes.get("/admin/wechat")
    async def wechat(_: web.Request) -> web.Response:
        with ledger.lock:
            return _json(jsonable({"orders": list(sim.wechat.orders.values()),
                                   "refunds": list(sim.wechat.refunds.values()),
                                   "notifications": sim.wechat.notifications}))

    workinjury_http.add_admin_routes(routes, sim)
    from .http_uploads import install_admin  # the upload side: uploads, catalogs, other targets

    install_admin(routes, sim)
    app = web.Application()
    app.add_routes(routes)
    return app
