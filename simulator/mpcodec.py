"""The mobile-pay 2.0 envelope, written independently of the bridge's codec (mobilepay.md):

* working key: SM4-ECB/PKCS7(key = first 16 ASCII chars of appId, appSecret UTF-8) → upper-case hex → its
  first 16 characters as ASCII bytes;
* encData: upper-case hex of SM4-ECB/PKCS7(working key, compact JSON of data);
* signData: SM2/SM3 (uid 1234567812345678) raw r||s Base64 over ``k=v&…&key=appSecret`` — the envelope with
  ``data`` plain, without signData/encData/extra and empty values, keys in plain ASCII order, nested objects as
  compact JSON with sorted keys, unescaped Chinese, null members left out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import smcrypto, wire

__all__ = ["MpCodec", "sign_string", "working_key"]

_UNSIGNED = frozenset({"signData", "encData", "extra"})


def working_key(app_id: str, app_secret: str) -> bytes:
    cipher = smcrypto.sm4_ecb_encrypt(app_id[:16].encode("ascii"), app_secret.encode("utf-8"))
    return cipher.hex().upper()[:16].encode("ascii")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _render(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return wire.dumps(_prune(value), sort_keys=True)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def sign_string(envelope: dict[str, Any], app_secret: str) -> str:
    pairs = [f"{k}={_render(v)}" for k, v in sorted(envelope.items()) if k not in _UNSIGNED and not _empty(v)]
    return "&".join([*pairs, f"key={app_secret}"])


class MpCodec:
    """Both directions of one application: open the hospital's requests, seal the platform's answers."""

    def __init__(self, app_id: str, app_secret: str, platform_private: bytes, platform_public: bytes,
                 hospital_public: bytes | None) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.key = working_key(app_id, app_secret)
        self.platform_private = platform_private
        self.platform_public = platform_public
        self.hospital_public = hospital_public

    def decrypt(self, enc_data: str) -> Any:
        return wire.loads(smcrypto.sm4_ecb_decrypt(self.key, bytes.fromhex(enc_data)).decode("utf-8"))

    def encrypt(self, data: Any) -> str:
        return smcrypto.sm4_ecb_encrypt(self.key, wire.dumps_bytes(data)).hex().upper()

    def sign(self, envelope_with_plain_data: dict[str, Any]) -> str:
        text = sign_string(envelope_with_plain_data, self.app_secret).encode("utf-8")
        return smcrypto.b64e(smcrypto.sm2_sign_raw(self.platform_private, self.platform_public, text))

    def verify(self, envelope_with_plain_data: dict[str, Any], signature_b64: str, public: bytes) -> bool:
        try:
            signature = smcrypto.b64d(signature_b64)
        except Exception:  # noqa: BLE001
            return False
        text = sign_string(envelope_with_plain_data, self.app_secret).encode("utf-8")
        return smcrypto.sm2_verify_raw(public, text, signature)

    def seal(self, fields: dict[str, Any], data: Any) -> dict[str, Any]:
        """An envelope (response or callback): ``fields`` plus encData and signData over the plain data."""
        plain = {**fields, "data": data}
        return {**fields, "encData": self.encrypt(data), "signData": self.sign(plain)}
