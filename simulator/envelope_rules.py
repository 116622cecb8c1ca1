"""Checks of the request envelope itself, before any business rule: presence, lengths, formats.

Facts from ../shared/spec/national-platform.md ("Envelope (request)"): msgid = fixmedins_code(12) +
yyyyMMddHHmmss(14) + serial(4); inf_time ``yyyy-MM-dd HH:mm:ss``; the lengths below; input ≤ 40000 chars.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from . import wire

__all__ = ["ENVELOPE_FIELDS", "check_envelope", "input_has_psn_no", "INPUT_MAX_CHARS"]

#: field -> (max length, required)
ENVELOPE_FIELDS: dict[str, tuple[int, bool]] = {
    "infno": (6, True),
    "msgid": (30, True),
    "mdtrtarea_admvs": (6, True),
    "insuplc_admdvs": (6, False),
    "recer_sys_code": (10, True),
    "dev_no": (100, False),
    "dev_safe_info": (2000, False),
    "cainfo": (1024, False),
    "signtype": (10, False),
    "infver": (6, True),
    "opter_type": (3, True),
    "opter": (30, True),
    "opter_name": (50, True),
    "inf_time": (19, True),
    "fixmedins_code": (12, True),
    "fixmedins_name": (200, True),
    "sign_no": (30, False),
}

INPUT_MAX_CHARS = 40000

_INFNO = re.compile(r"^[0-9]{4}[A-Z]{0,2}$")
_INF_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_ADMDVS = re.compile(r"^\d{6}$")


def check_envelope(env: dict[str, Any], *, input_is_cipher: bool = False) -> str | None:
    """The first rule the envelope breaks, as an err_msg naming field and rule; None when it is well formed."""
    for key, (limit, required) in ENVELOPE_FIELDS.items():
        value = env.get(key)
        if value is None or value == "":
            if required:
                return f"envelope.{key}: required, empty or missing"
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            return f"envelope.{key}: must be a string"
        if len(str(value)) > limit:
            return f"envelope.{key}: longer than {limit} characters"
    infno = str(env["infno"])
    if not _INFNO.match(infno):
        return "envelope.infno: not a transaction number (4 digits, optional letter suffix)"
    msgid = str(env["msgid"])
    fixmedins_code = str(env["fixmedins_code"])
    if len(fixmedins_code) != 12:
        return "envelope.fixmedins_code: must be 12 characters"
    if len(msgid) != 30:
        return "envelope.msgid: must be 30 characters (fixmedins_code 12 + yyyyMMddHHmmss + serial 4)"
    if msgid[:12] != fixmedins_code:
        return "envelope.msgid: must start with the fixmedins_code"
    try:
        dt.datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S")
    except ValueError:
        return "envelope.msgid: characters 13-26 must be a valid yyyyMMddHHmmss"
    if not msgid[26:].isdigit():
        return "envelope.msgid: the last 4 characters must be digits"
    inf_time = str(env["inf_time"])
    if not _INF_TIME.match(inf_time):
        return "envelope.inf_time: must be yyyy-MM-dd HH:mm:ss"
    try:
        dt.datetime.strptime(inf_time, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return "envelope.inf_time: not a valid date-time"
    if str(env["opter_type"]) not in {"1", "2", "3"}:
        return "envelope.opter_type: must be 1 (经办人), 2 (自助终端) or 3 (移动终端)"
    if not _ADMDVS.match(str(env["mdtrtarea_admvs"])):
        return "envelope.mdtrtarea_admvs: must be a 6-digit 区划"
    if env.get("insuplc_admdvs") and not _ADMDVS.match(str(env["insuplc_admdvs"])):
        return "envelope.insuplc_admdvs: must be a 6-digit 区划"
    payload = env.get("input")
    if input_is_cipher:
        if not isinstance(payload, str):
            return "envelope.input: the encrypted gateway expects Base64 ciphertext"
    elif not isinstance(payload, dict):
        return "envelope.input: required object"
    else:
        if len(wire.dumps(payload)) > INPUT_MAX_CHARS:
            return f"envelope.input: longer than {INPUT_MAX_CHARS} characters"
    return None


def input_has_psn_no(payload: dict[str, Any]) -> str:
    """The psn_no carried by the input (top level, one object level, or rows of a list), or ""."""
    if payload.get("psn_no"):
        return str(payload["psn_no"])
    for value in payload.values():
        candidates = value if isinstance(value, list) else [value]
        for item in candidates:
            if isinstance(item, dict) and item.get("psn_no"):
                return str(item["psn_no"])
    return ""
