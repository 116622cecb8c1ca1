"""Masking of personal data (身份证号 certno, names, phone numbers, psn_no …) and secrets wherever text leaves the
process.

Used by the log filter (every log line), by the platform call log (inputs are stored masked), by dead-letter
reasons and by anything that shows a payload to a person. The mechanisms, applied in this order by
:func:`mask_text`:

* **secrets** — a password inside a URL (``scheme://user:password@host``), ``Authorization``/``Bearer``
  credentials, an SM4 or other key written in hex after a label (``SM4 key 0123…``, ``密钥：…``), and any value
  under a secret key (:func:`is_secret_key`: ``appSecret``, ``password``, ``pwd``, ``token``, ``sm4_key``,
  ``private_key``, ``data_keys`` …) become ``***``;
* **labels** — values after Chinese labels (``姓名：张三``, ``身份证号:…``, ``联系电话 …``, ``住址：…``,
  ``参保人[张三]``) and names after English words that introduce a person (``patient Zhang San``);
* **by key** — any ``key=value`` / ``"key": "value"`` pair whose key is personal (:data:`PERSONAL_KEYS`: the
  personal fields of the national spec — certno, mdtrt_cert_no, card_sn, psn_no, psn_name, gend, naty, brdy,
  age, tel, addr, emp_name, coner_name, coner_tel — plus mobile-pay's camelCase ones and the columns HIS
  databases use), also inside JSON written into a JSON string (``{\\"psn_name\\": \\"张三\\"}``, escaped once
  or more);
* **by shape** — resident-id-card numbers (18 and 15 digits, whatever letters stand around them) and mainland
  mobile numbers.

:func:`mask_obj` does the same to a structure: everything under a personal or secret key is masked whatever its
shape; every other string goes through :func:`mask_text`.

What cannot be recognised is not masked: a name in free text without a label, a 32-hex-digit key without one
(event ids have that shape). Over-masking is acceptable; a leak is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PERSONAL_KEYS", "SECRET_KEY_PARTS", "mask_value", "mask_text", "mask_obj", "is_personal_key",
           "is_secret_key", "SECRET_MASK"]

SECRET_MASK = "***"


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").replace(".", "").lower()


#: keys (lower-cased, '_' '-' '.' removed) whose values are personal data
PERSONAL_KEYS: frozenset[str] = frozenset(
    _norm(k)
    for k in (
        # the national platform's personal fields (catalog: 人员编号 证件号码 人员姓名 性别 民族 出生日期 年龄 联系电话
        # 联系人姓名 单位名称 卡识别码 就诊凭证编号)
        "certno", "cert_no", "mdtrt_cert_no", "psn_cert_no", "card_sn", "psn_no", "psn_name", "gend", "naty",
        "brdy", "age", "tel", "coner_name", "coner_tel", "emp_name", "addr", "live_addr",
        # mobile pay 2.0 (camelCase) and the like
        "idno", "id_no", "id_card", "idcard", "sfzh", "cardno", "card_no", "username", "user_name", "psnno",
        "payer_name", "pay_auth_no", "birthday", "birth_date", "date_of_birth", "dob", "sex", "gender",
        "name", "patn_name", "patient_name", "psnname", "xm",
        "phone", "mobile", "phone_no", "conertel", "lxdh", "address", "email",
        # column names HIS databases use for the same data (the shipped example mapping's among them)
        "pat_name", "contact_name", "contact_tel", "contact_phone", "pat_tel", "pat_phone", "id_number",
        "pat_idno", "pat_birth", "pat_sex", "work_unit", "employer",
        # the data uploads' (4101 结算清单, 4401 病案首页, 35xx 进销存, 7104 处方撤销): addresses, phones, ethnicity, the
        # staff's certificate numbers
        "naty_name", "psn_tel", "emp_tel", "empr_tel", "emp_addr", "empr_addr", "curr_addr", "resd_addr", "coner_addr",
        "birplc", "napl", "undo_dr_certno", "prsc_dr_certno", "phar_certno",
    )
)

#: a key holding a secret: its normalised form contains one of these
SECRET_KEY_PARTS: tuple[str, ...] = (
    "secret", "password", "passwd", "pwd", "token", "apikey", "privatekey", "sm4key", "datakeys", "authorization",
    "cookie", "credential", "passphrase",
)

# --- shapes -----------------------------------------------------------------------------------------------------

#: 18-digit resident ids: region(6) birth date(8) serial(3) check digit; only digits must not touch it (an id is
#: often glued to letters: "certno110…", "…002Xabc")
_ID_CARD = re.compile(
    r"(?<!\d)(\d{6})((?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(\d{3}[0-9Xx])(?!\d)"
)
#: first-generation (pre-1999) 15-digit ids: region, yyMMdd, 3-digit serial
_ID_CARD_15 = re.compile(r"(?<!\d)(\d{6})(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(\d{3})(?!\d)")
#: mainland mobiles, also as +86/0086-prefixed and in 3-4-4 groups separated by a dash or a space
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")

# --- secrets ----------------------------------------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s\"']*:)(?P<pw>[^@/\s\"']+)(?=@)")
_AUTHORIZATION = re.compile(
    r"""(?P<head>(?i:\b(?:proxy-)?authorization)\\*["']?\s*[:=,]\s*\\*["']?\s*(?:(?i:bearer|basic|digest|token|"""
    r"""sm2|hmac|negotiate)\s+)?)(?P<cred>[^\s"',;\\]+)""")
_BEARER = re.compile(r"(?P<head>(?i:\b(?:bearer|basic))\s+)(?P<cred>[A-Za-z0-9._~+/=-]{8,})")
_LABELLED_HEX_KEY = re.compile(
    r"(?P<head>(?i:\bsm4(?:[ _-]?key)?|\bkey|\bsecret|密钥|秘钥)[^0-9A-Fa-f\n]{0,12}?)(?P<hex>[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64})"
    r"(?![0-9A-Fa-f])")

# --- labels -----------------------------------------------------------------------------------------------------

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_NAME_VALUE = rf"(?:[{_CJK}·•]{{1,12}}|[A-Za-z][A-Za-z'-]*(?:\s[A-Z][A-Za-z'-]*){{0,3}})"
_CN_LABELS: tuple[tuple[str, str], ...] = (
    # (labels, value pattern); longer labels first
    ("人员姓名|患者姓名|病人姓名|参保人姓名|联系人姓名|持卡人姓名|就诊人姓名|姓名|联系人|参保人|患者|病人|就诊人|持卡人",
     _NAME_VALUE),
    ("公民身份号码|身份证号码|身份证号|身份证|证件号码|证件号|社会保障卡号|社保卡号|医保卡号|人员编号|就诊凭证编号",
     r"[0-9A-Za-z*]{4,}"),
    ("联系电话|手机号码|手机号|手机|电话号码|电话", r"\+?[0-9][0-9 -]{5,}[0-9]"),
    ("家庭住址|居住地址|联系地址|户籍地址|住址|地址|工作单位|单位名称",
     rf"[^，,。;；\s\]】）)\"'<>]{{2,60}}"),
    ("出生日期|出生年月|生日", r"[0-9]{2,4}[-./年][0-9]{1,2}(?:[-./月][0-9]{1,2}日?)?"),
)
#: a label followed by ``：`` ``:`` ``=`` (then the value), or by an opening bracket or quote (the value inside)
_CN_LABELLED = [
    re.compile(rf"(?P<head>(?:{labels})\s*[：:=]\s*[\[【（(“\"「]?\s*)(?P<val>{value})") for labels, value in _CN_LABELS
] + [
    re.compile(rf"(?P<head>(?:{labels})\s*[\[【（(“\"「]\s*)(?P<val>{value})") for labels, value in _CN_LABELS
]
#: English words introducing a person, then a name of two or more capitalised words or of CJK characters
_EN_PERSON = re.compile(
    rf"(?P<head>\b(?i:patient|insured(?: person)?|person|payer|contact|holder|customer)"
    rf"(?:\s+(?i:name))?\s*[:=]?\s+)(?P<val>[A-Z][a-z]+(?:[ -][A-Z][a-z]+){{1,3}}|[{_CJK}·]{{2,6}})")

# --- keys -------------------------------------------------------------------------------------------------------

#: a key (bare, quoted, or quoted with escaped quotes as in JSON inside a JSON string) and its separator
_KEY = re.compile(r"""(?P<q>\\*["']|)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P=q)(?P<sep>\s*[:=]\s*)""")
_VALUE_ESCAPED = re.compile(r"""(?P<vq>\\+["'])(?P<val>.*?)(?P=vq)""")
_VALUE_DQ = re.compile(r'''"(?P<val>(?:[^"\\]|\\.)*)"''')
_VALUE_SQ = re.compile(r"""'(?P<val>(?:[^'\\]|\\.)*)'""")
_VALUE_BARE = re.compile(r"""(?P<val>[^"',;&}\]\s\\]+)""")
#: more words of a name written bare (``psn_name=John Smith``): capitalised words that are not keys themselves
_MORE_NAME_WORDS = re.compile(r"""(?:[ ](?:[A-Z][A-Za-z'-]*|[\u3400-\u9fff·]+)(?![A-Za-z0-9_.-]*\s*[:=]))+""")
_NAME_KEYS = frozenset(_norm(k) for k in ("name", "psn_name", "psnname", "patn_name", "patient_name", "coner_name",
                                          "payer_name", "username", "user_name", "pat_name", "contact_name", "xm"))


def is_personal_key(key: str) -> bool:
    return _norm(key) in PERSONAL_KEYS


#: keys holding one of those parts that name no secret: the mobile-pay order's payToken is the order's reference the
#: daily reconciliation quotes to 6301 (useless without the application's SM2 key), so the call log keeps it
NOT_SECRET_KEYS: frozenset[str] = frozenset({"paytoken"})


def is_secret_key(key: str) -> bool:
    normalised = _norm(key)
    if normalised in NOT_SECRET_KEYS:
        return False
    return any(part in normalised for part in SECRET_KEY_PARTS)


def mask_value(value: Any) -> str:
    """Mask a whole value: keep the first and last character of longer values, nothing of short ones."""
    text = "" if value is None else str(value)
    if len(text) <= 2:
        return "*" * len(text)
    if len(text) <= 6:
        return text[0] + "*" * (len(text) - 1)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def _keyed(text: str) -> str:
    """Mask the values of personal and secret keys; other keys' values are scanned further (they may hold JSON)."""
    out: list[str] = []
    pos = 0
    for m in _KEY.finditer(text):
        if m.start() < pos:
            continue
        key = m.group("key")
        secret = is_secret_key(key)
        if not secret and not is_personal_key(key):
            continue
        start = m.end()
        for pattern in (_VALUE_ESCAPED, _VALUE_DQ, _VALUE_SQ, _VALUE_BARE):
            vm = pattern.match(text, start)
            if vm is not None:
                break
        if vm is None or not vm.group("val"):
            continue
        value_start, value_end, end = vm.start("val"), vm.end("val"), vm.end()
        if pattern is _VALUE_BARE and _norm(key) in _NAME_KEYS:
            more = _MORE_NAME_WORDS.match(text, value_end)
            if more is not None:
                value_end = end = more.end()
        masked = SECRET_MASK if secret else mask_value(text[value_start:value_end])
        out.append(text[pos:value_start])
        out.append(masked)
        out.append(text[value_end:end])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str) -> str:
    """Mask secrets, labelled and keyed personal values, id-card numbers and mobile numbers in free text."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + SECRET_MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m.group("head") + SECRET_MASK, text)
    text = _BEARER.sub(lambda m: m.group("head") + SECRET_MASK, text)
    text = _LABELLED_HEX_KEY.sub(lambda m: m.group("head") + SECRET_MASK, text)
    for pattern in _CN_LABELLED:
        text = pattern.sub(lambda m: m.group("head") + mask_value(m.group("val")), text)
    text = _EN_PERSON.sub(lambda m: m.group("head") + mask_value(m.group("val")), text)
    text = _keyed(text)
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


def _secret_all(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _secret_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_secret_all(v) for v in obj]
    return None if obj is None else SECRET_MASK


def mask_obj(obj: Any) -> Any:
    """A copy of a JSON-like structure with personal values and secrets masked (by key, then by shape)."""
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str) and is_secret_key(k):
                out[k] = _secret_all(v)
            elif isinstance(k, str) and is_personal_key(k):
                out[k] = _mask_all(v)
            else:
                out[k] = mask_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [mask_obj(v) for v in obj]
    if isinstance(obj, str):
        return _mask_value_text(obj)
    return obj


#: short strings :func:`mask_text` left as they were (codes, dates, amounts: most of a message's values), so the next
#: time they are not scanned again; only clean text is remembered, never personal data
_CLEAN: set[str] = set()
_CLEAN_MAX, _CLEAN_LEN = 50_000, 64


def _mask_value_text(text: str) -> str:
    if text in _CLEAN:
        return text
    masked = mask_text(text)
    if masked == text and len(text) <= _CLEAN_LEN and len(_CLEAN) < _CLEAN_MAX:
        _CLEAN.add(text)
    return masked
