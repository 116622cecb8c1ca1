"""The mobile-pay sign string (mobilepay.md, Signature 1-2).

Take the envelope with ``data`` in plain form (before encryption), leave out ``signData``, ``encData``,
``extra`` and empty values (None, "", {} and []), sort the keys in plain ASCII order (case-sensitive:
``appId`` < ``data`` < ``encType``; ``Z`` < ``a``), write ``k=v`` joined by ``&``, nested objects as
canonical compact JSON (:mod:`yibao.envelope.crypto.canonical`: sorted keys, unescaped Chinese, Decimals
in plain notation, null members omitted), and append ``&key=<appSecret>``.

Example (``data`` = {"payOrdId": "ORD1", "feeSumamt": Decimal("12.30")})::

    appId=A…&data={"feeSumamt":12.30,"payOrdId":"ORD1"}&encType=SM4&signType=SM2&timestamp=20240102030405&version=2.0.1&key=S…

Sources: mobilepay.md and one province's published interface document (the 筛选/排序/拼接 rules of its
"安全规范-签名算法" section, blog.cachecha.com/csdn/weixin_43585799/131508579.html), which states the same
exclusions and the appended appSecret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yibao.envelope.crypto.canonical import NumberStyle, sorted_pairs

__all__ = ["UNSIGNED_FIELDS", "build_sign_string"]

#: envelope fields that never take part in the signature
UNSIGNED_FIELDS: frozenset[str] = frozenset({"signData", "encData", "extra"})


def build_sign_string(envelope: Mapping[str, Any], app_secret: str, *, infno: str = "mobilepay",
                      numbers: NumberStyle = "number") -> str:
    """``k=v&…&key=appSecret`` of ``envelope`` (with ``data`` in plain form). Contains the secret: never log it."""
    body = sorted_pairs(envelope, exclude=UNSIGNED_FIELDS, infno=infno, numbers=numbers)
    return f"{body}&key={app_secret}" if body else f"key={app_secret}"
