"""Errors of libs/envelope: every way a platform call can end other than success.

The classification matters more than the message: a caller must never confuse

* :class:`EnvelopeValidationError` — refused here, nothing was sent; fix the input;
* :class:`BusinessRejection` — the platform said no (infcode -1); the err_msg goes back to HIS;
* :class:`TransportError` — nothing reached the platform (connect refused, DNS, TLS before sending, a gateway
  5xx that proves the request was not processed); safe to retry;
* :class:`UnknownOutcome` — the request may have been processed and the answer is lost (timeout after sending,
  connection reset, unreadable reply). For a settlement this demands a status query (5203) or 冲正 (2601) with
  the original msgid; it must never be retried blindly.
"""

from __future__ import annotations

from yibao.core.errors import PlatformError

__all__ = [
    "PlatformError",
    "EnvelopeValidationError",
    "BusinessRejection",
    "TransportError",
    "UnknownOutcome",
    "GatewayAuthError",
    "CryptoError",
    "SignatureError",
    "CatalogError",
    "FileTransferError",
]


class EnvelopeValidationError(PlatformError):
    """Input refused before sending. Names the transaction, the field path and the rule broken."""

    code = "invalid_input"

    def __init__(self, infno: str, path: str, rule: str, detail: str = "") -> None:
        self.infno = infno
        self.path = path
        self.rule = rule
        self.detail = detail
        text = f"{infno}: {path}: {rule}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class BusinessRejection(PlatformError):
    """The platform answered with a failure code (infcode -1, or a mobile-pay/work-injury failure code)."""

    code = "rejected"

    def __init__(self, infno: str, err_msg: str, *, infcode: str = "-1", msgid: str | None = None,
                 response: dict | None = None) -> None:
        self.infno = infno
        self.err_msg = err_msg
        self.infcode = infcode
        self.msgid = msgid
        self.response = response
        super().__init__(f"{infno} rejected by the platform: {err_msg}")


class TransportError(PlatformError):
    """Nothing reached the platform; the call may be retried as it is."""

    code = "transport"

    def __init__(self, infno: str, detail: str, *, msgid: str | None = None) -> None:
        self.infno = infno
        self.msgid = msgid
        self.detail = detail
        super().__init__(f"{infno} not delivered: {detail}")


class UnknownOutcome(PlatformError):
    """Sent, but whether the platform acted is unknown. Resolve with a query or 冲正 2601 (omsgid = msgid)."""

    code = "unknown_outcome"

    def __init__(self, infno: str, msgid: str | None, detail: str) -> None:
        self.infno = infno
        self.msgid = msgid
        self.detail = detail
        super().__init__(f"{infno} outcome unknown (msgid {msgid}): {detail}")


class GatewayAuthError(PlatformError):
    """The gateway refused our credentials or signature (HTTP 401/403 or a gateway error body)."""

    code = "gateway_auth"


class CryptoError(PlatformError):
    """A key, ciphertext or padding could not be used (wrong key, tampered data, bad format)."""

    code = "crypto"


class SignatureError(CryptoError):
    """A signature did not verify: the message must not be believed."""

    code = "bad_signature"


class CatalogError(PlatformError):
    """The transaction catalog (data files or a province override) is inconsistent."""

    code = "catalog"


class FileTransferError(PlatformError):
    """9101/9102: an upload or download failed, or a download returned an error body instead of a file."""

    code = "file_transfer"
