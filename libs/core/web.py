"""Requests to a worker's web port: bodies read safely, errors answered as JSON, never a 500 for bad input.

Every worker serves its endpoints on faust's aiohttp server (``/metrics``, ``/healthz``, ``/readyz`` and a
service's own, such as registration's 诊查费 quote). This module is the one place that decides how a request
body is read and how an error is answered:

* :func:`read_json_object` reads a JSON object from a body with limits a hostile or broken client cannot get
  past: size, nesting depth, number length and exponent (``1e999999999``), no ``NaN``/``Infinity``, no
  duplicate keys, UTF-8 only. Numbers with a fraction or an exponent are read as exact :class:`~decimal.Decimal`.
  It raises :class:`BadRequest` (an :class:`~yibao.core.errors.InputError`) with the HTTP status and a message
  naming what is wrong — never the value.
* :func:`error_middleware` (installed on every worker by :class:`~yibao.core.runtime.ServiceRuntime`) answers
  ``{"error": "..."}``: :class:`BadRequest` with its status; aiohttp's own 4xx (a body over the size limit, an
  unknown path, a method not allowed) with theirs; input that slipped past a handler's validation and broke the
  arithmetic or the parser (``decimal.InvalidOperation``, ``RecursionError``) with 400; anything else with 500
  ``internal error`` and the details (masked) in the log only.
"""

from __future__ import annotations

import decimal
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from yibao.core.errors import InputError

__all__ = ["BadRequest", "read_body", "read_json_object", "error_middleware", "json_error", "LIMITS",
           "MAX_BODY_BYTES"]

log = logging.getLogger(__name__)

#: the default largest body a JSON endpoint reads
MAX_BODY_BYTES = 64 * 1024


class BadRequest(InputError):
    """A request a client must fix; ``status`` is the HTTP status to answer with (400, 413, 415 …)."""

    code = "bad_request"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Limits:
    max_depth = 32
    #: digits of a number (integer part and fraction together)
    max_digits = 40
    #: |exponent| of a number written with one (1e30 is fine, 1e999999999 is not)
    max_exponent = 60


LIMITS = _Limits()


def _depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` (strings skipped), in one linear pass."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _number(text: str) -> Decimal | int:
    mantissa, _, exponent = text.lower().partition("e")
    digits = sum(c.isdigit() for c in mantissa)
    if digits > LIMITS.max_digits:
        raise BadRequest(f"a number has more than {LIMITS.max_digits} digits")
    if exponent and (len(exponent.lstrip("+-")) > 4 or abs(int(exponent)) > LIMITS.max_exponent):
        raise BadRequest(f"a number's exponent is beyond ±{LIMITS.max_exponent}")
    return Decimal(text) if ("." in text or exponent) else int(text)


def _constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a number JSON allows")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"field {key[:40]!r} is given twice")
        result[key] = value
    return result


def read_json_object(body: bytes | None, *, max_bytes: int = MAX_BODY_BYTES, what: str = "body") -> dict[str, Any]:
    """The JSON object in ``body``, or :class:`BadRequest` saying what is wrong with it."""
    if body is None or not body.strip():
        raise BadRequest(f"the {what} is empty: send a JSON object")
    if len(body) > max_bytes:
        raise BadRequest(f"the {what} is larger than {max_bytes} bytes", status=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the {what} is not UTF-8 text") from None
    if _depth_exceeds(text, LIMITS.max_depth):
        raise BadRequest(f"the {what} nests arrays/objects deeper than {LIMITS.max_depth} levels")
    try:
        data = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_constant,
                          object_pairs_hook=_object)
    except BadRequest:
        raise
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise BadRequest(f"the {what} nests too deep") from None
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BadRequest(f"the {what} is not valid JSON{where}") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(data), "a number")
        raise BadRequest(f"the {what} must be a JSON object, not {kind}")
    return data


async def read_body(request: Any, *, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The body of an aiohttp request, refused with 413 as soon as it is known to exceed ``max_bytes``."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BadRequest(f"the body is larger than {max_bytes} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(f"the body is larger than {max_bytes} bytes", status=413)
        chunks.append(chunk)


def json_error(status: int, message: str) -> Any:
    from aiohttp import web

    return web.json_response({"error": message}, status=status)


Handler = Callable[[Any], Awaitable[Any]]


def _middleware() -> Any:
    from aiohttp import web

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> Any:
        try:
            return await handler(request)
        except BadRequest as exc:
            return json_error(exc.status, str(exc))
        except web.HTTPException as exc:
            if exc.status >= 400:
                return json_error(exc.status, exc.reason or "request refused")
            raise
        except (decimal.InvalidOperation, decimal.Overflow, RecursionError, UnicodeError) as exc:
            log.warning("request refused: input a handler did not check", extra={"fields": {
                "path": request.path, "method": request.method, "error": type(exc).__name__}})
            return json_error(400, f"the request could not be read ({type(exc).__name__})")
        except Exception as exc:
            from yibao.core.privacy import mask_text

            log.error("request failed", extra={"fields": {"path": request.path, "method": request.method,
                                                          "error": mask_text(f"{type(exc).__name__}: {exc}")}})
            return json_error(500, "internal error")

    return errors


#: aiohttp middleware answering every error as JSON (see the module documentation)
error_middleware = _middleware()
