"""医保移动支付 2.0: the envelope (SM4 working key, encData, the sorted sign string and SM2 signatures, both
directions), the typed messages, the mobile-pay catalog (6201 … 6401 as data) and the client the chains use.

See :mod:`.codec` for the envelope and who calls what, :mod:`.signstring` for the sign-string rules,
:mod:`.working_key` for the key derivation, :mod:`.models` for the messages, :mod:`.catalog` for the
transactions' facts and :mod:`.client` for the client (facts: ../shared/spec/mobilepay.md).
"""

from __future__ import annotations

from yibao.envelope.mobilepay.codec import SUCCESS_CODES, MobilePayCodec, TimestampFormat
from yibao.envelope.mobilepay.signstring import UNSIGNED_FIELDS, build_sign_string
from yibao.envelope.mobilepay.working_key import derive_working_key

__all__ = [
    "MobilePayCodec",
    "TimestampFormat",
    "SUCCESS_CODES",
    "UNSIGNED_FIELDS",
    "build_sign_string",
    "derive_working_key",
]
