"""The national platform's wire format: envelope, JSON text, gateway signers, outcome rules, 9101/9102 files.

Pure functions and small classes, no I/O: the client (:mod:`yibao.envelope.client`) puts them together.
"""

from yibao.envelope.national.envelope import (
    ENVELOPE_KEYS,
    Response,
    Sender,
    build_header,
    build_request,
    encode_envelope,
    encode_input,
    has_psn_no,
    parse_reply,
    read_infcode,
    to_response,
)
from yibao.envelope.national.files import (
    NULL,
    FileErrorReply,
    UploadResult,
    build_zip,
    format_txt,
    parse_download,
    parse_txt,
    unpack_zip,
)
from yibao.envelope.national.gateways import (
    ApiSigner,
    EncryptedSigner,
    GatewaySigner,
    PlainGateway,
    Sealed,
    TifSigner,
    api_signature,
    make_signer,
    parse_sm4_key,
    tif_signature,
)
from yibao.envelope.national.jsontext import UnencodableValue, dumps, loads
from yibao.envelope.national.outcomes import GatewayRefusal, classify_exception, classify_status, outcome_label

__all__ = [
    "ENVELOPE_KEYS",
    "Response",
    "Sender",
    "build_header",
    "build_request",
    "encode_envelope",
    "encode_input",
    "has_psn_no",
    "parse_reply",
    "read_infcode",
    "to_response",
    "NULL",
    "FileErrorReply",
    "UploadResult",
    "build_zip",
    "format_txt",
    "parse_download",
    "parse_txt",
    "unpack_zip",
    "ApiSigner",
    "EncryptedSigner",
    "GatewaySigner",
    "PlainGateway",
    "Sealed",
    "TifSigner",
    "api_signature",
    "make_signer",
    "parse_sm4_key",
    "tif_signature",
    "UnencodableValue",
    "dumps",
    "loads",
    "GatewayRefusal",
    "classify_exception",
    "classify_status",
    "outcome_label",
]
