"""Gateway signers: how a request proves who sent it, per province (national-platform.md, "Gateway
authentication"). One is chosen by ``PlatformSettings.gateway``; each turns the envelope's header mapping and
its input JSON text into the HTTP body and headers (:meth:`GatewaySigner.seal`) and, for the encrypted variant,
turns a reply's output back into plain JSON (:meth:`GatewaySigner.open`).

* ``none``  — nothing added (the simulator's default, intranets with IP allow-lists).
* ``tif``   — headers x-tif-paasid, x-tif-timestamp (unix seconds), x-tif-nonce (from :mod:`secrets`) and
  x-tif-signature = lower-case hex SHA-256 of ``timestamp + token + nonce + timestamp``; x-tif-serviceId when
  configured.
* ``api``   — the "_api" gateway: headers _api_name = ``hsa-fsi-`` + infno, _api_version, _api_timestamp (ms),
  _api_access_key and _api_signature = Base64(HmacSHA1(secret, ``_api_access_key=…&_api_name=…&_api_timestamp=…
  &_api_version=…``)) — the four parameters in that (alphabetical) order; one REST path per transaction.
* ``encrypted`` — ``input`` becomes the Base64 text of SM4-ECB-PKCS7(sm4 key, the UTF-8 compact JSON of the
  plaintext input); ``cainfo`` = Base64 of the raw 64-byte r||s SM3withSM2 signature (user id
  ``sm2_uid``, default 1234567812345678) over, by ``sign_over``:

  - ``plaintext`` (default, the convention agreed with the simulator): exactly the UTF-8 JSON bytes that were
    encrypted;
  - ``ciphertext``: the ASCII bytes of the Base64 text placed in ``input``;

  ``signtype`` = ``SM2``. A reply whose ``output`` is a string is Base64 → SM4 decrypted → parsed; when the
  reply carries ``cainfo`` and a platform public key is configured, it is verified over the same kind of bytes
  (decrypted JSON bytes, or the Base64 text). A reply that cannot be decrypted or verified is an
  :class:`UnknownOutcome`: the platform said "done", but we cannot believe what it says was done.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from yibao.core.errors import ConfigurationError
from yibao.envelope.errors import CryptoError, UnknownOutcome
from yibao.envelope.national.envelope import encode_envelope
from yibao.envelope.national.jsontext import loads

__all__ = [
    "Sealed",
    "GatewaySigner",
    "PlainGateway",
    "TifSigner",
    "ApiSigner",
    "EncryptedSigner",
    "tif_signature",
    "api_signature",
    "parse_sm4_key",
    "make_signer",
]


@dataclass(frozen=True, slots=True)
class Sealed:
    """What goes on the wire: the envelope text and the gateway's HTTP headers."""

    body: str
    headers: dict[str, str] = field(default_factory=dict)


class GatewaySigner(ABC):
    """One way of authenticating requests to the platform."""

    kind: ClassVar[str]

    @abstractmethod
    def seal(self, infno: str, header: dict[str, str], input_text: str) -> Sealed:
        """Body and headers for an envelope (``header`` = every key but input; ``input_text`` = its JSON)."""

    def open(self, infno: str, msgid: str, reply: dict[str, Any]) -> dict[str, Any]:
        """The reply with its output made plain (decrypted, verified); identity for plain gateways."""
        return reply

    def path_for(self, infno: str) -> str | None:
        """A transaction's own path when this gateway has one per transaction, else None."""
        return None


class PlainGateway(GatewaySigner):
    """``gateway: none`` — the envelope as it is."""

    kind = "none"

    def seal(self, infno: str, header: dict[str, str], input_text: str) -> Sealed:
        return Sealed(encode_envelope(header, input_text))


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    """Lower-case hex SHA-256 of ``timestamp + token + nonce + timestamp``."""
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode("utf-8")).hexdigest()


class TifSigner(GatewaySigner):
    kind = "tif"

    def __init__(self, paasid: str, token: str, *, service_id: str = "",
                 clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        if not paasid or not token:
            raise ConfigurationError("gateway tif needs tif_paasid and tif_token")
        self._paasid = paasid
        self._token = token
        self._service_id = service_id
        self._clock = clock
        self._nonce = nonce

    def headers(self) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        nonce = self._nonce()
        headers = {
            "x-tif-paasid": self._paasid,
            "x-tif-timestamp": timestamp,
            "x-tif-nonce": nonce,
            "x-tif-signature": tif_signature(timestamp, self._token, nonce),
        }
        if self._service_id:
            headers["x-tif-serviceId"] = self._service_id
        return headers

    def seal(self, infno: str, header: dict[str, str], input_text: str) -> Sealed:
        return Sealed(encode_envelope(header, input_text), self.headers())


def api_signature(secret: str, access_key: str, api_name: str, timestamp_ms: str, version: str) -> str:
    """Base64(HmacSHA1(secret, "_api_access_key=…&_api_name=…&_api_timestamp=…&_api_version=…"))."""
    text = (f"_api_access_key={access_key}&_api_name={api_name}"
            f"&_api_timestamp={timestamp_ms}&_api_version={version}")
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class ApiSigner(GatewaySigner):
    kind = "api"

    def __init__(self, access_key: str, secret: str, *, version: str = "1.0.0",
                 path_template: str = "/fsi/api/{api_name}",
                 clock: Callable[[], float] = time.time) -> None:
        if not access_key or not secret:
            raise ConfigurationError("gateway api needs api_access_key and api_secret")
        self._access_key = access_key
        self._secret = secret
        self._version = version
        self._template = path_template
        self._clock = clock

    @staticmethod
    def api_name(infno: str) -> str:
        return f"hsa-fsi-{infno}"

    def headers(self, infno: str) -> dict[str, str]:
        name = self.api_name(infno)
        timestamp = str(int(self._clock() * 1000))
        return {
            "_api_name": name,
            "_api_version": self._version,
            "_api_timestamp": timestamp,
            "_api_access_key": self._access_key,
            "_api_signature": api_signature(self._secret, self._access_key, name, timestamp, self._version),
        }

    def seal(self, infno: str, header: dict[str, str], input_text: str) -> Sealed:
        return Sealed(encode_envelope(header, input_text), self.headers(infno))

    def path_for(self, infno: str) -> str | None:
        """The configured per-transaction path; None (use the catalog's ``api_path``) when no template is set."""
        if not self._template:
            return None
        return self._template.format(infno=infno, api_name=self.api_name(infno))


def parse_sm4_key(text: str) -> bytes:
    """An SM4 key as platforms hand it out: 32 hex digits, or 16 characters used as their bytes."""
    value = text.strip()
    if len(value) == 32:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raw = value.encode("utf-8")
    if len(raw) == 16:
        return raw
    raise ConfigurationError("sm4_key must be 32 hex digits or 16 characters")


class EncryptedSigner(GatewaySigner):
    kind = "encrypted"

    def __init__(self, sm4_key: bytes, private_key: str, *, platform_public_key: str = "",
                 uid: str = "1234567812345678", sign_over: str = "plaintext", signtype: str = "SM2",
                 require_response_signature: bool = False, backend: str = "auto") -> None:
        from yibao.envelope import crypto

        if len(sm4_key) != 16:
            raise ConfigurationError("gateway encrypted needs a 16-byte sm4_key")
        if not private_key:
            raise ConfigurationError("gateway encrypted needs sm2_private_key")
        if sign_over not in ("plaintext", "ciphertext"):
            raise ConfigurationError("sign_over must be plaintext or ciphertext")
        if require_response_signature and not platform_public_key:
            raise ConfigurationError("require_response_signature needs platform_public_key")
        self._crypto = crypto
        self._key = sm4_key
        self._private = private_key
        self._public = platform_public_key
        self._uid = uid.encode("utf-8")
        self._sign_over = sign_over
        self._signtype = signtype
        self._require_signature = require_response_signature
        self._backend = crypto.get_backend(backend)

    def encrypt_input(self, input_text: str) -> tuple[str, bytes]:
        """(Base64 ciphertext, the bytes the signature covers) for an input JSON text."""
        plaintext = input_text.encode("utf-8")
        ciphertext = base64.b64encode(self._crypto.sm4_ecb_encrypt(self._key, plaintext)).decode("ascii")
        signed = plaintext if self._sign_over == "plaintext" else ciphertext.encode("ascii")
        return ciphertext, signed

    def seal(self, infno: str, header: dict[str, str], input_text: str) -> Sealed:
        ciphertext, signed = self.encrypt_input(input_text)
        signature = self._backend.sign(self._private, signed, uid=self._uid)
        sealed_header = dict(header)
        sealed_header["cainfo"] = base64.b64encode(signature).decode("ascii")
        sealed_header["signtype"] = self._signtype
        return Sealed(encode_envelope(sealed_header, json.dumps(ciphertext)))

    def open(self, infno: str, msgid: str, reply: dict[str, Any]) -> dict[str, Any]:
        output = reply.get("output")
        if not isinstance(output, str) or not output:
            if self._require_signature and output not in (None, "", {}):
                raise UnknownOutcome(infno, msgid, "the reply's output is not encrypted and signed")
            return reply
        try:
            plaintext = self._crypto.sm4_ecb_decrypt(self._key, base64.b64decode(output, validate=True))
        except (CryptoError, binascii.Error, ValueError):
            raise UnknownOutcome(infno, msgid, "the reply's output could not be decrypted") from None
        self._verify(infno, msgid, reply.get("cainfo"), plaintext if self._sign_over == "plaintext"
                     else output.encode("ascii"))
        try:
            opened = dict(reply)
            opened["output"] = loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnknownOutcome(infno, msgid, "the reply's decrypted output is not JSON") from None
        return opened

    def _verify(self, infno: str, msgid: str, cainfo: Any, signed: bytes) -> None:
        if not cainfo:
            if self._require_signature:
                raise UnknownOutcome(infno, msgid, "the reply carries no cainfo signature")
            return
        if not self._public:
            return
        try:
            signature = base64.b64decode(str(cainfo), validate=True)
            valid = self._backend.verify(self._public, signed, signature, uid=self._uid)
        except (CryptoError, binascii.Error, ValueError):
            valid = False
        if not valid:
            raise UnknownOutcome(infno, msgid, "the reply's cainfo signature does not verify")


def make_signer(settings: Any) -> GatewaySigner:
    """The signer ``settings.gateway`` names, built from its credentials (ConfigurationError when missing)."""
    kind = settings.gateway
    if kind == "none":
        return PlainGateway()
    if kind == "tif":
        return TifSigner(settings.tif_paasid, settings.tif_token.get_secret_value(),
                         service_id=settings.tif_service_id)
    if kind == "api":
        return ApiSigner(settings.api_access_key, settings.api_secret.get_secret_value(),
                         version=settings.api_version, path_template=settings.api_path_template)
    if kind == "encrypted":
        return EncryptedSigner(
            parse_sm4_key(settings.sm4_key.get_secret_value()),
            settings.sm2_private_key.get_secret_value(),
            platform_public_key=settings.platform_public_key,
            uid=settings.sm2_uid,
            sign_over=settings.sign_over,
            signtype=settings.signtype,
            require_response_signature=settings.require_response_signature,
            backend=settings.sm2_backend,
        )
    raise ConfigurationError(f"unknown gateway kind {kind!r} (none, tif, api, encrypted)")

