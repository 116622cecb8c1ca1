"""The admin routes of the upload side (national uploads and catalogs, the other targets), added to the admin app
by :func:`yibao.simulator.http_admin.build_admin_app`:

    GET  /admin/uploads                 national upload records (content, versions, validity) and submissions
    GET  /admin/catalogs                catalog generation (versions, rows, max_versions_per_file, corrupt)
    PUT  /admin/catalogs                {"1301": {"versions": 5, "rows": 100, "corrupt": {"kind": "columns", "line": 7}}}
    GET  /admin/catalogs/codes?infno=1301&limit=100   valid 医疗目录编码 (for 3301)
    GET  /admin/targets                 the other targets' records, submissions, tasks
    PUT  /admin/targets                 {"task_polls": 3, "expire_tokens": true, "credentials": {...}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import targets, uploads, wire

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["install_admin"]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps_bytes(body), status=status, content_type="application/json")


def install_admin(routes: web.RouteTableDef, sim: Simulator) -> None:
    ledger = sim.ledger

    @routes.get("/admin/uploads")
    async def get_uploads(_: web.Request) -> web.Response:
        return _json(uploads.admin_snapshot(ledger))

    @routes.get("/admin/catalogs")
    async def get_catalogs(_: web.Request) -> web.Response:
        return _json(uploads.admin_catalogs(ledger))

    @routes.put("/admin/catalogs")
    async def put_catalogs(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        if not isinstance(body, dict):
            return _json({"error": "a JSON object of catalogs"}, 400)
        return _json(uploads.admin_set_catalogs(ledger, body))

    @routes.get("/admin/catalogs/codes")
    async def codes(request: web.Request) -> web.Response:
        infno = request.query.get("infno", "1301")
        if infno not in uploads.LAYOUTS:
            return _json({"error": "infno: a file catalog"}, 400)
        return _json(uploads.valid_codes(ledger, infno, int(request.query.get("limit", "100"))))

    @routes.get("/admin/targets")
    async def get_targets(_: web.Request) -> web.Response:
        return _json(targets.admin_snapshot(ledger))

    @routes.put("/admin/targets")
    async def put_targets(request: web.Request) -> web.Response:
        body = wire.loads(await request.read())
        if not isinstance(body, dict):
            return _json({"error": "a JSON object"}, 400)
        return _json(targets.admin_update(ledger, body))
