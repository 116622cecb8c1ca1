"""What every transaction handler receives, and the small input-reading helpers they share.

Handlers read input with :func:`need` / :func:`amount` so a missing, oversized or malformed field is always
refused the same way: ``infcode -1`` naming the transaction, the field path and the rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from yibao.core.money import money

from .errors import PlatformRefusal
from .state import MessageRecord

if TYPE_CHECKING:
    from .national import NationalPlatform

__all__ = ["Call", "need", "opt", "amount", "block", "rows", "FIELD_MAX"]

#: lengths of the identifiers the simulator checks itself (national-platform.md field lists); the catalog
#: (when present) checks every other field
FIELD_MAX: dict[str, int] = {
    "psn_no": 30, "mdtrt_id": 30, "setl_id": 30, "feedetl_sn": 30, "init_feedetl_sn": 30, "chrg_bchno": 30,
    "ipt_otp_no": 30, "ipt_no": 30, "med_list_codg": 50, "medins_list_codg": 150, "mdtrt_cert_no": 50,
    "mdtrt_cert_type": 3, "insutype": 6, "med_type": 6, "omsgid": 30, "oinfno": 6, "file_qury_no": 30,
    "rxno": 30, "dise_codg": 30, "mid_setl_flag": 3, "acct_used_flag": 3, "psn_setlway": 6, "clr_type": 6,
    "setl_optins": 6, "refd_setl_flag": 3, "opter_no": 20, "ip": 20, "mac": 20, "filename": 200,
}


@dataclass
class Call:
    """One accepted request on its way through a handler."""

    platform: NationalPlatform
    infno: str
    msgid: str
    fixmedins_code: str
    envelope: dict[str, Any]
    input: dict[str, Any]
    now: dt.datetime
    record: MessageRecord
    file_bytes: bytes | None = None
    file_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def refuse(self, message: str) -> PlatformRefusal:
        return PlatformRefusal(self.infno, message)


def _node(call: Call, name: str) -> Any:
    """An input node by name, whatever the case (the catalog hands inputs over with its names: ``signin``)."""
    if name in call.input:
        return call.input[name]
    low = name.lower()
    return next((v for k, v in call.input.items() if isinstance(k, str) and k.lower() == low), None)


def block(call: Call, name: str) -> dict[str, Any]:
    """The named input object (``data``, ``mdtrtinfo`` …), required."""
    value = _node(call, name)
    if not isinstance(value, dict):
        raise call.refuse(f"input.{name}: required object missing")
    return value


def rows(call: Call, name: str, *, required: bool = True) -> list[dict[str, Any]]:
    value = _node(call, name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or not all(isinstance(v, dict) for v in value):
        raise call.refuse(f"input.{name}: required non-empty list of objects")
    return value


def _check_len(call: Call, path: str, key: str, text: str) -> str:
    limit = FIELD_MAX.get(key)
    if limit is not None and len(text) > limit:
        raise call.refuse(f"{path}: longer than {limit} characters")
    return text


def need(call: Call, obj: dict[str, Any], key: str, path: str = "data") -> str:
    """A required string field (numbers accepted and rendered), non-empty and within its length."""
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise call.refuse(f"{path}.{key}: required, empty or missing")
    if isinstance(value, (dict, list)):
        raise call.refuse(f"{path}.{key}: must be a value, not an object")
    return _check_len(call, f"{path}.{key}", key, str(value).strip())


def opt(call: Call, obj: dict[str, Any], key: str, default: str = "", path: str = "data") -> str:
    value = obj.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, (dict, list)):
        raise call.refuse(f"{path}.{key}: must be a value, not an object")
    return _check_len(call, f"{path}.{key}", key, str(value).strip())


def amount(call: Call, obj: dict[str, Any], key: str, path: str = "data", *, required: bool = True,
           scale: int = 2) -> Decimal:
    """A decimal amount with at most ``scale`` fraction digits. Floats never reach here (wire.loads)."""
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise call.refuse(f"{path}.{key}: required amount missing")
        return money(0)
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        raise call.refuse(f"{path}.{key}: not a decimal number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise call.refuse(f"{path}.{key}: not a decimal number") from None
    if not number.is_finite():
        raise call.refuse(f"{path}.{key}: not a finite number")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > scale:
        raise call.refuse(f"{path}.{key}: more than {scale} decimal places")
    if abs(number) >= Decimal(10) ** 14:
        raise call.refuse(f"{path}.{key}: beyond decimal(16,{scale})")
    return number
