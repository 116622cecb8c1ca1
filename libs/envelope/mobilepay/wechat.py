"""WeChat Pay's side of 医保移动支付 (WeChat Pay API v3): the cash part of a mobile-pay order, the patient's
免密授权, the notification, refunds of the cash part, the daily bill.

Each operation has a local number in the mobile-pay catalog (WeChat has none; the numbers only name the operations
to the chain engine and the call log — ``data/transactions.yaml``):

======  =====================  =========================================================================
8801    免密授权               ``POST /v3/med-ins/authorizations`` — the patient's authorisation code →
                               pay_auth_no (assumed path: the authorisation is a channel-side flow)
8802    统一支付下单            ``POST /v3/med-ins/orders`` (医保自费混合收款下单): mix_pay_type CASH_ONLY,
                               INSURANCE_ONLY or CASH_AND_INSURANCE; serial_no = 6201's medOrgOrd,
                               pay_order_id = 6201's payOrdId
8803    查询订单               ``GET /v3/med-ins/orders/out-trade-no/{out_trade_no}``
8804    申请退款               ``POST /v3/refund/domestic/refunds`` (the cash part)
8805    退款查询               ``GET /v3/refund/domestic/refunds/{out_refund_no}``
8806    下载账单               ``GET /v3/bill/tradebill?bill_date=`` then its download_url
======  =====================  =========================================================================

Security as API v3 specifies it: every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048`` — the
merchant's RSA-SHA256 (PKCS#1 v1.5) signature of ``method\\npath\\ntimestamp\\nnonce\\nbody\\n``; every answer
and notification is verified with WeChat Pay's public key (``Wechatpay-Signature`` over
``timestamp\\nnonce\\nbody\\n``) before it is believed; a notification's resource is AEAD_AES_256_GCM-encrypted
with the APIv3 key. Amounts are integers in fen on WeChat's side and exact Decimals in yuan on ours
(:func:`fen` / :func:`yuan`).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict
from sqlalchemy import Engine

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.core.money import money
from yibao.core.settings import secrets_dir
from yibao.envelope.calllog import CallLog, CallRecord
from yibao.envelope.errors import (
    BusinessRejection,
    CryptoError,
    EnvelopeValidationError,
    PlatformError,
    SignatureError,
    UnknownOutcome,
)
from yibao.envelope.metrics import record_call
from yibao.envelope.national.outcomes import classify_exception, classify_status, outcome_label

__all__ = ["WeChatSettings", "WeChatPayClient", "WeChatReply", "WECHAT_INFNOS", "fen", "yuan", "sign_message",
           "verify_message", "decrypt_resource", "encrypt_resource", "authorization", "PLATFORM"]

PLATFORM = "wechat"
#: the local numbers of WeChat Pay's operations (the mobile-pay catalog's)
WECHAT_INFNOS = ("8801", "8802", "8803", "8804", "8805", "8806")


def fen(amount: Decimal) -> int:
    """Yuan (Decimal, two places) → fen (int), exactly; a fraction of a fen is refused."""
    value = money(amount) * 100
    if value != value.to_integral_value():
        raise ValueError("an amount in yuan with more than two decimal places")
    return int(value)


def yuan(amount: int | str | Decimal) -> Decimal:
    """Fen (int) → yuan (Decimal, two places)."""
    if isinstance(amount, bool) or isinstance(amount, float):
        raise ValueError("fen must be an integer")
    return money(Decimal(int(amount)) / 100)


# --- API v3 signatures and encryption -----------------------------------------------------------------------------


def sign_message(private_key_pem: str, message: str) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the WeChat Pay merchant key must be an RSA private key (PEM)")
    return base64.b64encode(key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def verify_message(public_key_pem: str, message: str, signature_b64: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(base64.b64decode(signature_b64, validate=True), message.encode("utf-8"), padding.PKCS1v15(),
                   hashes.SHA256())
        return True
    except (InvalidSignature, ValueError, TypeError, AssertionError):
        return False


def authorization(mchid: str, serial_no: str, private_key_pem: str, method: str, path: str, body: str, *,
                  timestamp: str | None = None, nonce: str | None = None) -> str:
    """The ``Authorization`` header of one request (WECHATPAY2-SHA256-RSA2048)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(16)
    signature = sign_message(private_key_pem, f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
    return (f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def decrypt_resource(api_v3_key: str, resource: Mapping[str, Any]) -> Any:
    """A notification's ``resource`` (AEAD_AES_256_GCM with the APIv3 key) as JSON; CryptoError if it cannot be."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise CryptoError("resource.algorithm: AEAD_AES_256_GCM expected")
    try:
        plain = AESGCM(api_v3_key.encode()).decrypt(str(resource["nonce"]).encode(),
                                                     base64.b64decode(str(resource["ciphertext"])),
                                                     str(resource.get("associated_data") or "").encode())
        return json.loads(plain, parse_float=Decimal)
    except (InvalidTag, KeyError, ValueError, TypeError):
        raise CryptoError("resource: does not decrypt with the APIv3 key") from None


def encrypt_resource(api_v3_key: str, data: Any, *, associated_data: str = "medical_insurance") -> dict[str, Any]:
    """The other direction (tests and the simulator's notifications)."""
    nonce = secrets.token_hex(6)
    text = json.dumps(data, ensure_ascii=False, default=str).encode()
    cipher = AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), text, associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(cipher).decode(),
            "associated_data": associated_data, "original_type": "transaction", "nonce": nonce}


# --- settings ----------------------------------------------------------------------------------------------------


class WeChatSettings(BaseSettings):
    """WeChat Pay (API v3) for the cash part of mobile-pay orders (env prefix ``YIBAO_WECHAT_``)."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_WECHAT_", extra="ignore", case_sensitive=False)

    base_url: str = Field("http://127.0.0.1:7070", description="WeChat Pay's API (https://api.mch.weixin.qq.com)")
    mchid: str = Field("1900000001", description="the hospital's merchant id (商户号)")
    appid: str = Field("wxdemoappid000001", description="the official account's / mini-program's AppID")
    merchant_serial_no: str = Field("", description="serial number of the merchant's API certificate")
    merchant_private_key: SecretStr = Field(SecretStr(""), description="the merchant's RSA private key (PEM)")
    platform_public_key: str = Field("", description="WeChat Pay's public key (PEM): answers and notifications")
    platform_public_key_id: str = Field("", description="its id (Wechatpay-Serial of requests with encrypted fields)")
    api_v3_key: SecretStr = Field(SecretStr(""), description="the APIv3 key (32 characters): notifications' AES-GCM")
    notify_url: str = Field("", description="where WeChat posts the payment results (…/mobilepay/wechat/notify)")
    city_id: str = Field("440100", description="医保城市编码 of the orders")
    med_inst_no: str = Field("H44010600001", description="医疗机构编码")
    med_inst_name: str = Field("yibao-bridge测试医院", description="医疗机构名称")
    order_type: str = Field("DIAG_PAY", description="order_type of outpatient orders (REG_PAY 挂号, DIAG_PAY 诊间)")
    read_timeout_s: float = Field(20.0, description="reply timeout")
    connect_timeout_s: float = Field(5.0, description="connect timeout")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        directory = secrets_dir()
        if directory is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=directory))
        return tuple(sources)

    @property
    def configured(self) -> bool:
        return bool(self.merchant_private_key.get_secret_value() and self.platform_public_key
                    and self.api_v3_key.get_secret_value())


class WeChatReply:
    def __init__(self, output: dict[str, Any], msgid: str) -> None:
        self.output = output
        self.msgid = msgid


class WeChatPayClient:
    """The chain engine's client for WeChat Pay's operations (8801 … 8806)."""

    platform = PLATFORM

    def __init__(self, settings: WeChatSettings | None = None, *, engine: Engine | None = None,
                 service: str = "mobilepay", transport: httpx.AsyncBaseTransport | None = None) -> None:
        s = self.settings = settings or WeChatSettings()
        if not s.configured:
            raise ConfigurationError("WeChat Pay needs the merchant's private key, WeChat Pay's public key and the "
                                     "APIv3 key (YIBAO_WECHAT_*)")
        self.service = service
        self.call_log = CallLog(engine) if engine is not None else None
        self._http = httpx.AsyncClient(base_url=s.base_url, transport=transport, timeout=httpx.Timeout(
            connect=s.connect_timeout_s, read=s.read_timeout_s, write=10.0, pool=5.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def allocate_msgid(self) -> str:
        return f"WX{clock.format_compact(clock.now())}{secrets.token_hex(5).upper()}"

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Any:
        """A notification's decrypted resource, once its signature verified; SignatureError/CryptoError else."""
        self._verify(headers, body)
        try:
            envelope = json.loads(body)
        except ValueError:
            raise CryptoError("the notification is not JSON") from None
        resource = envelope.get("resource") if isinstance(envelope, dict) else None
        if not isinstance(resource, dict):
            raise CryptoError("the notification has no resource")
        return decrypt_resource(self.settings.api_v3_key.get_secret_value(), resource)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        low = {k.lower(): v for k, v in headers.items()}
        timestamp, nonce = low.get("wechatpay-timestamp"), low.get("wechatpay-nonce")
        signature = low.get("wechatpay-signature")
        if not (timestamp and nonce and signature):
            raise SignatureError("Wechatpay-Timestamp/Nonce/Signature missing")
        if abs(time.time() - int(timestamp)) > 300 if timestamp.isdigit() else True:
            raise SignatureError("Wechatpay-Timestamp: more than 5 minutes away (stale)")
        message = f"{timestamp}\n{nonce}\n{body.decode('utf-8', 'replace')}\n"
        if not verify_message(self.settings.platform_public_key, message, signature):
            raise SignatureError("Wechatpay-Signature does not verify")

    async def call(self, infno: str, input: Mapping[str, Any], *,  # noqa: A002 - the port's name
                   visit_key: str | None = None, msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> WeChatReply:
        msgid = msgid or await self.allocate_msgid()
        data = dict(input.get("data") or {}) if isinstance(input, Mapping) else {}
        started, t0 = clock.now(), time.perf_counter()
        try:
            method, path, body = self._request(infno, data)
        except EnvelopeValidationError as exc:
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc, data, None, call_log)
            raise
        try:
            output = await self._exchange(infno, msgid, method, path, body)
        except PlatformError as exc:
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc, data, None, call_log)
            raise
        await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, None, data, output, call_log)
        return WeChatReply(output, msgid)

    def _request(self, infno: str, data: dict[str, Any]) -> tuple[str, str, str]:
        def need(key: str) -> str:
            value = data.get(key)
            if not value:
                raise EnvelopeValidationError(infno, f"data.{key}", "required")
            return str(value)

        if infno in ("8801", "8802", "8804"):
            path = {"8801": "/v3/med-ins/authorizations", "8802": "/v3/med-ins/orders",
                    "8804": "/v3/refund/domestic/refunds"}[infno]
            if infno == "8802":
                need("out_trade_no"), need("serial_no"), need("mix_pay_type")
            if infno == "8804":
                need("out_trade_no"), need("out_refund_no")
            return "POST", path, json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        if infno == "8803":
            return "GET", f"/v3/med-ins/orders/out-trade-no/{quote(need('out_trade_no'))}?" + urlencode(
                {"sub_mchid": self.settings.mchid}), ""
        if infno == "8805":
            return "GET", f"/v3/refund/domestic/refunds/{quote(need('out_refund_no'))}", ""
        if infno == "8806":
            return "GET", "/v3/bill/tradebill?" + urlencode({"bill_date": need("bill_date")}), ""
        raise EnvelopeValidationError(infno, "infno", "not a WeChat Pay operation")

    async def _exchange(self, infno: str, msgid: str, method: str, path: str, body: str) -> dict[str, Any]:
        s = self.settings
        headers = {"Accept": "application/json", "Authorization": authorization(
            s.mchid, s.merchant_serial_no, s.merchant_private_key.get_secret_value(), method, path, body)}
        if body:
            headers["Content-Type"] = "application/json"
        if s.platform_public_key_id:
            headers["Wechatpay-Serial"] = s.platform_public_key_id
        try:
            reply = await self._http.request(method, path, content=body.encode() if body else None, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, infno, msgid) from exc
        if reply.status_code >= 500 or reply.status_code in (401,):
            outcome = classify_status(reply.status_code, infno, msgid, (429, 503))
            assert outcome is not None
            raise outcome
        try:
            self._verify(reply.headers, reply.content)
        except SignatureError as exc:
            raise UnknownOutcome(infno, msgid, f"the answer cannot be believed: {exc}") from None
        try:
            data = json.loads(reply.content or b"{}", parse_float=Decimal)
        except ValueError:
            raise UnknownOutcome(infno, msgid, "the answer is not JSON") from None
        if not 200 <= reply.status_code < 300:
            code = str(data.get("code") or reply.status_code) if isinstance(data, dict) else str(reply.status_code)
            message = str(data.get("message") or "") if isinstance(data, dict) else ""
            raise BusinessRejection(infno, f"{code}: {message}", infcode=code, msgid=msgid)
        if infno == "8806" and isinstance(data, dict) and data.get("download_url"):
            bill = await self._http.get(str(data["download_url"]))
            return {**data, "bill": bill.text}
        return data if isinstance(data, dict) else {}

    async def _record(self, infno: str, msgid: str, visit_key: str | None, started: Any, seconds: float,
                      exc: BaseException | None, input_obj: Any, output_obj: Any, call_log: Any) -> None:
        outcome = outcome_label(exc)
        record_call(PLATFORM, infno, outcome, seconds)
        err = exc.err_msg if isinstance(exc, BusinessRejection) else (str(exc) if exc is not None else None)
        record = CallRecord(service=self.service, platform=PLATFORM, infno=infno, msgid=msgid, visit_key=visit_key,
                            started_at=started, duration_ms=int(seconds * 1000), outcome=outcome,
                            infcode="0" if exc is None else getattr(exc, "infcode", None), err_msg=err)
        masked = {k: ("***" if k in ("pay_auth_no", "payer", "auth_code") else v) for k, v in (input_obj or {}).items()}
        out = {k: v for k, v in (output_obj or {}).items() if k != "bill"} if isinstance(output_obj, dict) else None
        if call_log is not None:
            call_log.add(record, input_obj=masked, output_obj=out)
        elif self.call_log is not None:
            await self.call_log.write(record, input_obj=masked, output_obj=out)
