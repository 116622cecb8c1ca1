"""How a call ended, decided from what httpx raised or what HTTP status came back.

The one question that matters: **could the platform have acted on the request?**

TransportError — no, nothing was processed; safe to send again (the client retries it for every transaction,
with the same msgid):

* ``httpx.ConnectError`` / ``ConnectTimeout`` (refused, unreachable, DNS failure, TLS handshake failure),
  ``httpx.PoolTimeout`` (no connection was free; nothing written), ``UnsupportedProtocol``, ``ProxyError``,
  ``LocalProtocolError`` (h11 refused to write our request);
* HTTP statuses in ``PlatformSettings.not_processed_statuses`` — by default 408 (the server gave up waiting
  for the request), 429 (rate limited before forwarding) and 503 (the gateway has no platform to forward to) —
  unless the body is a platform envelope, which then speaks for itself;
* other 4xx answers that are not a platform envelope (404 wrong path, 413 too large …) are
  :class:`GatewayRefusal`: not processed either, but sending the same request again cannot help, so it is not
  retried.

UnknownOutcome — maybe; never resend a state-changing request, resolve by query or 冲正 2601:

* ``httpx.ReadTimeout``, ``ReadError``, ``RemoteProtocolError`` (connection reset or closed after the request
  was written), ``WriteTimeout`` / ``WriteError`` (part of the request may have been delivered — we do not bet
  a settlement on how much), ``DecodingError`` and any other transport failure we cannot place;
* HTTP 500, 502, 504 and every other 5xx not listed above: a gateway or platform failed somewhere *after*
  accepting the request (504 means it forwarded and got no answer in time);
* a 2xx body that is not a JSON envelope with a readable infcode, or whose encrypted output cannot be
  decrypted or verified.

GatewayAuthError — HTTP 401 and 403: the gateway refused our credentials or signature; nothing processed,
and nothing will be until the configuration is fixed (not retried).

A non-2xx answer whose body *is* a platform envelope with a non-zero infcode is a BusinessRejection: the
platform said no in its own words.
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

from yibao.envelope.errors import (
    BusinessRejection,
    EnvelopeValidationError,
    GatewayAuthError,
    PlatformError,
    TransportError,
    UnknownOutcome,
)

__all__ = [
    "GatewayRefusal",
    "NOT_SENT_ERRORS",
    "classify_exception",
    "classify_status",
    "outcome_label",
    "is_retryable_transport",
]


class GatewayRefusal(TransportError):
    """A 4xx answer that is not a platform envelope: nothing processed, and resending cannot help."""

    code = "gateway_refusal"


#: httpx errors raised before any byte of the request left this process
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.LocalProtocolError,
)


def classify_exception(exc: Exception, infno: str, msgid: str | None) -> PlatformError:
    """The outcome exception for an httpx failure (see the module docstring for the table)."""
    name = type(exc).__name__
    if isinstance(exc, NOT_SENT_ERRORS):
        return TransportError(infno, f"not sent ({name})", msgid=msgid)
    if isinstance(exc, httpx.TimeoutException):
        return UnknownOutcome(infno, msgid, f"no reply in time after sending ({name})")
    return UnknownOutcome(infno, msgid, f"connection failed after sending ({name})")


def classify_status(status: int, infno: str, msgid: str | None,
                    not_processed: Collection[int]) -> PlatformError | None:
    """The outcome for a non-2xx status whose body is not a platform envelope; None for 2xx."""
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return GatewayAuthError(f"{infno}: the gateway refused our credentials (HTTP {status})")
    if status in not_processed:
        return TransportError(infno, f"HTTP {status}: the gateway did not forward the request", msgid=msgid)
    if 400 <= status < 500:
        return GatewayRefusal(infno, f"HTTP {status}: refused before reaching the platform", msgid=msgid)
    return UnknownOutcome(infno, msgid, f"HTTP {status} after the request was accepted")


def is_retryable_transport(exc: BaseException) -> bool:
    return isinstance(exc, TransportError) and not isinstance(exc, GatewayRefusal)


def outcome_label(exc: BaseException | None) -> str:
    """The ``outcome`` written to metrics and to platform_calls."""
    if exc is None:
        return "success"
    declared = getattr(type(exc), "outcome", None)
    if isinstance(declared, str):
        return declared
    if isinstance(exc, BusinessRejection):
        return "rejected"
    if isinstance(exc, EnvelopeValidationError):
        return "invalid"
    if isinstance(exc, UnknownOutcome):
        return "unknown"
    if isinstance(exc, GatewayAuthError):
        return "gateway_auth"
    if isinstance(exc, TransportError):
        return "transport"
    return "error"
