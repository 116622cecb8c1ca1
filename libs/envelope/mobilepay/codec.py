"""The 医保移动支付 2.0 envelope, both directions (mobilepay.md).

One :class:`MobilePayCodec` holds *our* private key and the *counterpart's* public key, plus the shared appId
and appSecret. Whatever it encodes it signs with our key; whatever it decodes it verifies with theirs. The
bridge configures (hospital private key, platform public key); the platform simulator configures (platform
private key, hospital public key) through :meth:`MobilePayCodec.for_platform` and uses the same methods:

=====================  ==========================================  =========================================
direction              sender                                       receiver
=====================  ==========================================  =========================================
request (6201 …)       ``encode_request`` (hospital)                ``decode_request`` (platform)
response               ``encode_response`` (platform)               ``decode_response`` (hospital)
settlement callback    ``encode_callback`` (platform)               ``verify_callback`` (hospital)
=====================  ==========================================  =========================================

Request / callback envelope: ``{appId, encType: "SM4", signType: "SM2", version, timestamp, encData,
signData}``. Response: ``{code, message, success, appId, timestamp, encType, signType, encData, signData}``
(plus ``type`` and anything else the platform adds — every non-empty field except signData/encData/extra is
signed, so unknown fields are covered too).

Order of work when receiving: decrypt encData (the signature covers the plain data), rebuild the sign string
with the decrypted data under ``data``, verify, and only then look at the business result. Nothing from an
unverified message is returned as a success.

Numbers: Decimals are written as plain JSON numbers with their own scale, both in encData and in the sign
string; incoming JSON is read with exact Decimals, so re-rendering reproduces the sender's digits. A
counterpart that stringifies numbers when signing is handled by ``nested_numbers="string"``
(:mod:`yibao.envelope.crypto.canonical`). Java's ``BigDecimal.toString`` writes tiny values like 1E-7 in
exponent form; amounts with two decimals never are.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import SecretStr

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.envelope.crypto import (
    DEFAULT_UID,
    SM2Backend,
    normalize_public_key,
    public_key_from_private,
    resolve_backend,
)
from yibao.envelope.crypto.canonical import NumberStyle, canonical_json, loads_exact
from yibao.envelope.crypto.signing import sign_b64, verify_b64
from yibao.envelope.crypto.sm4 import sm4_ecb_decrypt, sm4_ecb_encrypt
from yibao.envelope.errors import BusinessRejection, CryptoError, SignatureError
from yibao.envelope.mobilepay.signstring import build_sign_string
from yibao.envelope.mobilepay.working_key import derive_working_key

__all__ = ["MobilePayCodec", "TimestampFormat", "SUCCESS_CODES"]

TimestampFormat = Literal["compact", "epoch_ms"]

#: response codes that mean success (the platform sends 0 as a number; some gateways send "0")
SUCCESS_CODES: frozenset[str] = frozenset({"0"})


def _secret(value: SecretStr | str, what: str) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    raise ConfigurationError(f"mobile-pay {what} must be a string")


class MobilePayCodec:
    """Encode, sign, verify and decode mobile-pay 2.0 envelopes for one application (appId)."""

    def __init__(
        self,
        app_id: str,
        app_secret: SecretStr | str,
        private_key: SecretStr | str,
        platform_public_key: str,
        version: str = "2.0.1",
        timestamp_format: TimestampFormat = "compact",
        backend: SM2Backend | str | None = None,
        *,
        nested_numbers: NumberStyle = "number",
        uid: bytes = DEFAULT_UID,
    ) -> None:
        if timestamp_format not in ("compact", "epoch_ms"):
            raise ConfigurationError("mobile-pay timestamp_format must be 'compact' or 'epoch_ms'")
        if nested_numbers not in ("number", "string"):
            raise ConfigurationError("mobile-pay nested_numbers must be 'number' or 'string'")
        self.app_id = app_id
        self._app_secret = _secret(app_secret, "appSecret")
        self._private_key = _secret(private_key, "private key")
        public_key_from_private(self._private_key.get_secret_value())  # fail at start-up on an unusable key
        #: the counterpart's public key (the platform's for the bridge, the hospital's for the simulator)
        self.peer_public_key = normalize_public_key(platform_public_key)
        self.version = version
        self.timestamp_format: TimestampFormat = timestamp_format
        self.nested_numbers: NumberStyle = nested_numbers
        self.uid = uid
        self.backend = resolve_backend(backend)
        self._working_key = derive_working_key(app_id, self._app_secret.get_secret_value())

    @classmethod
    def for_platform(cls, app_id: str, app_secret: SecretStr | str, platform_private_key: SecretStr | str,
                     hospital_public_key: str, **kwargs: Any) -> MobilePayCodec:
        """The platform's side of the same application (for the simulator): signs with the platform key,
        verifies the hospital's signatures."""
        return cls(app_id, app_secret, platform_private_key, hospital_public_key, **kwargs)

    def __repr__(self) -> str:
        return f"MobilePayCodec(app_id={self.app_id!r}, version={self.version!r}, backend={self.backend.name!r})"

    # --- building blocks ----------------------------------------------------------------------------------

    def working_key(self) -> bytes:
        """The derived SM4 key (16 ASCII bytes); see :mod:`.working_key`."""
        return self._working_key

    def sign_string(self, envelope: Mapping[str, Any]) -> str:
        """The text that is signed, with ``data`` in plain form. Contains appSecret: never log it."""
        return build_sign_string(envelope, self._app_secret.get_secret_value(), numbers=self.nested_numbers)

    def encrypt_data(self, data: Any) -> str:
        """encData: upper-case hex of SM4-ECB/PKCS7(working key, canonical compact JSON of ``data``)."""
        text = canonical_json(data, infno="mobilepay", path="data")
        return sm4_ecb_encrypt(self._working_key, text.encode("utf-8")).hex().upper()

    def decrypt_data(self, enc_data: str) -> Any:
        """The plain data of an encData (numbers as exact Decimals); CryptoError if it cannot be read."""
        try:
            raw = bytes.fromhex(enc_data)
        except (TypeError, ValueError):
            raise CryptoError("mobile-pay encData is not hexadecimal") from None
        plain = sm4_ecb_decrypt(self._working_key, raw)
        try:
            return loads_exact(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CryptoError("mobile-pay encData does not decrypt to UTF-8 JSON") from None

    def sign(self, envelope: Mapping[str, Any]) -> str:
        """signData: Base64 of raw r||s of the sign string, signed with our private key."""
        return sign_b64(self._private_key.get_secret_value(), self.sign_string(envelope), uid=self.uid,
                        backend=self.backend)

    def verify(self, envelope: Mapping[str, Any], sign_data: str) -> bool:
        """True when ``sign_data`` is the counterpart's signature of ``envelope`` (data in plain form)."""
        return verify_b64(self.peer_public_key, self.sign_string(envelope), sign_data, uid=self.uid,
                          backend=self.backend)

    def timestamp(self, when: _dt.datetime | None = None) -> str:
        """The envelope timestamp in the configured format (Asia/Shanghai for the compact form)."""
        moment = clock.as_shanghai(when) if when is not None else clock.now()
        if self.timestamp_format == "epoch_ms":
            return str(int(moment.timestamp() * 1000))
        return clock.format_compact(moment)

    # --- sending --------------------------------------------------------------------------------------------

    def _seal(self, fields: dict[str, Any], data: Any) -> dict[str, Any]:
        plain = dict(fields)
        if data is not None:
            plain["data"] = data
        sign_data = self.sign(plain)
        sealed = dict(fields)
        if data is not None:
            sealed["encData"] = self.encrypt_data(data)
        sealed["signData"] = sign_data
        return sealed

    def _stamp(self, timestamp: _dt.datetime | str | int | None) -> str:
        if timestamp is None or isinstance(timestamp, _dt.datetime):
            return self.timestamp(timestamp)
        return str(timestamp)

    def encode_request(self, data: Mapping[str, Any], *, timestamp: _dt.datetime | str | int | None = None
                       ) -> dict[str, Any]:
        """The request envelope for ``data`` (hospital → platform): encrypted and signed."""
        fields = {
            "appId": self.app_id,
            "encType": "SM4",
            "signType": "SM2",
            "version": self.version,
            "timestamp": self._stamp(timestamp),
        }
        return self._seal(fields, dict(data))

    def encode_callback(self, data: Mapping[str, Any], *, timestamp: _dt.datetime | str | int | None = None
                        ) -> dict[str, Any]:
        """The settlement-result notification (platform → hospital): the request envelope shape."""
        return self.encode_request(data, timestamp=timestamp)

    def encode_response(self, data: Mapping[str, Any] | None, code: int | str = 0, message: str = "success", *,
                        success: bool | None = None, timestamp: _dt.datetime | str | int | None = None,
                        extra_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The response envelope (platform → hospital). ``success`` defaults to ``code == 0``; a failure may
        carry no data. ``extra_fields`` (e.g. ``type``) are added and signed."""
        fields: dict[str, Any] = {
            "code": code,
            "message": message,
            "success": (str(code) in SUCCESS_CODES) if success is None else success,
            "appId": self.app_id,
            "timestamp": self._stamp(timestamp),
            "encType": "SM4",
            "signType": "SM2",
        }
        fields.update(extra_fields or {})
        return self._seal(fields, None if data is None else dict(data))

    # --- receiving ------------------------------------------------------------------------------------------

    def _open(self, envelope: Mapping[str, Any], what: str, *, require_signature: bool = True) -> tuple[Any, bool]:
        """(plain data or None, whether a signature was present and verified). SignatureError/CryptoError."""
        if not isinstance(envelope, Mapping):
            raise CryptoError(f"mobile-pay {what}: envelope is not a JSON object")
        app_id = envelope.get("appId")
        if app_id not in (None, "") and app_id != self.app_id:
            raise SignatureError(f"mobile-pay {what}: appId does not match this application")
        enc_data = envelope.get("encData")
        data = self.decrypt_data(enc_data) if enc_data not in (None, "") else None
        sign_data = envelope.get("signData")
        if sign_data in (None, ""):
            if require_signature:
                raise SignatureError(f"mobile-pay {what}: signData missing")
            return data, False
        plain = {k: v for k, v in envelope.items() if k not in ("encData", "signData", "data")}
        if data is not None:
            plain["data"] = data
        if not isinstance(sign_data, str) or not self.verify(plain, sign_data):
            raise SignatureError(f"mobile-pay {what}: signData does not verify")
        return data, True

    def decode_request(self, envelope: Mapping[str, Any]) -> Any:
        """The plain data of a counterpart's request, after checking its signature (platform side)."""
        data, _ = self._open(envelope, "request")
        return {} if data is None else data

    def verify_callback(self, body: Mapping[str, Any]) -> Any:
        """The plain data of a settlement-result notification, only if its signature verifies."""
        data, _ = self._open(body, "callback")
        return {} if data is None else data

    def decode_response(self, envelope: Mapping[str, Any], *, infno: str = "mobilepay") -> Any:
        """The plain data of a successful response.

        Raises SignatureError when the signature is missing or wrong on a success, CryptoError when encData
        cannot be read, and BusinessRejection when the platform answered ``success: false`` or a code other
        than 0. An unsigned failure (gateways answer some errors unsigned) is still a BusinessRejection —
        nothing is believed from it except that the call did not succeed.
        """
        if not isinstance(envelope, Mapping):
            raise CryptoError("mobile-pay response: envelope is not a JSON object")
        success = envelope.get("success")
        failed = str(envelope.get("code", "0")) not in SUCCESS_CODES or success is False or success == "false"
        data, _verified = self._open(envelope, "response", require_signature=not failed)
        if failed:
            raise BusinessRejection(
                infno,
                str(envelope.get("message") or "mobile-pay request failed"),
                infcode=str(envelope.get("code", "")),
                response={"code": envelope.get("code"), "message": envelope.get("message"),
                          "success": envelope.get("success"), "data": data},
            )
        return {} if data is None else data
