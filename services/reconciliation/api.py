"""The HTTP API finance uses on the worker's port, free of the web framework so it can be tested on its own.

Every request carries ``Authorization: Bearer <token>`` — an OIDC/JWT access token of the hospital's identity
provider or a static token (:mod:`yibao.reconciliation.auth`). Who acts always comes from the token, never
from the body.

=========================================  ===================  ===============================================
``POST /recon/runs``                       clerk                ``{"date": "2026-11-20", "to"?, "insutype"?,
                                                                "clr_type"?, "scope"?: "mobile"}`` → 202
                                                                ``{run_id, state, links}``;
                                                                409 when refused (the days are being reconciled
                                                                by another run, named in ``message``)
``GET /recon/runs``                        clerk approver ops   the latest runs
``GET /recon/runs/{run_id}``               clerk approver ops   state, progress, differences (psn_no masked
                                                                for ops)
``POST /recon/runs/{run_id}/approve``      approver             ``{"reason": "…", "ids"?: [difference ids]}`` →
                                                                the run; 403 when the approver requested the
                                                                run (four eyes)
``POST /recon/runs/{run_id}/reject``       approver             the same, refusing (to manual handling)
``GET /recon/runs/{run_id}/report/{fmt}``  clerk approver       the report: ``xlsx``, ``html`` or ``json``
``GET /recon/audit``                       approver ops         the latest audit rows (``?run_id=``)
``GET /recon/whoami``                      any                  the caller's user and roles
=========================================  ===================  ===============================================

Errors answer ``{"error": code, "message": …}``: 400 bad request (the field and rule named), 401 no or
invalid credential (``WWW-Authenticate: Bearer``), 403 role missing or four eyes, 404 unknown run or report,
409 refused or nothing to approve, 413 body too large. No request body, however malformed (deep nesting,
``1e999999999``, wrong types, huge), gets a 500.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from yibao.core.privacy import mask_value

from . import audit
from .audit import Actor
from .auth import Authenticator, Principal, authorize, bearer_token
from .errors import ApprovalError, AuthError, FourEyesViolation, NotAuthenticated, RunNotFound
from .models import RunRequest
from .reconciler import Reconciler
from .reports import report_paths

__all__ = ["ApiResponse", "HttpRequest", "ReconApi", "REPORT_TYPES", "BodyError", "read_json_object",
           "RunBody", "DecisionBody", "SECURITY_HEADERS"]

REPORT_TYPES = {
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "html": ("html", "text/html; charset=utf-8"),
    "json": ("json", "application/json"),
}

#: headers on every answer of the API and the console
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any  #: a JSON-able value, or bytes with ``content_type``
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: tuple[str, ...] = ()  #: Set-Cookie values

    @property
    def is_json(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray))

    def encoded(self) -> bytes:
        if self.is_json:
            return json.dumps(self.body, ensure_ascii=False, default=str).encode("utf-8")
        return bytes(self.body)


@dataclass(frozen=True)
class HttpRequest:
    """What the handlers need of a request; the web framework's request is turned into this at the edge."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)  #: lower-case names
    remote: str = "-"
    body: bytes = b""
    cookies: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def source(self) -> str:
        return self.remote or "-"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, {"error": code, "message": message}, headers=headers or {})


def _links(run_id: str) -> dict[str, str]:
    base = f"/recon/runs/{run_id}"
    return {"self": base, "approve": f"{base}/approve", "reject": f"{base}/reject",
            **{f"report_{fmt}": f"{base}/report/{fmt}" for fmt in REPORT_TYPES}}


class BodyError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def read_json_object(body: bytes | str | None, *, max_bytes: int = 65536, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object, or BodyError (400/413) saying what is wrong — never anything else."""
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if len(raw) > max_bytes:
        raise BodyError(413, f"the body is {len(raw)} bytes; at most {max_bytes}")
    if not raw.strip():
        if allow_empty:
            return {}
        raise BodyError(400, "a JSON object is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the body is not UTF-8") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise BodyError(400, "the JSON is nested too deeply") from None
    except ValueError as exc:
        raise BodyError(400, f"the body is not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise BodyError(400, "the body must be a JSON object")
    return data


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 18:
        raise ValueError("an integer of more than 18 digits")
    return int(text)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg')}"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    @classmethod
    def read(cls, data: dict[str, Any]) -> Any:
        if "by" in data or "requested_by" in data or "approved_by" in data:
            raise BodyError(400, "by: who acts is taken from your token; do not send it")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise BodyError(400, _first_error(exc)) from None


class RunBody(_Body):
    """``POST /recon/runs``: a period (whole days) and optional 3201 key filters."""

    date: _dt.date
    to: _dt.date | None = None
    insutype: str | None = Field(None, max_length=6, pattern=r"^[0-9A-Za-z]*$")
    clr_type: str | None = Field(None, max_length=6, pattern=r"^[0-9A-Za-z]*$")
    scope: Literal["national", "mobile"] = "national"

    @field_validator("date", "to", mode="before")
    @classmethod
    def _text_date(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("a date yyyy-MM-dd (text) is required")
        return value


class DecisionBody(_Body):
    """``POST …/approve|reject``: why, and optionally which differences."""

    reason: str = Field(min_length=1, max_length=500)
    ids: list[StrictInt] | None = Field(None, max_length=1000)

    @field_validator("reason", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("the reason must be text")
        return value


def _run_request(body: RunBody, trigger: str, user: str) -> RunRequest:
    try:
        return RunRequest(date_from=body.date, date_to=body.to or body.date, insutype=body.insutype or None,
                          clr_type=body.clr_type or None, trigger=trigger, requested_by=user[:64],  # type: ignore[arg-type]
                          scope=body.scope)
    except ValidationError as exc:
        raise BodyError(400, str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def masked_difference(diff: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A difference as the principal may see it: psn_no masked without the personal.read permission."""
    if principal.can("personal.read"):
        return diff
    return {**diff, "psn_no": mask_value(diff["psn_no"]) if diff.get("psn_no") else diff.get("psn_no")}


class ReconApi:
    def __init__(self, reconciler: Reconciler, authenticator: Authenticator) -> None:
        self.reconciler = reconciler
        self.auth = authenticator
        self.max_body = int(getattr(reconciler.settings, "max_body_bytes", 65536))

    # --- who -------------------------------------------------------------------------------------------------

    async def identify(self, request: HttpRequest) -> Principal:
        token = bearer_token(request.header("authorization"))
        if token is None:
            raise NotAuthenticated("authentication required: send Authorization: Bearer <token>")
        return await self.auth.averify(token)

    async def _audit(self, actor: Actor, action: str, outcome: str, **kw: Any) -> None:
        await self.reconciler.db(lambda conn: audit.record(conn, actor, action, outcome, **kw))

    async def _guard(self, request: HttpRequest, permission: str, action: str, *,
                     run_id: str | None = None) -> tuple[Principal, Actor] | ApiResponse:
        """The principal and the actor of its audit rows, or the 401/403 answer (audited)."""
        try:
            principal = await self.identify(request)
        except NotAuthenticated as exc:
            presented = bool(request.header("authorization"))
            if presented or request.method != "GET":
                await self._audit(audit.ANONYMOUS(request.source), "login_failed" if presented else action,
                                  "denied", run_id=run_id, status=401, detail=f"{request.method} {request.path[:100]}: "
                                  f"{exc}")
            return _error(401, exc.code, str(exc), {"WWW-Authenticate": 'Bearer realm="yibao-reconciliation"'
                                                    + (', error="invalid_token"' if presented else "")})
        actor = Actor(principal.user, principal.roles_text, principal.method, request.source)
        try:
            role = authorize(principal, permission)
        except AuthError as exc:
            await self._audit(actor, action, "denied", run_id=run_id, status=exc.status, detail=str(exc))
            return _error(exc.status, exc.code, str(exc))
        return principal, actor.as_role(role)

    # --- handlers --------------------------------------------------------------------------------------------

    async def whoami(self, request: HttpRequest) -> ApiResponse:
        guard = await self._guard(request, "run.read", "whoami")
        if isinstance(guard, ApiResponse):
            try:  # a user holding none of the reading roles may still ask who they are
                principal = await self.identify(request)
            except AuthError:
                return guard
        else:
            principal = guard[0]
        return ApiResponse(200, {"user": principal.user, "roles": sorted(principal.roles),
                                 "method": principal.method})

    async def create_run(self, request: HttpRequest) -> ApiResponse:
        guard = await self._guard(request, "run.trigger", "trigger")
        if isinstance(guard, ApiResponse):
            return guard
        principal, actor = guard
        try:
            body = RunBody.read(read_json_object(request.body, max_bytes=self.max_body))
            run_request = _run_request(body, "http", principal.user)
        except BodyError as exc:
            await self._audit(actor, "trigger", "refused", status=exc.status, detail=str(exc))
            return _error(exc.status, "bad_request" if exc.status == 400 else "too_large", str(exc))
        run = await self.reconciler.start(run_request, actor=actor)
        body_out = {"run_id": run.run_id, "state": run.state, "message": run.message, "links": _links(run.run_id),
                    "requested_by": run.requested_by}
        return ApiResponse(409 if run.state == "refused" else 202, body_out)

    async def list_runs(self, request: HttpRequest) -> ApiResponse:
        from .runs import list_runs

        guard = await self._guard(request, "run.read", "read")
        if isinstance(guard, ApiResponse):
            return guard
        runs = await self.reconciler.db(lambda conn: list_runs(conn))
        return ApiResponse(200, {"runs": [r.public() for r in runs]})

    async def get_run(self, request: HttpRequest, run_id: str) -> ApiResponse:
        guard = await self._guard(request, "run.read", "read", run_id=run_id)
        if isinstance(guard, ApiResponse):
            return guard
        principal = guard[0]
        try:
            status = await self.reconciler.status(run_id)
        except RunNotFound as exc:
            return _error(404, exc.code, str(exc))
        status["differences"] = [masked_difference(d, principal) for d in status["differences"]]
        status["links"] = _links(run_id)
        return ApiResponse(200, status)

    async def decide(self, request: HttpRequest, run_id: str, *, approve: bool) -> ApiResponse:
        action = "approve" if approve else "reject"
        guard = await self._guard(request, "repair.decide", action, run_id=run_id)
        if isinstance(guard, ApiResponse):
            return guard
        principal, actor = guard
        try:
            body = DecisionBody.read(read_json_object(request.body, max_bytes=self.max_body))
        except BodyError as exc:
            await self._audit(actor, action, "refused", run_id=run_id, status=exc.status, detail=str(exc))
            return _error(exc.status, "bad_request" if exc.status == 400 else "too_large", str(exc))
        return await self.apply_decision(principal, actor, run_id, approve=approve, reason=body.reason, ids=body.ids)

    async def apply_decision(self, principal: Principal, actor: Actor, run_id: str, *, approve: bool, reason: str,
                             ids: list[int] | None) -> ApiResponse:
        """Approve or reject as ``principal`` (the console calls this too); refusals are audited here, the
        decision itself in its own transaction by the reconciler."""
        action = "approve" if approve else "reject"
        decide = self.reconciler.approve if approve else self.reconciler.reject
        try:
            run = await decide(run_id, by=principal.user, reason=reason, ids=ids, actor=actor)
        except RunNotFound as exc:
            return _error(404, exc.code, str(exc))
        except FourEyesViolation as exc:
            await self._audit(actor, action, "refused", run_id=run_id, difference_ids=ids, status=403,
                              detail=str(exc))
            return _error(403, exc.code, str(exc))
        except ApprovalError as exc:
            await self._audit(actor, action, "refused", run_id=run_id, difference_ids=ids, status=409,
                              detail=str(exc))
            return _error(409, exc.code, str(exc))
        return ApiResponse(200, {**run.public(), "links": _links(run_id)})

    def report_file(self, run_id: str, fmt: str) -> Path | None:
        if fmt not in REPORT_TYPES or not run_id or any(c in run_id for c in "/\\\0") or ".." in run_id:
            return None
        paths = report_paths(Path(self.reconciler.settings.reports_dir), run_id)
        path = {"xlsx": paths.xlsx, "html": paths.html, "json": paths.json}[fmt]
        return path if path.is_file() else None

    async def report(self, request: HttpRequest, run_id: str, fmt: str) -> ApiResponse:
        guard = await self._guard(request, "report.download", "report", run_id=run_id)
        if isinstance(guard, ApiResponse):
            return guard
        _principal, actor = guard
        return await self.serve_report(actor, run_id, fmt, status_in_audit=True)

    async def serve_report(self, actor: Actor, run_id: str, fmt: str, *, status_in_audit: bool = True,
                           attachment: bool = False) -> ApiResponse:
        if fmt not in REPORT_TYPES:
            return _error(400, "bad_request", f"report format must be one of {sorted(REPORT_TYPES)}")
        path = self.report_file(run_id, fmt)
        if path is None:
            return _error(404, "recon_report_not_found", f"no {fmt} report for run {run_id[:40]}")
        content = path.read_bytes()
        await self._audit(actor, "report", "ok", run_id=run_id, status=200, detail=f"{fmt}, {len(content)} bytes")
        inline = fmt != "xlsx" and not attachment
        disposition = "inline" if inline else f'attachment; filename="recon-{run_id}.{fmt}"'
        headers = {"Content-Disposition": disposition}
        if fmt == "html":  # the report's own stylesheet is inline; nothing else may load or run
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        return ApiResponse(200, content, REPORT_TYPES[fmt][1], headers)

    async def audit_log(self, request: HttpRequest) -> ApiResponse:
        guard = await self._guard(request, "audit.read", "read")
        if isinstance(guard, ApiResponse):
            return guard
        run_id = request.query.get("run_id") or None
        try:
            limit = max(1, min(1000, int(request.query.get("limit") or 200)))
        except ValueError:
            return _error(400, "bad_request", "limit: an integer is required")
        rows = await self.reconciler.db(lambda conn: audit.recent(conn, limit=limit, run_id=run_id))
        return ApiResponse(200, {"audit": [r.public() for r in rows]})


