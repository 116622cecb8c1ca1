"""The national envelope: the request every transaction is wrapped in, and the reply it comes back in.

Request (national-platform.md, "Envelope (request)"): all keys lower case, in the spec's order, every key
present (empty text when there is nothing to say), ``inf_time`` in ``yyyy-MM-dd HH:mm:ss`` Shanghai time,
``input`` last. The input is encoded once (:func:`encode_input`), checked against the 40000-character limit, and
spliced into the envelope text as it is — so the bytes a gateway signer signs or encrypts are exactly the bytes
that are sent, and a 4 KB fee list is not encoded twice.

Reply: ``infcode`` is 0 for success and -1 for failure, written as a number or as a string depending on the
gateway; it is read into an int once (:func:`read_infcode`) and compared as an int everywhere. A reply that is
not a JSON object, or has no readable infcode, is an :class:`UnknownOutcome`: the platform may well have done
the work, we just cannot tell.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from yibao.core import clock
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, UnknownOutcome
from yibao.envelope.national.jsontext import UnencodableValue, dumps, loads

__all__ = [
    "ENVELOPE_KEYS",
    "Sender",
    "Response",
    "build_header",
    "build_request",
    "encode_input",
    "encode_envelope",
    "has_psn_no",
    "read_infcode",
    "parse_reply",
    "to_response",
]

#: the request keys in the spec's order (input last)
ENVELOPE_KEYS: tuple[str, ...] = (
    "infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no", "dev_safe_info",
    "cainfo", "signtype", "infver", "opter_type", "opter", "opter_name", "inf_time", "fixmedins_code",
    "fixmedins_name", "sign_no", "input",
)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends: the institution and operator fields of every envelope (from :class:`PlatformSettings`)."""

    fixmedins_code: str
    fixmedins_name: str
    mdtrtarea_admvs: str
    recer_sys_code: str
    infver: str
    opter_type: str
    opter: str
    opter_name: str
    dev_no: str = ""
    dev_safe_info: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> "Sender":
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def build_header(
    sender: Sender,
    infno: str,
    msgid: str,
    *,
    sign_no: str = "",
    insuplc_admdvs: str = "",
    inf_time: _dt.datetime | None = None,
    cainfo: str = "",
    signtype: str = "",
) -> dict[str, str]:
    """Every envelope key but ``input``, in the spec's order."""
    return {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": sender.mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs or "",
        "recer_sys_code": sender.recer_sys_code,
        "dev_no": sender.dev_no,
        "dev_safe_info": sender.dev_safe_info,
        "cainfo": cainfo,
        "signtype": signtype,
        "infver": sender.infver,
        "opter_type": sender.opter_type,
        "opter": sender.opter,
        "opter_name": sender.opter_name,
        "inf_time": clock.format_datetime(inf_time or clock.now()),
        "fixmedins_code": sender.fixmedins_code,
        "fixmedins_name": sender.fixmedins_name,
        "sign_no": sign_no or "",
    }


def encode_input(infno: str, payload: Any, *, max_chars: int = 40000) -> str:
    """The compact JSON text of ``payload``; refuses floats/unknown types and texts over ``max_chars``."""
    try:
        text = dumps(payload)
    except UnencodableValue as exc:
        raise EnvelopeValidationError(infno, f"input.{exc.path}" if exc.path else "input",
                                      "exact_json_value", exc.kind) from None
    if len(text) > max_chars:
        raise EnvelopeValidationError(infno, "input", f"max_length_{max_chars}", f"{len(text)} characters")
    return text


def encode_envelope(header: Mapping[str, Any], input_text: str) -> str:
    """The envelope text: ``header`` encoded, then ``"input":`` followed by ``input_text`` (already JSON)."""
    head = dumps(header)
    if head == "{}":
        return '{"input":' + input_text + "}"
    return head[:-1] + ',"input":' + input_text + "}"


def build_request(
    sender: Sender,
    infno: str,
    msgid: str,
    payload: Any,
    *,
    sign_no: str = "",
    insuplc_admdvs: str = "",
    inf_time: _dt.datetime | None = None,
) -> dict[str, Any]:
    """The whole request as a mapping (what :func:`encode_envelope` writes, for callers and tests)."""
    envelope: dict[str, Any] = dict(build_header(sender, infno, msgid, sign_no=sign_no,
                                                 insuplc_admdvs=insuplc_admdvs, inf_time=inf_time))
    envelope["input"] = payload
    return envelope


def has_psn_no(payload: Any, _depth: int = 0) -> bool:
    """Whether an input carries a non-empty psn_no (then the envelope needs insuplc_admdvs)."""
    if _depth > 3:
        return False
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if key == "psn_no" and value not in (None, ""):
                return True
            if isinstance(value, (Mapping, list, tuple)) and has_psn_no(value, _depth + 1):
                return True
    elif isinstance(payload, (list, tuple)):
        return any(has_psn_no(item, _depth + 1) for item in payload[:1])
    return False


def read_infcode(value: Any) -> int | None:
    """infcode as an int (``0``, ``"0"``, ``" -1 "`` …); None when absent or not an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def parse_reply(body: bytes | str, *, infno: str, msgid: str | None) -> dict[str, Any]:
    """The reply as a mapping with a readable infcode, or :class:`UnknownOutcome` (the work may be done)."""
    try:
        text = body.decode("utf-8-sig") if isinstance(body, bytes) else body
        reply = loads(text)
    except (UnicodeDecodeError, ValueError):
        raise UnknownOutcome(infno, msgid, "the reply is not readable JSON") from None
    if not isinstance(reply, dict):
        raise UnknownOutcome(infno, msgid, "the reply is not a JSON object")
    if read_infcode(reply.get("infcode")) is None:
        raise UnknownOutcome(infno, msgid, "the reply has no readable infcode")
    return reply


class Response(BaseModel):
    """A successful reply (infcode 0). Failures never become a Response: they raise."""

    model_config = ConfigDict(frozen=True)

    infno: str
    msgid: str
    infcode: int = 0
    inf_refmsgid: str | None = None
    refmsg_time: str | None = None
    respond_time: str | None = None
    err_msg: str | None = None
    warn_msg: str | None = None
    output: Any = None
    signtype: str | None = None
    cainfo: str | None = None

    @property
    def ok(self) -> bool:
        return self.infcode == 0


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def to_response(reply: Mapping[str, Any], *, infno: str, msgid: str) -> Response:
    """A :class:`Response` for infcode 0; :class:`BusinessRejection` (with err_msg) for any other code."""
    code = read_infcode(reply.get("infcode"))
    if code is None:
        raise UnknownOutcome(infno, msgid, "the reply has no readable infcode")
    if code != 0:
        err_msg = _text(reply.get("err_msg")) or f"infcode {code} without err_msg"
        raise BusinessRejection(infno, err_msg, infcode=str(code), msgid=msgid, response=dict(reply))
    return Response(
        infno=infno,
        msgid=msgid,
        infcode=code,
        inf_refmsgid=_text(reply.get("inf_refmsgid")),
        refmsg_time=_text(reply.get("refmsg_time")),
        respond_time=_text(reply.get("respond_time")),
        err_msg=_text(reply.get("err_msg")),
        warn_msg=_text(reply.get("warn_msg")),
        output=reply.get("output"),
        signtype=_text(reply.get("signtype")),
        cainfo=_text(reply.get("cainfo")),
    )
