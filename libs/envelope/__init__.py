"""yibao.envelope — every platform message built, validated, signed, encrypted, sent and understood here.

The public API is listed in ``__all__`` and loaded lazily (PEP 562): ``import yibao.envelope`` stays cheap, and
``from yibao.envelope import NationalClient`` imports only what the client needs.

National platform::

    from yibao.envelope import NationalClient, PlatformSettings

    async with NationalClient(PlatformSettings(), engine=engine, service="settlement") as client:
        msgid = await client.allocate_msgid()          # persist it first when the call changes state
        response = await client.call("2207", payload, msgid=msgid, visit_key=visit, insuplc_admdvs=admdvs)

Outcomes (:mod:`yibao.envelope.errors`): a Response, or EnvelopeValidationError (nothing sent),
BusinessRejection (infcode -1), TransportError (nothing reached the platform), UnknownOutcome (resolve by query
or ``client.reverse``), GatewayAuthError.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    # client and settings
    "NationalClient",
    "TransactionPolicy",
    "PlatformSettings",
    "Response",
    "UploadResult",
    # errors
    "PlatformError",
    "EnvelopeValidationError",
    "BusinessRejection",
    "TransportError",
    "UnknownOutcome",
    "GatewayAuthError",
    "GatewayRefusal",
    "CryptoError",
    "SignatureError",
    "CatalogError",
    "FileTransferError",
    "FileErrorReply",
    "SignInError",
    "MsgidLeaseError",
    # msgid, sign-in, call log, metrics
    "MsgidAllocator",
    "format_msgid",
    "parse_msgid",
    "SigninManager",
    "SigninStore",
    "CallLog",
    "CallRecord",
    "record_call",
    # national wire format
    "Sender",
    "build_request",
    "encode_input",
    "encode_envelope",
    "parse_reply",
    "to_response",
    "GatewaySigner",
    "PlainGateway",
    "TifSigner",
    "ApiSigner",
    "EncryptedSigner",
    "make_signer",
    "dumps",
    "loads",
    "parse_txt",
    "parse_download",
    "unpack_zip",
    "format_txt",
    "build_zip",
    # catalog and crypto (their own modules)
    "Catalog",
    "sm3",
    "sm4_ecb_encrypt",
    "sm4_ecb_decrypt",
    "get_backend",
    "sign_b64",
    "verify_b64",
]

_WHERE: dict[str, str] = {
    "NationalClient": "yibao.envelope.client",
    "TransactionPolicy": "yibao.envelope.client",
    "PlatformSettings": "yibao.envelope.settings",
    "Response": "yibao.envelope.national.envelope",
    "UploadResult": "yibao.envelope.national.files",
    "PlatformError": "yibao.envelope.errors",
    "EnvelopeValidationError": "yibao.envelope.errors",
    "BusinessRejection": "yibao.envelope.errors",
    "TransportError": "yibao.envelope.errors",
    "UnknownOutcome": "yibao.envelope.errors",
    "GatewayAuthError": "yibao.envelope.errors",
    "GatewayRefusal": "yibao.envelope.national.outcomes",
    "CryptoError": "yibao.envelope.errors",
    "SignatureError": "yibao.envelope.errors",
    "CatalogError": "yibao.envelope.errors",
    "FileTransferError": "yibao.envelope.errors",
    "FileErrorReply": "yibao.envelope.national.files",
    "SignInError": "yibao.envelope.signin",
    "MsgidLeaseError": "yibao.envelope.msgid",
    "MsgidAllocator": "yibao.envelope.msgid",
    "format_msgid": "yibao.envelope.msgid",
    "parse_msgid": "yibao.envelope.msgid",
    "SigninManager": "yibao.envelope.signin",
    "SigninStore": "yibao.envelope.signin",
    "CallLog": "yibao.envelope.calllog",
    "CallRecord": "yibao.envelope.calllog",
    "record_call": "yibao.envelope.metrics",
    "Sender": "yibao.envelope.national.envelope",
    "build_request": "yibao.envelope.national.envelope",
    "encode_input": "yibao.envelope.national.envelope",
    "encode_envelope": "yibao.envelope.national.envelope",
    "parse_reply": "yibao.envelope.national.envelope",
    "to_response": "yibao.envelope.national.envelope",
    "GatewaySigner": "yibao.envelope.national.gateways",
    "PlainGateway": "yibao.envelope.national.gateways",
    "TifSigner": "yibao.envelope.national.gateways",
    "ApiSigner": "yibao.envelope.national.gateways",
    "EncryptedSigner": "yibao.envelope.national.gateways",
    "make_signer": "yibao.envelope.national.gateways",
    "dumps": "yibao.envelope.national.jsontext",
    "loads": "yibao.envelope.national.jsontext",
    "parse_txt": "yibao.envelope.national.files",
    "parse_download": "yibao.envelope.national.files",
    "unpack_zip": "yibao.envelope.national.files",
    "format_txt": "yibao.envelope.national.files",
    "build_zip": "yibao.envelope.national.files",
    "Catalog": "yibao.envelope.catalog",
    "sm3": "yibao.envelope.crypto",
    "sm4_ecb_encrypt": "yibao.envelope.crypto",
    "sm4_ecb_decrypt": "yibao.envelope.crypto",
    "get_backend": "yibao.envelope.crypto",
    "sign_b64": "yibao.envelope.crypto",
    "verify_b64": "yibao.envelope.crypto",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'yibao.envelope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
