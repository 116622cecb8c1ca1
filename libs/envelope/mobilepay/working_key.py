"""The mobile-pay SM4 working key, derived from the application's credentials (mobilepay.md, Encryption 1).

SM4-ECB/PKCS7-encrypt the UTF-8 bytes of appSecret under the key made of the first 16 ASCII characters of
appId; write that ciphertext as upper-case hex; its first 16 characters, taken as ASCII bytes, are the key.
Both sides derive the same key from what they share, so no key is ever exchanged.
"""

from __future__ import annotations

from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import sm4_ecb_encrypt

__all__ = ["derive_working_key"]


def derive_working_key(app_id: str, app_secret: str) -> bytes:
    """16 ASCII bytes (upper-case hex digits) usable as an SM4 key; ConfigurationError for unusable ids."""
    head = app_id[:16]
    if len(head) < 16 or not head.isascii():
        raise ConfigurationError("mobile-pay appId must start with 16 ASCII characters (the SM4 key source)")
    if not app_secret:
        raise ConfigurationError("mobile-pay appSecret is empty")
    encrypted = sm4_ecb_encrypt(head.encode("ascii"), app_secret.encode("utf-8"))
    return encrypted.hex().upper()[:16].encode("ascii")
