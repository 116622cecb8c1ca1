"""The mobile-pay 2.0 client: the chain engine's :class:`~yibao.chains.ports.PlatformClient` for 6201 … 6401.

``await client.call(infno, {"data": {...}, "version": "2.0"})`` does, in this order:

1. **check** ``data`` against the transaction's typed model (:mod:`.models`): a missing or malformed field raises
   :class:`EnvelopeValidationError` and *nothing is sent*;
2. **seal** it with the :class:`~yibao.envelope.mobilepay.codec.MobilePayCodec` of the order's version (``"2.0"``
   by default, ``"1.0"`` for channels still on 1.0 orders — the version string and paths differ): SM4 encData,
   SM2 signData;
3. **send** it to the transaction's path (the mobile-pay catalog's, or ``paths`` / ``paths_1_0``);
4. **classify** the end exactly as the national client does (:mod:`yibao.envelope.national.outcomes`): nothing
   sent (TransportError, retried with the same msgid), a refusal (``code`` ≠ 0: BusinessRejection with the
   platform's message), or a lost answer (UnknownOutcome: timeout after sending, reset, 5xx, an answer that
   cannot be decrypted, does not verify or lacks what the transaction answers). Only the query (6301) is sent
   again after a lost answer; the chain engine resolves the others by 6301, as the catalog says;
5. **record** every attempt: ``yibao_platform_calls_total{platform="mobilepay"}`` and a ``platform_calls`` row
   (platform ``mobilepay`` or ``mobilepay-1.0``), inputs masked — the patient's authorisation (payAuthNo,
   ecToken) never reaches the log — written by the chain engine with the call's outcome (``call_log=``).

Mobile pay has no 冲正 (2601): :meth:`MobilePayClient.reverse` raises :class:`NoReversal`.

The msgid of a mobile-pay call is ours (the platform's envelope has none): ``MP`` + yyyyMMddHHmmss + 10 random
hex digits, unique by construction; 6202 sends it as orgBizSer (机构业务流水号), so the platform's settlement
carries it.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.core.privacy import mask_value
from yibao.envelope.calllog import CallLog, CallRecord
from yibao.envelope.crypto.canonical import loads_exact
from yibao.envelope.errors import (
    BusinessRejection,
    CryptoError,
    EnvelopeValidationError,
    PlatformError,
    UnknownOutcome,
)
from yibao.envelope.metrics import record_call
from yibao.envelope.mobilepay.catalog import load_catalog
from yibao.envelope.mobilepay.codec import MobilePayCodec
from yibao.envelope.mobilepay.models import check_input, read_output
from yibao.envelope.mobilepay.settings import MobilePaySettings
from yibao.envelope.national.outcomes import (
    classify_exception,
    classify_status,
    is_retryable_transport,
    outcome_label,
)

__all__ = ["MobilePayClient", "MobilePayReply", "NoReversal", "PLATFORM", "VERSIONS", "platform_name",
           "MobileAndWeChatClient"]

PLATFORM = "mobilepay"
#: order versions a channel may be configured for
VERSIONS = ("2.0", "1.0")
#: keys whose values are the patient's authorisation: masked in the call log like personal data
_SECRET_KEYS = frozenset({"payAuthNo", "ecToken", "pay_auth_no"})
_JSON_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}


def platform_name(version: str) -> str:
    """The ``platform`` of a call's log row: ``mobilepay`` (2.0) or ``mobilepay-1.0`` — so reconciliation and
    reports keep the two apart."""
    return PLATFORM if version == "2.0" else f"{PLATFORM}-{version}"


class NoReversal(PlatformError):
    """Mobile pay has no 冲正 (2601): a lost answer is resolved by 6301 (the catalog says so)."""

    code = "no_reversal"


@dataclass(frozen=True)
class MobilePayReply:
    """A successful answer: the decrypted, verified ``data`` (amounts as Decimals)."""

    output: dict[str, Any]
    msgid: str
    infno: str


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (mask_value(v) if k in _SECRET_KEYS and v else _mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(v) for v in value]
    return value


def _tls(settings: MobilePaySettings) -> ssl.SSLContext | bool:
    if not settings.tls_ca_file:
        return settings.tls_verify
    return ssl.create_default_context(cafile=settings.tls_ca_file)


class MobilePayClient:
    """Async client of the mobile-pay 2.0 platform. ``async with`` or ``aclose()``."""

    platform = PLATFORM

    def __init__(self, settings: MobilePaySettings | None = None, *, engine: Engine | None = None,
                 service: str = "mobilepay", catalog: Any = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        s = self.settings = settings or MobilePaySettings()
        if not s.private_key.get_secret_value() or not s.platform_public_key:
            raise ConfigurationError("mobile pay needs our SM2 private key (YIBAO_MP_PRIVATE_KEY) and the "
                                     "platform's public key (YIBAO_MP_PLATFORM_PUBLIC_KEY)")
        self.service = service
        self.catalog = catalog if catalog is not None else load_catalog()
        self.codecs = {
            version: MobilePayCodec(s.app_id, s.app_secret, s.private_key, s.platform_public_key,
                                    version=s.version if version == "2.0" else s.version_1_0,
                                    timestamp_format=s.timestamp_format, backend=s.sm2_backend,
                                    nested_numbers=s.nested_numbers)
            for version in VERSIONS
        }
        self.call_log = CallLog(engine) if engine is not None else None
        self._http = httpx.AsyncClient(
            base_url=s.base_url,
            timeout=httpx.Timeout(connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s,
                                  pool=s.pool_timeout_s),
            limits=httpx.Limits(max_connections=s.max_connections), verify=_tls(s), transport=transport)
        self._closed = False

    async def __aenter__(self) -> MobilePayClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # --- the PlatformClient port -------------------------------------------------------------------------------

    async def allocate_msgid(self) -> str:
        return f"MP{clock.format_compact(clock.now())}{secrets.token_hex(5).upper()}"

    async def call(self, infno: str, input: Mapping[str, Any], *,  # noqa: A002 - the port's name
                   visit_key: str | None = None, msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> MobilePayReply:
        """Send one transaction (see the module docstring); a :class:`MobilePayReply`, or an outcome exception."""
        if self._closed:
            raise ConfigurationError("the mobile-pay client is closed")
        version = str(input.get("version") or "2.0") if isinstance(input, Mapping) else "2.0"
        started, t0 = clock.now(), time.perf_counter()
        msgid = msgid or await self.allocate_msgid()
        try:
            if version not in VERSIONS:
                raise EnvelopeValidationError(infno, "version", f"one of {', '.join(VERSIONS)}")
            if not isinstance(input, Mapping):
                raise EnvelopeValidationError(infno, "input", "object_required")
            raw = input.get("data")
            if infno == "6202" and isinstance(raw, Mapping) and not raw.get("orgBizSer"):
                raw = {**raw, "orgBizSer": msgid}  # the hospital's serial of the payment: this call's msgid
            data = check_input(infno, raw)
            spec = self.catalog.transaction(infno)
        except (EnvelopeValidationError, KeyError) as exc:
            error = exc if isinstance(exc, EnvelopeValidationError) else EnvelopeValidationError(
                infno, "infno", "not a mobile-pay transaction")
            await self._record(infno, msgid, visit_key, version, started, time.perf_counter() - t0, error,
                               input, None, call_log)
            raise error from None
        path = self._path(infno, version, spec.path)
        attempts = max(1, self.settings.retry_attempts)
        attempt = 0
        while True:
            attempt += 1
            started, t0 = clock.now(), time.perf_counter()
            try:
                output = await self._exchange(infno, msgid, version, path, data, read_timeout_s)
            except asyncio.CancelledError:
                lost = UnknownOutcome(infno, msgid, "the call was cancelled while in flight")
                await asyncio.shield(self._record(infno, msgid, visit_key, version, started,
                                                  time.perf_counter() - t0, lost, data, None, call_log))
                raise
            except PlatformError as exc:
                await self._record(infno, msgid, visit_key, version, started, time.perf_counter() - t0, exc, data,
                                   getattr(exc, "response", None), call_log)
                if is_retryable_transport(exc) and attempt < attempts:
                    await self._backoff(attempt)
                    continue  # nothing was sent: the same msgid again
                if isinstance(exc, UnknownOutcome) and spec.retry_safe and attempt < attempts:
                    msgid = await self.allocate_msgid()
                    await self._backoff(attempt)
                    continue
                raise
            await self._record(infno, msgid, visit_key, version, started, time.perf_counter() - t0, None, data,
                               output, call_log)
            return MobilePayReply(output, msgid, infno)

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, *, insuplc_admdvs: str | None = None,
                      visit_key: str | None = None, msgid: str | None = None,
                      call_log: Any = None) -> MobilePayReply:
        raise NoReversal(f"mobile pay has no 冲正 (2601); a lost {oinfno} is resolved by 6301")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._http.aclose()


    # --- the pipeline -----------------------------------------------------------------------------------------

    def _path(self, infno: str, version: str, catalogued: str) -> str:
        s = self.settings
        if version == "1.0" and infno in s.paths_1_0:
            return s.paths_1_0[infno]
        return s.paths.get(infno) or catalogued

    async def _backoff(self, attempt: int) -> None:
        base = self.settings.retry_backoff_s
        if base > 0:
            await asyncio.sleep(base * (2 ** (attempt - 1)) * (1 + secrets.randbelow(250) / 1000))

    async def _exchange(self, infno: str, msgid: str, version: str, path: str, data: dict[str, Any],
                        read_timeout_s: float | None) -> dict[str, Any]:
        codec = self.codecs[version]
        body = codec.encode_request(data)
        s = self.settings
        timeout = httpx.Timeout(connect=s.connect_timeout_s, read=read_timeout_s or s.read_timeout_s,
                                write=s.write_timeout_s, pool=s.pool_timeout_s)
        from yibao.envelope.crypto.canonical import canonical_json

        content = canonical_json(body, infno=infno, path="envelope").encode("utf-8")
        try:
            reply = await self._http.post(path, content=content, headers=_JSON_HEADERS, timeout=timeout)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, infno, msgid) from exc
        status = reply.status_code
        if not 200 <= status < 300:
            outcome = classify_status(status, infno, msgid, s.not_processed_statuses)
            assert outcome is not None
            raise outcome
        try:
            envelope = loads_exact(reply.content)
        except (UnicodeDecodeError, ValueError):
            raise UnknownOutcome(infno, msgid, "the answer is not JSON") from None
        if not isinstance(envelope, dict):
            raise UnknownOutcome(infno, msgid, "the answer is not a JSON object")
        try:
            data_out = codec.decode_response(envelope, infno=infno)
        except BusinessRejection as exc:
            exc.msgid = msgid
            raise
        except CryptoError as exc:  # SignatureError too: an answer we cannot believe says nothing of the outcome
            raise UnknownOutcome(infno, msgid, f"the answer cannot be believed: {exc}") from None
        if not isinstance(data_out, dict):
            raise UnknownOutcome(infno, msgid, "the answer's data is not an object")
        try:
            read_output(infno, data_out)
        except ValueError as exc:
            raise UnknownOutcome(infno, msgid, str(exc)) from None
        return data_out

    async def _record(self, infno: str, msgid: str | None, visit_key: str | None, version: str, started: Any,
                      seconds: float, exc: BaseException | None, input_obj: Any, output_obj: Any,
                      call_log: Any) -> None:
        outcome = outcome_label(exc)
        record_call(PLATFORM, infno, outcome, seconds)
        infcode: str | None = "0" if exc is None else None
        err_msg: str | None = None
        if isinstance(exc, BusinessRejection):
            infcode, err_msg = exc.infcode, exc.err_msg
        elif exc is not None:
            err_msg = str(exc)
        record = CallRecord(service=self.service, platform=platform_name(version), infno=infno, msgid=msgid,
                            visit_key=visit_key, started_at=started, duration_ms=int(seconds * 1000),
                            outcome=outcome, infcode=infcode, err_msg=err_msg)
        masked_in = _mask_secrets(dict(input_obj)) if isinstance(input_obj, Mapping) else input_obj
        if call_log is not None:
            call_log.add(record, input_obj=masked_in, output_obj=output_obj)
        elif self.call_log is not None:
            await self.call_log.write(record, input_obj=masked_in, output_obj=output_obj)


class MobileAndWeChatClient:
    """One PlatformClient for a mobile-pay chain whose WeChat channels pay the cash part through WeChat Pay: WeChat's
    operations (88xx, :mod:`.wechat`) go to its client, the rest to the mobile-pay client."""

    platform = PLATFORM

    def __init__(self, mobile: MobilePayClient, wechat: Any) -> None:
        self.mobile = mobile
        self.wechat = wechat

    async def allocate_msgid(self) -> str:
        return await self.mobile.allocate_msgid()

    async def call(self, infno: str, input: Mapping[str, Any], **kw: Any) -> Any:  # noqa: A002
        from yibao.envelope.mobilepay.wechat import WECHAT_INFNOS

        client = self.wechat if infno in WECHAT_INFNOS else self.mobile
        return await client.call(infno, input, **kw)

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, **kw: Any) -> Any:
        return await self.mobile.reverse(psn_no, omsgid, oinfno, **kw)

    async def aclose(self) -> None:
        try:
            await self.mobile.aclose()
        finally:
            await self.wechat.aclose()
