"""Masking of personal data (身份证号 certno, names, phone numbers) wherever text leaves the process.

Used by the log filter (every log line), by the platform call log (inputs are stored masked) and by anything
that shows a payload to a person. Two mechanisms:

* by key — any mapping key in :data:`PERSONAL_KEYS` has its value masked, whatever the value looks like
  (names cannot be recognised in free text, so they are only ever masked by key);
* by shape — free text is scanned for resident-id-card numbers and mainland mobile numbers, and for
  ``"key": "value"`` / ``key=value`` pairs whose key is personal.

Over-masking is acceptable; a leak is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PERSONAL_KEYS", "mask_value", "mask_text", "mask_obj", "is_personal_key"]

#: keys (lower-cased, '_' removed) whose values are personal data
PERSONAL_KEYS: frozenset[str] = frozenset(
    k.replace("_", "").lower()
    for k in (
        "certno", "cert_no", "idno", "id_no", "id_card", "idcard", "sfzh", "mdtrt_cert_no", "psn_cert_no",
        "card_sn", "cardno", "card_no",
        "psn_name", "patn_name", "patient_name", "name", "username", "user_name", "coner_name", "payer_name",
        "psnname", "xm",
        "tel", "phone", "mobile", "phone_no", "coner_tel", "conertel", "lxdh",
        "addr", "address", "live_addr",
        # column names HIS databases use for the same data (the shipped example mapping's among them)
        "pat_name", "patient_name", "contact_name", "contact_tel", "contact_phone", "pat_tel", "pat_phone",
        "id_number", "pat_idno",
    )
)

_ID_CARD = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})((?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
#: first-generation (pre-1999) 15-digit ids: region, yyMMdd, 3-digit serial
_ID_CARD_15 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(\d{3})(?![0-9A-Za-z])")
#: mainland mobiles, also as +86/0086-prefixed and in 3-4-4 groups separated by a dash or a space
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_KEYED = re.compile(
    r"""(?P<q>["']?)(?P<key>[A-Za-z_]+)(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?:(?P<vq>["'])(?P<qval>[^"']*)(?P=vq)|(?P<val>[^"',;&}\s]*))"""
)


def is_personal_key(key: str) -> bool:
    return key.replace("_", "").lower() in PERSONAL_KEYS


def mask_value(value: Any) -> str:
    """Mask a whole value: keep the first and last character of longer values, nothing of short ones."""
    text = "" if value is None else str(value)
    if len(text) <= 2:
        return "*" * len(text)
    if len(text) <= 6:
        return text[0] + "*" * (len(text) - 1)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def mask_text(text: str) -> str:
    """Mask id-card numbers, mobile numbers and personal ``key=value`` / ``"key": "value"`` pairs."""
    if not text:
        return text

    def keyed(m: re.Match[str]) -> str:
        quote = m.group("vq") or ""
        value = m.group("qval") if quote else m.group("val")
        if not is_personal_key(m.group("key")) or not value:
            return m.group(0)
        return (
            f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}"
            f"{quote}{mask_value(value)}{quote}"
        )

    text = _KEYED.sub(keyed, text)
    text = _ID_CARD.sub(lambda m: m.group(1)[:3] + "*" * 13 + m.group(3)[-2:], text)
    text = _ID_CARD_15.sub(lambda m: m.group(1)[:3] + "*" * 10 + m.group(3)[-2:], text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return text


def _mask_all(obj: Any) -> Any:
    """Everything under a personal key is personal, whatever its shape."""
    if isinstance(obj, Mapping):
        return {k: _mask_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_mask_all(v) for v in obj]
    return None if obj is None else mask_value(obj)


def mask_obj(obj: Any) -> Any:
    """A copy of a JSON-like structure with personal values masked (by key, then by shape)."""
    if isinstance(obj, Mapping):
        return {k: (_mask_all(v) if isinstance(k, str) and is_personal_key(k) else mask_obj(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_obj(v) for v in obj]
    if isinstance(obj, str):
        return mask_text(obj)
    return obj
