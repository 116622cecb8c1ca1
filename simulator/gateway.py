"""The gateway in front of the platform: tif, _api and the encrypted variant (national-platform.md,
"Gateway authentication"). Credential faults are HTTP errors, as a gateway gives them: 401 for a missing or
wrong signature, a stale timestamp or a reused nonce; 403 for an unknown paasid or access key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from typing import Any

from . import smcrypto, wire
from .errors import GatewayRefusal
from .settings import GatewayKind, SimulatorSettings

__all__ = ["Gateway", "tif_signature", "api_signature"]


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode("utf-8")).hexdigest()


def api_signature(secret: str, access_key: str, api_name: str, timestamp_ms: str, version: str) -> str:
    text = f"_api_access_key={access_key}&_api_name={api_name}&_api_timestamp={timestamp_ms}&_api_version={version}"
    return base64.b64encode(hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()).decode()


class Gateway:
    def __init__(self, settings: SimulatorSettings, platform_private: bytes, platform_public: bytes) -> None:
        self.settings = settings
        self.kind = settings.gateway
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()
        self.platform_private = platform_private
        self.platform_public = platform_public
        self.sm4_key = bytes.fromhex(settings.sm4_key_hex)
        self.hospital_public = (
            smcrypto.public_from_hex(settings.hospital_public_key_hex) if settings.hospital_public_key_hex else None
        )

    def reset(self) -> None:
        with self._lock:
            self._nonces.clear()

    # --- header checks -------------------------------------------------------------------------------------
    def check_headers(self, headers: Mapping[str, str], infno: str) -> None:
        if self.kind is GatewayKind.tif:
            self._check_tif(headers)
        elif self.kind is GatewayKind.api:
            self._check_api(headers, infno)

    def _fresh(self, seconds: float) -> bool:
        return abs(time.time() - seconds) <= self.settings.max_clock_skew_s

    def _check_tif(self, headers: Mapping[str, str]) -> None:
        paasid = headers.get("x-tif-paasid", "")
        timestamp = headers.get("x-tif-timestamp", "")
        nonce = headers.get("x-tif-nonce", "")
        signature = headers.get("x-tif-signature", "")
        if not (paasid and timestamp and nonce and signature):
            raise GatewayRefusal(401, "tif: x-tif-paasid, x-tif-timestamp, x-tif-nonce and x-tif-signature are required")
        if paasid != self.settings.tif_paasid:
            raise GatewayRefusal(403, "tif: unknown paasid")
        if not timestamp.isdigit() or not self._fresh(float(timestamp)):
            raise GatewayRefusal(401, "tif: x-tif-timestamp is stale or not unix seconds")
        expected = tif_signature(timestamp, self.settings.tif_token, nonce)
        if not hmac.compare_digest(expected, signature):
            raise GatewayRefusal(401, "tif: x-tif-signature does not verify")
        with self._lock:
            now = time.time()
            for old, seen in list(self._nonces.items()):
                if now - seen > 2 * self.settings.max_clock_skew_s:
                    del self._nonces[old]
            if nonce in self._nonces:
                raise GatewayRefusal(401, "tif: x-tif-nonce already used (replay)")
            self._nonces[nonce] = now

    def _check_api(self, headers: Mapping[str, str], infno: str) -> None:
        name = headers.get("_api_name", "")
        version = headers.get("_api_version", "")
        timestamp = headers.get("_api_timestamp", "")
        access_key = headers.get("_api_access_key", "")
        signature = headers.get("_api_signature", "")
        if not (name and version and timestamp and access_key and signature):
            raise GatewayRefusal(401, "_api: _api_name, _api_version, _api_timestamp, _api_access_key and "
                                      "_api_signature are required")
        if access_key != self.settings.api_access_key:
            raise GatewayRefusal(403, "_api: unknown access key")
        if name != f"hsa-fsi-{infno}":
            raise GatewayRefusal(403, "_api: _api_name is not hsa-fsi-<infno> of this request")
        if version != self.settings.api_version:
            raise GatewayRefusal(403, "_api: unsupported _api_version")
        if not timestamp.isdigit() or not self._fresh(int(timestamp) / 1000):
            raise GatewayRefusal(401, "_api: _api_timestamp is stale or not epoch milliseconds")
        expected = api_signature(self.settings.api_secret, access_key, name, timestamp, version)
        if not hmac.compare_digest(expected, signature):
            raise GatewayRefusal(401, "_api: _api_signature does not verify")

    # --- the encrypted variant -----------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return self.kind is GatewayKind.encrypted

    def open_input(self, envelope: dict[str, Any]) -> dict[str, Any] | str:
        """Decrypt ``input`` and verify ``cainfo``; returns the envelope with plain input, or an err_msg."""
        payload = envelope.get("input")
        if not isinstance(payload, str):
            return "envelope.input: the encrypted gateway expects Base64 SM4 ciphertext"
        try:
            plain = smcrypto.sm4_ecb_decrypt(self.sm4_key, smcrypto.b64d(payload))
            decoded = wire.loads(plain.decode("utf-8"))
        except Exception:  # noqa: BLE001 - any failure is the same answer: the input cannot be read
            return "envelope.input: cannot be decrypted with the agreed SM4 key"
        if not isinstance(decoded, dict):
            return "envelope.input: the decrypted input is not a JSON object"
        if str(envelope.get("signtype", "")).upper() != "SM2":
            return "envelope.signtype: must be SM2 on the encrypted gateway"
        cainfo = envelope.get("cainfo")
        if not isinstance(cainfo, str) or not cainfo:
            return "envelope.cainfo: the SM2 signature is required"
        try:
            signature = smcrypto.b64d(cainfo)
        except Exception:  # noqa: BLE001
            return "envelope.cainfo: not Base64"
        if self.hospital_public is None:
            return "envelope.cainfo: no public key configured for this institution"
        if len(signature) != 64:
            return "envelope.cainfo: must be the raw 64-byte r||s signature (DER is refused)"
        if not smcrypto.sm2_verify_raw(self.hospital_public, plain, signature):
            return "envelope.cainfo: signature does not verify (验签失败)"
        return {**envelope, "input": decoded}

    def seal_output(self, response: dict[str, Any]) -> dict[str, Any]:
        """Encrypt ``output`` and sign it with the platform key, as the encrypted gateway answers."""
        output = response.get("output")
        if not isinstance(output, dict) or str(response.get("infcode")) != "0":
            return response
        plain = wire.dumps_bytes(output)
        cipher = smcrypto.b64e(smcrypto.sm4_ecb_encrypt(self.sm4_key, plain))
        signature = smcrypto.sm2_sign_raw(self.platform_private, self.platform_public, plain)
        return {**response, "output": cipher, "cainfo": smcrypto.b64e(signature), "signtype": "SM2"}
