"""The counter's HTTP endpoints, on the worker's own web port (faust's web server, beside /metrics and /readyz):

    POST /counter/query                          a CounterRequest (correlation_id optional) → the CounterAnswer:
                                                 200 ok · 400 invalid (``field`` names it) · 408 expired ·
                                                 422 rejected (the platform's reason) · 502 failed · 504 timeout
    GET  /counter/slips?his_visit_id=V           the slips of a visit (links)
    GET  /counter/slips/{setl_id}/html | /pdf    the slip, printable
    GET  /counter/batches/template               the 核酸 workbook template (.xlsx)
    POST /counter/batches                        import a workbook (body: the .xlsx; X-File-Name) — lab, finance
    GET  /counter/batches/{batch_id}             progress and per-row outcome (JSON) — lab, finance, ops (masked)
    GET  /counter/batches/{batch_id}/export      the per-row outcome as .xlsx — lab, finance

Batch endpoints need ``Authorization: Bearer <token>`` (:mod:`yibao.counter.access`); every such request, allowed
or refused, is an audit row. Errors are JSON ``{"error": ...}`` naming what is wrong, never a 500 for input.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from yibao.core.access import ANONYMOUS, Actor, AuthError, Authenticator, NotAuthenticated, bearer_token
from yibao.core.errors import InputError
from yibao.core.web import BadRequest, read_body, read_json_object
from yibao.counter import access, batch, slips
from yibao.counter.config import CounterConfig
from yibao.counter.errors import BatchFileError
from yibao.counter.metrics import BATCH_ROWS, SLIPS
from yibao.counter.models import CounterRequest
from yibao.counter.queries import QueryService
from yibao.hisevents.models import validation_reason

__all__ = ["Response", "CounterApi", "install", "STATUS_OF"]

log = logging.getLogger(__name__)

#: the HTTP status of an answer's status
STATUS_OF = {"ok": 200, "invalid": 400, "expired": 408, "rejected": 422, "failed": 502, "timeout": 504}
MAX_QUERY_BODY = 64 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Response:
    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False, default=str).encode()


class CounterApi:
    """The handlers, plain async functions of what the request carries (tested without a server)."""

    def __init__(self, db: Callable[[Callable[[Any], Any]], Awaitable[Any]], queries: QueryService,
                 config: CounterConfig, auth: Authenticator, *, topic_prefix: str = "") -> None:
        self.db, self.queries, self.config, self.auth, self.topic_prefix = db, queries, config, auth, topic_prefix

    # --- queries ------------------------------------------------------------------------------------------------
    async def query(self, body: bytes) -> Response:
        try:
            data = read_json_object(body, max_bytes=MAX_QUERY_BODY)
        except BadRequest as exc:
            return Response(exc.status, {"error": str(exc)})
        data.setdefault("correlation_id", f"http-{secrets.token_hex(8)}")
        try:
            request = CounterRequest.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            return Response(400, {"error": validation_reason(exc),
                                  "field": ".".join(str(p) for p in first["loc"]) or None})
        answer = await self.queries.answer(request)
        return Response(STATUS_OF[answer.status], json.loads(answer.to_json()))

    # --- slips ----------------------------------------------------------------------------------------------------
    async def slips_of_visit(self, query: dict[str, str]) -> Response:
        visit = (query.get("his_visit_id") or "").strip()
        if not visit or len(visit) > 64:
            return Response(400, {"error": "his_visit_id: required (the HIS visit id, at most 64 characters)"})
        return Response(200, {"his_visit_id": visit, "slips": await self.db(lambda c: slips.slips_of_visit(c, visit))})

    async def slip(self, setl_id: str, fmt: str) -> Response:
        if len(setl_id) > 64:
            return Response(400, {"error": "setl_id: at most 64 characters"})
        slip = await self.db(lambda c: slips.slip_of(c, setl_id))
        if slip is None:
            return Response(404, {"error": f"setl_id: no settlement {setl_id} known to the counter"})
        SLIPS.labels(fmt).inc()
        hospital = self.config.fixmedins_name or self.config.fixmedins_code
        if fmt == "pdf":
            pdf = slips.render_pdf(slip, title=self.config.slip_title, hospital=hospital)
            return Response(200, pdf, "application/pdf",
                            {"Content-Disposition": f'inline; filename="slip-{setl_id}.pdf"'})
        return Response(200, slips.render_html(slip, title=self.config.slip_title, hospital=hospital),
                        "text/html; charset=utf-8")

    # --- 核酸 batches ---------------------------------------------------------------------------------------------
    async def template(self) -> Response:
        return Response(200, batch.template_workbook(), XLSX,
                        {"Content-Disposition": 'attachment; filename="nucleic-acid-template.xlsx"'})

    async def _guard(self, headers: dict[str, str], source: str, permission: str, action: str,
                     batch_id: str | None = None) -> Actor | Response:
        try:
            token = bearer_token(headers.get("authorization"))
            if token is None:
                raise NotAuthenticated("authentication required: send Authorization: Bearer <token>")
            principal = await self.auth.averify(token)
        except NotAuthenticated as exc:
            await self.db(lambda c: access.record(c, ANONYMOUS(source), "login_failed", "denied", batch_id=batch_id,
                                                  status=401, detail=f"{action}: {exc}"))
            return Response(401, {"error": str(exc)}, headers={"WWW-Authenticate": "Bearer"})
        try:
            role = access.POLICY.authorize(principal, permission)
        except AuthError as exc:
            actor = Actor(principal.user, access.POLICY.roles_text(principal), principal.method, source)
            await self.db(lambda c: access.record(c, actor, action, "denied", batch_id=batch_id, status=403,
                                                  detail=str(exc)))
            return Response(403, {"error": str(exc)})
        return Actor(principal.user, role, principal.method, source)

    async def import_batch(self, headers: dict[str, str], source: str, body: bytes) -> Response:
        guard = await self._guard(headers, source, "batch.import", "batch_import")
        if isinstance(guard, Response):
            return guard
        actor = guard
        name = (headers.get("x-file-name") or "batch.xlsx")[:200]
        if not body:
            await self.db(lambda c: access.record(c, actor, "batch_import", "refused", status=400,
                                                  detail="empty body"))
            return Response(400, {"error": "the body is empty: send the .xlsx file"})

        def unit(conn: Any) -> batch.ImportReport:
            report = batch.import_batch(conn, self.config, body, name, by=actor.user, prefix=self.topic_prefix)
            access.record(conn, actor, "batch_import", "ok", batch_id=report.batch_id,
                          status=200 if report.repeated else 201,
                          detail=f"{name}: {len(report.accepted)} accepted, {len(report.bad)} bad, "
                                 f"{len(report.duplicates)} duplicate{' (the same file again)' if report.repeated else ''}")
            return report

        try:
            report = await self.db(unit)
        except BatchFileError as exc:
            await self.db(lambda c: access.record(c, actor, "batch_import", "refused", status=400,
                                                  detail=f"{name}: {exc}"))
            return Response(400, {"error": str(exc)})
        BATCH_ROWS.labels("imported").inc(len(report.accepted))
        BATCH_ROWS.labels("bad").inc(len(report.bad))
        BATCH_ROWS.labels("duplicate").inc(len(report.duplicates))
        return Response(200 if report.repeated else 201, report.public())

    async def batch(self, headers: dict[str, str], source: str, batch_id: str) -> Response:
        guard = await self._guard(headers, source, "batch.read", "batch_read", batch_id)
        if isinstance(guard, Response):
            return guard
        personal = "personal.read" in access.PERMISSIONS and guard.role in access.PERMISSIONS["personal.read"]
        progress = await self.db(lambda c: batch.batch_progress(c, batch_id, personal=personal))
        if progress is None:
            return Response(404, {"error": f"batch_id: no batch {batch_id[:40]}"})
        return Response(200, progress)

    async def export(self, headers: dict[str, str], source: str, batch_id: str) -> Response:
        guard = await self._guard(headers, source, "batch.export", "batch_export", batch_id)
        if isinstance(guard, Response):
            return guard
        actor = guard

        def unit(conn: Any) -> dict[str, Any] | None:
            progress = batch.batch_progress(conn, batch_id, personal=True)
            access.record(conn, actor, "batch_export", "ok" if progress else "refused", batch_id=batch_id,
                          status=200 if progress else 404)
            return progress

        progress = await self.db(unit)
        if progress is None:
            return Response(404, {"error": f"batch_id: no batch {batch_id[:40]}"})
        return Response(200, batch.export_workbook(progress), XLSX,
                        {"Content-Disposition": f'attachment; filename="{batch_id}.xlsx"'})


def _source(request: Any) -> str:
    peer = request.remote or "-"
    forwarded = request.headers.get("X-Forwarded-For")
    return f"{peer} (for {forwarded[:120]})" if forwarded else peer


def install(app: Any, api: CounterApi, *, max_batch_bytes: int) -> None:
    """Add the endpoints to a faust app's web server."""
    from aiohttp import web
    from faust.web import View

    def respond(r: Response) -> Any:
        return web.Response(body=r.encoded(), status=r.status, headers={"Content-Type": r.content_type,
                                                                         "X-Content-Type-Options": "nosniff",
                                                                         **r.headers})

    def mount(path: str, name: str, **methods: Callable[..., Awaitable[Response]]) -> None:
        async def serve(self: Any, request: Any, **params: str) -> Any:
            handler = methods[request.method.lower()]
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                body = b""
                if request.method == "POST":
                    limit = max_batch_bytes if name == "counter_batches" else MAX_QUERY_BODY
                    body = await read_body(request, max_bytes=limit)
                return respond(await handler(body=body, headers=headers, query=dict(request.query),
                                             source=_source(request), **params))
            except BadRequest as exc:
                return respond(Response(exc.status, {"error": str(exc)}))
            except InputError as exc:
                return respond(Response(400, {"error": str(exc)}))

        app.page(path, name=name)(type(f"View_{name}", (View,), {m: serve for m in methods}))

    mount("/counter/query", "counter_query", post=lambda body, **_: api.query(body))
    mount("/counter/slips", "counter_slips", get=lambda query, **_: api.slips_of_visit(query))
    mount("/counter/slips/{setl_id}/html", "counter_slip_html", get=lambda setl_id, **_: api.slip(setl_id, "html"))
    mount("/counter/slips/{setl_id}/pdf", "counter_slip_pdf", get=lambda setl_id, **_: api.slip(setl_id, "pdf"))
    mount("/counter/batches/template", "counter_template", get=lambda **_: api.template())
    mount("/counter/batches", "counter_batches",
          post=lambda body, headers, source, **_: api.import_batch(headers, source, body))
    mount("/counter/batches/{batch_id}", "counter_batch",
          get=lambda headers, source, batch_id, **_: api.batch(headers, source, batch_id))
    mount("/counter/batches/{batch_id}/export", "counter_batch_export",
          get=lambda headers, source, batch_id, **_: api.export(headers, source, batch_id))
