"""The work-injury platform client: the one way the bridge talks to 工伤保险异地就医系统 (the chain engine's
:class:`~yibao.chains.ports.PlatformClient` for it).

``await client.call("GYU101", {"adm_list": [...]})`` does, in this order:

1. **validate and normalise** the input with the work-injury catalog (``Catalog.load(platform="workinjury")``):
   每个参数的是否必填 and 参数长度, types, code lists, Decimal scales, and the transaction's record limit (500 a call,
   attachments 10) — a failure raises :class:`EnvelopeValidationError` naming the field (``adm_list[3].ipt_no:
   required``) and *nothing is sent*;
2. take a **transNo** — the caller's, when it persisted one before calling (the chains do), or a fresh one from the
   :class:`~yibao.envelope.msgid.MsgidAllocator` (unique by construction: institution, second, serial);
3. **seal** it (:class:`~yibao.envelope.workinjury.codec.WorkInjuryCodec`: SM4 data, SM2-wrapped key, SM2 signature)
   and POST it to the transaction's path;
4. **open** the reply (signature verified, key unwrapped, data decrypted; the reply must answer our transNo) and
   **classify** the end like the national client does (:mod:`yibao.envelope.national.outcomes`): a
   :class:`WorkInjuryResponse` (result code 0), :class:`BusinessRejection` (the platform's code and message),
   :class:`TransportError` (nothing reached the platform), :class:`UnknownOutcome` (it may have acted: a timeout
   after sending, a reset, a 5xx, a reply that cannot be opened or verified);
5. **record** every attempt: ``yibao_platform_calls_total{platform="workinjury"}`` and a ``platform_calls`` row
   (inputs and outputs masked) — into the caller's ``call_log`` sink when given (the chain engine writes it with
   the call's outcome), else in a transaction of its own.

Retries never repeat an effect: a TransportError is retried with the same transNo; an UnknownOutcome only for a
transaction the catalog marks retry_safe (checks, queries), with a new transNo. Anything else that may have changed
the platform is the caller's to resolve — the chains look it up with GYD053 (the catalog's ``lost_answers``).
There is no 冲正 on this platform: :meth:`WorkInjuryClient.reverse` refuses.

A client without the key pair (``YIBAO_WORKINJURY_PLATFORM_PRIVATE_KEY`` / ``_PLATFORM_PUBLIC_KEY``) can be built —
a worker starts and says what is missing — but every call raises :class:`~yibao.core.errors.ConfigurationError`
before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.envelope.calllog import CallLog, CallRecord
from yibao.envelope.errors import (
    BusinessRejection,
    CatalogError,
    CryptoError,
    EnvelopeValidationError,
    PlatformError,
    UnknownOutcome,
)
from yibao.envelope.metrics import record_call
from yibao.envelope.msgid import MsgidAllocator
from yibao.envelope.national.outcomes import (
    classify_exception,
    classify_status,
    is_retryable_transport,
    outcome_label,
)
from yibao.envelope.workinjury.codec import WorkInjuryCodec
from yibao.envelope.workinjury.settings import WorkInjuryPlatformSettings

__all__ = ["WorkInjuryClient", "WorkInjuryResponse", "PLATFORM", "check_records"]

PLATFORM = "workinjury"
_JSON_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}


@dataclass(frozen=True)
class WorkInjuryResponse:
    """A successful answer: the business ``output`` (decrypted, verified) of transaction ``infno`` sent as
    ``trans_no``."""

    infno: str
    trans_no: str
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def msgid(self) -> str:
        return self.trans_no


def check_records(infno: str, payload: Mapping[str, Any], limit: int | None) -> None:
    """At most ``limit`` records in each list directly under the input (the catalog's max_records)."""
    if limit is None:
        return
    for key, value in payload.items():
        if isinstance(value, (list, tuple)) and len(value) > limit:
            raise EnvelopeValidationError(infno, key, f"at most {limit} records per call", f"{len(value)} given")


class WorkInjuryClient:
    """Async client of the work-injury platform (see the module docstring). Use ``async with`` or ``aclose()``."""

    platform = PLATFORM

    def __init__(
        self,
        settings: WorkInjuryPlatformSettings | None = None,
        *,
        engine: Engine,
        service: str = "yibao",
        catalog: Any = None,
        codec: WorkInjuryCodec | None = None,
        msgids: MsgidAllocator | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or WorkInjuryPlatformSettings()
        s = self.settings
        self.service = service
        self.engine = engine
        if catalog is None:
            from yibao.envelope.catalog import Catalog

            catalog = Catalog.load(s.province, platform=PLATFORM)
        self.catalog = catalog
        self._codec = codec
        self._msgids = msgids
        self.call_log = CallLog(engine)
        self._http = httpx.AsyncClient(
            base_url=s.base_url,
            timeout=httpx.Timeout(connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s,
                                  pool=s.pool_timeout_s),
            limits=httpx.Limits(max_connections=s.max_connections, max_keepalive_connections=s.max_connections),
            verify=s.tls_verify,
            transport=transport,
        )
        self._closed = False

    async def __aenter__(self) -> WorkInjuryClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # --- configuration, built on first use --------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self._codec is not None or self.settings.keys_configured

    def missing_configuration(self) -> str | None:
        """What must be set before anything can be sent (None: nothing)."""
        if self.configured:
            return None
        return ("the work-injury key pair is not configured: set YIBAO_WORKINJURY_PLATFORM_PRIVATE_KEY (secret) and "
                "YIBAO_WORKINJURY_PLATFORM_PLATFORM_PUBLIC_KEY (the pair staff download from the platform)")

    @property
    def codec(self) -> WorkInjuryCodec:
        if self._codec is None:
            problem = self.missing_configuration()
            if problem:
                raise ConfigurationError(problem)
            s = self.settings
            self._codec = WorkInjuryCodec(s.private_key, s.platform_public_key, s.codec_settings(),
                                          backend=s.sm2_backend)
        return self._codec

    @property
    def msgids(self) -> MsgidAllocator:
        if self._msgids is None:
            self._msgids = MsgidAllocator(self.engine, self.settings.serial_institution)
        return self._msgids

    # --- the port ----------------------------------------------------------------------------------------------

    async def allocate_msgid(self) -> str:
        """A fresh transNo, for a caller that persists it before sending (pass it to :meth:`call`)."""
        return await self.msgids.allocate()

    async def call(self, infno: str, input: Mapping[str, Any], *,  # noqa: A002 - the port's name
                   visit_key: str | None = None, msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> WorkInjuryResponse:
        """Send one transaction; a :class:`WorkInjuryResponse` on success, else an outcome exception.
        ``insuplc_admdvs`` is part of the port and not used by this platform."""
        if self._closed:
            raise ConfigurationError("the work-injury client is closed")
        started, t0 = clock.now(), time.perf_counter()
        try:
            spec = self.catalog.transaction(infno)
        except CatalogError as exc:
            failure = EnvelopeValidationError(infno, "infno", "unknown transaction", str(exc))
            await self._record(infno, msgid, visit_key, started, 0.0, failure, None, None, call_log)
            raise failure from None
        try:
            if not isinstance(input, Mapping):
                raise EnvelopeValidationError(infno, "input", "object_required")
            body = self.catalog.prepare_input(infno, input)
            check_records(infno, body, spec.max_records)
            codec = self.codec
        except (EnvelopeValidationError, ConfigurationError) as exc:
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc, input, None,
                               call_log)
            raise
        attempts = max(1, self.settings.retry_attempts)
        attempt = 0
        while True:
            attempt += 1
            if msgid is None:
                msgid = await self.allocate_msgid()
            started, t0 = clock.now(), time.perf_counter()
            try:
                response = await self._exchange(codec, infno, msgid, body, spec.path, read_timeout_s)
            except asyncio.CancelledError:
                lost = UnknownOutcome(infno, msgid, "the call was cancelled while in flight")
                await asyncio.shield(self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, lost,
                                                  body, None, call_log))
                raise
            except PlatformError as exc:
                await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc, body,
                                   getattr(exc, "response", None), call_log)
                if is_retryable_transport(exc) and attempt < attempts:
                    await self._backoff(attempt)
                    continue  # nothing reached the platform: the same transNo again
                if isinstance(exc, UnknownOutcome) and spec.retry_safe and attempt < attempts:
                    msgid = None  # a check or a query: asked again under a new transNo
                    await self._backoff(attempt)
                    continue
                raise
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, None, body,
                               response.output, call_log)
            return response

    async def reverse(self, psn_no: str, omsgid: str, oinfno: str, *, insuplc_admdvs: str | None = None,
                      visit_key: str | None = None, msgid: str | None = None, call_log: Any = None) -> Any:
        """The work-injury platform has no 冲正: its catalog marks nothing reversible, so the engine never asks."""
        raise ConfigurationError(f"the work-injury platform cannot reverse {oinfno}: it has no 冲正 (2601)")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._msgids is not None:
                await self._msgids.aclose()
        finally:
            await self._http.aclose()

    # --- the exchange ------------------------------------------------------------------------------------------

    def _path(self, infno: str, catalog_path: str) -> str:
        return self.settings.paths.get(infno) or catalog_path

    async def _exchange(self, codec: WorkInjuryCodec, infno: str, trans_no: str, body: dict[str, Any],
                        catalog_path: str, read_timeout_s: float | None) -> WorkInjuryResponse:
        envelope = codec.seal(infno, trans_no, body)
        s = self.settings
        timeout = httpx.Timeout(connect=s.connect_timeout_s, read=read_timeout_s or s.read_timeout_s,
                                write=s.write_timeout_s, pool=s.pool_timeout_s)
        try:
            reply = await self._http.post(self._path(infno, catalog_path), content=json.dumps(envelope).encode(),
                                          headers=_JSON_HEADERS, timeout=timeout)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, infno, trans_no) from exc
        return self._reply(codec, infno, trans_no, reply)

    def _reply(self, codec: WorkInjuryCodec, infno: str, trans_no: str, reply: httpx.Response) -> WorkInjuryResponse:
        s = self.settings
        try:
            envelope = json.loads(reply.content) if reply.content else None
        except ValueError:
            envelope = None
        sealed = isinstance(envelope, dict) and bool(envelope.get(s.field_names.encrypt_data))
        if not (200 <= reply.status_code < 300):
            if isinstance(envelope, dict) and not sealed and self._code(envelope) not in (None, "0"):
                raise self._rejection(infno, trans_no, envelope)  # the platform refused in clear words
            outcome = classify_status(reply.status_code, infno, trans_no, s.not_processed_statuses)
            assert outcome is not None
            raise outcome
        if not isinstance(envelope, dict):
            raise UnknownOutcome(infno, trans_no, "the reply is not a JSON envelope")
        if not sealed:
            if self._code(envelope) not in (None, "0"):
                raise self._rejection(infno, trans_no, envelope)
            raise UnknownOutcome(infno, trans_no, "a success reply without sealed data cannot be believed")
        try:
            message = codec.open(envelope)
        except CryptoError as exc:  # SignatureError included: not the platform's word
            raise UnknownOutcome(infno, trans_no, f"the reply cannot be opened: {exc}") from None
        if message.trans_no and message.trans_no != trans_no:
            raise UnknownOutcome(infno, trans_no, "the reply answers another transNo")
        data = message.data if isinstance(message.data, dict) else {}
        code = self._code(data)
        if code is None:
            raise UnknownOutcome(infno, trans_no, f"the reply has no {s.reply_code_key}")
        if code != "0":
            raise self._rejection(infno, trans_no, data)
        output = data.get(s.reply_output_key)
        return WorkInjuryResponse(infno, trans_no, dict(output) if isinstance(output, Mapping) else {})

    def _code(self, data: Mapping[str, Any]) -> str | None:
        value = data.get(self.settings.reply_code_key)
        return None if value is None else str(value).strip()

    def _rejection(self, infno: str, trans_no: str, data: Mapping[str, Any]) -> BusinessRejection:
        message = str(data.get(self.settings.reply_message_key) or "refused without a message")
        return BusinessRejection(infno, message, infcode=self._code(data) or "-1", msgid=trans_no)

    async def _backoff(self, attempt: int) -> None:
        base = self.settings.retry_backoff_s
        if base > 0:
            await asyncio.sleep(base * (2 ** (attempt - 1)) * (1 + secrets.randbelow(250) / 1000))

    async def _record(self, infno: str, msgid: str | None, visit_key: str | None, started: Any, seconds: float,
                      exc: BaseException | None, input_obj: Any, output_obj: Any, call_log: Any) -> None:
        outcome = outcome_label(exc) if not isinstance(exc, ConfigurationError) else "error"
        record_call(PLATFORM, infno, outcome, seconds)
        infcode: str | None = "0" if exc is None else None
        err_msg: str | None = None
        if isinstance(exc, BusinessRejection):
            infcode, err_msg = exc.infcode, exc.err_msg
        elif exc is not None:
            err_msg = str(exc)
        record = CallRecord(service=self.service, platform=PLATFORM, infno=infno, msgid=msgid, visit_key=visit_key,
                            started_at=started, duration_ms=int(seconds * 1000), outcome=outcome, infcode=infcode,
                            err_msg=err_msg)
        input_obj, output_obj = _attachments_elided(input_obj), _attachments_elided(output_obj)
        if call_log is not None:
            call_log.add(record, input_obj=input_obj, output_obj=output_obj)
            return
        await self.call_log.write(record, input_obj=input_obj, output_obj=output_obj)


def _attachments_elided(value: Any) -> Any:
    """File contents are not kept in the call log (their size, not their bytes)."""
    if isinstance(value, Mapping):
        return {k: (f"<{len(v)} characters>" if k == "file_content" and isinstance(v, str) else
                    _attachments_elided(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_attachments_elided(v) for v in value]
    return value
