"""The work-injury cross-province envelope: digital envelope (SM4 data key wrapped by SM2) plus SM2 signature.

Sending (:meth:`WorkInjuryCodec.seal`):

1. check the record limits (500 per call, 10 for attachments) — nothing is built when they are broken;
2. a fresh 16-byte SM4 key from :mod:`secrets` for this message only;
3. ``encryptData`` = SM4-ECB/PKCS7(key, compact JSON of the business data);
4. ``encryptKey`` = SM2-encrypt(receiver's public key, key) in the configured layout;
5. ``sign`` = SM3withSM2 with our private key over the sign target (see :mod:`.settings`), raw r||s.

Receiving (:meth:`WorkInjuryCodec.open`) undoes it in the safe order: verify the signature over the envelope
(when signing the envelope), unwrap the key with our private key (C3 checked), decrypt the data (PKCS7
checked), and — when the plaintext is what was signed — verify over the exact decrypted bytes. The SM2
prefix is detected on the way in, so a counterpart that writes C1 with or without 04 is read either way; the
mode is not guessable and must match the setting.

Example with the default settings (values shortened)::

    {"transCode": "GYU101", "transNo": "H4401…0001", "sendTime": "20240102030405", "signType": "SM2",
     "encryptKey": "BP3x…(Base64 of 04||C1||C3||C2)", "encryptData": "q8Z…(Base64)", "sign": "k2Vq…(Base64 of raw r||s)"}

The exact wire layout is not public (workinjury.md): every name and choice above is a setting.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from yibao.core import clock
from yibao.envelope.crypto import SM2Backend, normalize_public_key, public_key_from_private, resolve_backend
from yibao.envelope.crypto.canonical import canonical_json, loads_exact, sorted_pairs
from yibao.envelope.crypto.signature_format import signature_to_raw
from yibao.envelope.crypto.sm4 import SM4_KEY_SIZE, sm4_ecb_decrypt, sm4_ecb_encrypt
from yibao.envelope.errors import CryptoError, EnvelopeValidationError, SignatureError
from yibao.envelope.workinjury.limits import check_record_limits
from yibao.envelope.workinjury.settings import WorkInjurySettings

__all__ = ["WorkInjuryCodec", "WorkInjuryMessage"]


class WorkInjuryMessage(BaseModel):
    """An opened, verified work-injury message."""

    model_config = ConfigDict(frozen=True)

    infno: str
    trans_no: str
    send_time: str
    data: Any
    #: any other envelope fields the sender added (signed too, when the envelope is signed)
    other_fields: dict[str, Any] = {}


class WorkInjuryCodec:
    """Seal and open work-injury envelopes between us (private key) and one counterpart (public key)."""

    def __init__(self, private_key: SecretStr | str, peer_public_key: str,
                 settings: WorkInjurySettings | None = None, *, backend: SM2Backend | str | None = None) -> None:
        self._private_key = private_key if isinstance(private_key, SecretStr) else SecretStr(private_key)
        public_key_from_private(self._private_key.get_secret_value())  # fail at start-up on an unusable key
        self.peer_public_key = normalize_public_key(peer_public_key)
        self.settings = settings or WorkInjurySettings()
        self.backend = resolve_backend(backend)

    def __repr__(self) -> str:
        s = self.settings
        return f"WorkInjuryCodec(mode={s.mode}, prefix04={s.prefix04}, sign_over={s.sign_over}, " \
               f"backend={self.backend.name!r})"

    # --- encodings -------------------------------------------------------------------------------------------

    def _encode(self, raw: bytes) -> str:
        if self.settings.binary_encoding == "hex":
            return raw.hex().upper()
        return base64.b64encode(raw).decode("ascii")

    def _decode(self, text: Any, field: str) -> bytes:
        if not isinstance(text, str) or not text:
            raise CryptoError(f"work-injury envelope: {field} missing or not text")
        try:
            if self.settings.binary_encoding == "hex":
                return bytes.fromhex(text)
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(f"work-injury envelope: {field} is not {self.settings.binary_encoding}") from None

    def _send_time(self, when: _dt.datetime | str | None) -> str:
        if isinstance(when, str):
            return when
        moment = clock.as_shanghai(when) if when is not None else clock.now()
        if self.settings.send_time_format == "datetime":
            return clock.format_datetime(moment)
        return clock.format_compact(moment)

    def sign_string(self, envelope: Mapping[str, Any]) -> str:
        """The signed text when ``sign_over="envelope"``: every non-empty field but the signature, sorted."""
        return sorted_pairs(envelope, exclude=(self.settings.fields.sign,))

    # --- sending ---------------------------------------------------------------------------------------------

    def seal(self, infno: str, trans_no: str, data: Any, *, send_time: _dt.datetime | str | None = None,
             extra_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The signed, encrypted envelope of ``data`` for transaction ``infno`` (e.g. "GYU101").

        ``trans_no`` is the caller's unique serial (unique by construction, not random: it comes from the
        message-id generator). Raises EnvelopeValidationError for a broken record limit or missing serial.
        """
        f = self.settings.fields
        if not trans_no:
            raise EnvelopeValidationError(infno, f.trans_no, "required")
        check_record_limits(infno, data, self.settings)
        plain = canonical_json(data, infno=infno, path="data").encode("utf-8")
        data_key = secrets.token_bytes(SM4_KEY_SIZE)
        wrapped = self.backend.encrypt(self.peer_public_key, data_key, mode=self.settings.mode,
                                       prefix04=self.settings.prefix04)
        envelope: dict[str, Any] = dict(extra_fields or {})
        envelope.update({
            f.trans_code: infno,
            f.trans_no: trans_no,
            f.send_time: self._send_time(send_time),
            f.sign_type: self.settings.sign_type,
            f.encrypt_key: self._encode(wrapped),
            f.encrypt_data: self._encode(sm4_ecb_encrypt(data_key, plain)),
        })
        message = plain if self.settings.sign_over == "plaintext" else self.sign_string(envelope).encode("utf-8")
        signature = self.backend.sign(self._private_key.get_secret_value(), message, uid=self.settings.uid)
        envelope[f.sign] = self._encode(signature)
        return envelope

    # --- receiving -------------------------------------------------------------------------------------------

    def _check_signature(self, message: bytes, sign_text: Any) -> None:
        try:
            raw = signature_to_raw(self._decode(sign_text, self.settings.fields.sign))
        except CryptoError:
            raise SignatureError("work-injury envelope: signature missing or malformed") from None
        if not self.backend.verify(self.peer_public_key, message, raw, uid=self.settings.uid):
            raise SignatureError("work-injury envelope: signature does not verify")

    def open(self, envelope: Mapping[str, Any]) -> WorkInjuryMessage:
        """Verify and decrypt an envelope from the counterpart; SignatureError / CryptoError otherwise."""
        if not isinstance(envelope, Mapping):
            raise CryptoError("work-injury envelope is not a JSON object")
        f = self.settings.fields
        if self.settings.sign_over == "envelope":
            self._check_signature(self.sign_string(envelope).encode("utf-8"), envelope.get(f.sign))
        data_key = self.backend.decrypt(self._private_key.get_secret_value(),
                                        self._decode(envelope.get(f.encrypt_key), f.encrypt_key),
                                        mode=self.settings.mode, prefix04=None)
        if len(data_key) != SM4_KEY_SIZE:
            raise CryptoError("work-injury envelope: the wrapped key is not a 16-byte SM4 key")
        plain = sm4_ecb_decrypt(data_key, self._decode(envelope.get(f.encrypt_data), f.encrypt_data))
        if self.settings.sign_over == "plaintext":
            self._check_signature(plain, envelope.get(f.sign))
        try:
            data = loads_exact(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CryptoError("work-injury envelope: data does not decrypt to UTF-8 JSON") from None
        known = {f.trans_code, f.trans_no, f.send_time, f.sign_type, f.encrypt_key, f.encrypt_data, f.sign}
        return WorkInjuryMessage(
            infno=str(envelope.get(f.trans_code, "")),
            trans_no=str(envelope.get(f.trans_no, "")),
            send_time=str(envelope.get(f.send_time, "")),
            data=data,
            other_fields={k: v for k, v in envelope.items() if k not in known},
        )
