"""The national-platform client: one per service, the only way the bridge talks to the national platform.

``await client.call(infno, input)`` does, in this order:

1. **validate and normalise** the input with the transaction catalog (lower-case keys, formatted datetimes,
   empty numeric → 0, Decimal scales): a failure raises :class:`EnvelopeValidationError` and *nothing is sent*;
   likewise a psn_no without insuplc_admdvs, or an input over 40000 characters;
2. take a **msgid** (the caller's, when it persisted one before calling — the chains do — or a fresh one from
   the :class:`MsgidAllocator`) and the shared **sign_no** (9001 session, :mod:`yibao.envelope.signin`);
3. **build and seal** the envelope with the configured gateway signer (none, tif, _api, encrypted);
4. **send** it over a pooled ``httpx.AsyncClient`` with per-call timeouts (settlements get their own read
   timeout) and the TLS settings;
5. **classify** the end (:mod:`yibao.envelope.national.outcomes`): a :class:`Response` (infcode 0), or
   :class:`BusinessRejection`, :class:`TransportError`, :class:`UnknownOutcome`, :class:`GatewayAuthError`;
6. **record** every attempt: Prometheus metrics and a row in ``platform_calls`` (inputs and outputs masked).

Retries — never where they could repeat an effect:

* TransportError (nothing was sent): retried for every transaction, with the **same msgid**, with backoff;
* UnknownOutcome: retried only when the catalog marks the transaction safe to retry (queries, downloads),
  each attempt with a **new msgid**. A settlement or any state-changing call is never sent again: the caller
  gets the UnknownOutcome (with the msgid) and resolves it by query or 冲正 (:meth:`NationalClient.reverse`);
* a BusinessRejection saying the sign_no is invalid renews the sign-in for every worker; the call is sent
  again (new msgid) once only if the caller did not pre-allocate its msgid or the transaction is safe to
  retry — a caller holding a persisted msgid gets the rejection and retries with a msgid it persisted;
* GatewayAuthError and other refusals are not retried.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from yibao.core import clock
from yibao.core.errors import ConfigurationError
from yibao.envelope.calllog import CallLog, CallRecord
from yibao.envelope.errors import (
    BusinessRejection,
    CatalogError,
    EnvelopeValidationError,
    FileTransferError,
    PlatformError,
    UnknownOutcome,
)
from yibao.envelope.metrics import record_call
from yibao.envelope.msgid import MsgidAllocator
from yibao.envelope.national.envelope import (
    Response,
    Sender,
    build_header,
    encode_input,
    has_psn_no,
    parse_reply,
    read_infcode,
    to_response,
)
from yibao.envelope.national.files import (
    FileErrorReply,
    UploadResult,
    error_from_json_body,
    parse_download,
)
from yibao.envelope.national.gateways import GatewaySigner, Sealed, make_signer
from yibao.envelope.national.outcomes import (
    classify_exception,
    classify_status,
    is_retryable_transport,
    outcome_label,
)
from yibao.envelope.settings import PlatformSettings
from yibao.envelope.signin import SignInError, SigninManager, SigninStore

__all__ = ["NationalClient", "TransactionPolicy", "Response", "UploadResult"]

PLATFORM = "national"
SIGN_IN, SIGN_OUT, REVERSAL, UPLOAD, DOWNLOAD = "9001", "9002", "2601", "9101", "9102"
_NO_SIGN_NO = frozenset({SIGN_IN})
_JSON_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}


@dataclass(frozen=True, slots=True)
class TransactionPolicy:
    """What the client needs to know about a transaction (from the catalog; defaults for unknown ones).

    ``path`` is set only when the catalog gives the transaction a path of its own (not the gateway default);
    ``api_path`` is its per-transaction path on "_api" gateways.
    """

    infno: str
    known: bool = False
    safe_to_retry: bool = False
    reversible: bool = False
    path: str | None = None
    api_path: str | None = None


def _policy_from_catalog(catalog: Any, infno: str) -> TransactionPolicy:
    if catalog is None:
        return TransactionPolicy(infno)
    try:
        tx = catalog.transaction(infno)
    except (CatalogError, KeyError, LookupError):
        return TransactionPolicy(infno)  # callable as raw JSON, never retried after an unknown outcome
    if tx is None:
        return TransactionPolicy(infno)
    safe = getattr(tx, "safe_to_retry", None)
    if safe is None:
        safe = getattr(tx, "retry_safe", False)
    path = getattr(tx, "path", None) or None
    gateway = getattr(catalog, "gateway", None)
    if path and gateway is not None and hasattr(gateway, "path_for") and path == gateway.path_for(infno):
        path = None  # the catalog's default path: the settings' call_path decides
    return TransactionPolicy(infno, True, bool(safe), bool(getattr(tx, "reversible", False)), path,
                             getattr(tx, "api_path", None) or None)


def _load_catalog(province: str | None) -> Any:
    try:
        from yibao.envelope.catalog import Catalog
    except ImportError as exc:  # pragma: no cover - the catalog ships with the library
        raise ConfigurationError("the transaction catalog (yibao.envelope.catalog) is not available") from exc
    return Catalog.load(province)


def _tls(settings: PlatformSettings) -> ssl.SSLContext | bool:
    if not (settings.tls_ca_file or settings.tls_client_cert):
        return settings.tls_verify
    context = ssl.create_default_context(cafile=settings.tls_ca_file)
    if settings.tls_client_cert:
        context.load_cert_chain(settings.tls_client_cert, settings.tls_client_key)
    if not settings.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _host_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _host_mac() -> str:
    node = uuid.getnode()
    return "-".join(f"{(node >> shift) & 0xFF:02X}" for shift in range(40, -1, -8))


def _reversal_of(infno: str, payload: Any) -> tuple[str | None, str | None]:
    if infno != REVERSAL or not isinstance(payload, Mapping):
        return None, None
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None, None
    return (str(data["omsgid"]) if data.get("omsgid") else None,
            str(data["oinfno"]) if data.get("oinfno") else None)


def _without_bytes(value: Any) -> Any:
    """A copy without bytes values (they travel as a multipart file part, not inside the JSON envelope)."""
    if isinstance(value, Mapping):
        return {k: _without_bytes(v) for k, v in value.items() if not isinstance(v, (bytes, bytearray))}
    if isinstance(value, list):
        return [_without_bytes(v) for v in value]
    return value


class NationalClient:
    """Async client of the national platform (see the module docstring). Use ``async with`` or ``aclose()``."""

    platform = PLATFORM

    def __init__(
        self,
        settings: PlatformSettings | None = None,
        *,
        engine: Engine,
        service: str = "yibao",
        catalog: Any = None,
        signer: GatewaySigner | None = None,
        msgids: MsgidAllocator | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or PlatformSettings()
        self.service = service
        self.engine = engine
        self.catalog = catalog if catalog is not None else _load_catalog(self.settings.province)
        self.signer = signer or make_signer(self.settings)
        self.sender = Sender.from_settings(self.settings)
        self.msgids = msgids or MsgidAllocator.from_settings(engine, self.settings)
        self.call_log = CallLog(engine)
        s = self.settings
        self._http = httpx.AsyncClient(
            base_url=s.base_url,
            timeout=httpx.Timeout(connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s,
                                  pool=s.pool_timeout_s),
            limits=httpx.Limits(max_connections=s.max_connections,
                                max_keepalive_connections=s.max_keepalive_connections),
            verify=_tls(s),
            transport=transport,
        )
        self._policies: dict[str, TransactionPolicy] = {}
        self.signin = SigninManager(
            SigninStore(engine, s.fixmedins_code, s.opter, self.msgids.owner),
            self._sign_in_call,
            self._sign_out_call,
            renew_s=s.signin_renew_s,
            renew_at_midnight=s.signin_renew_at_midnight,
            wait_s=s.signin_wait_s,
            claim_ttl_s=max(60.0, s.connect_timeout_s + s.read_timeout_s + s.write_timeout_s + 10.0),
        )
        wording = getattr(self.catalog, "wording", None)
        catalogued = tuple(wording("sign_in_invalid")) if wording is not None else ()
        self._markers = catalogued + tuple(m.lower() for m in s.signin_invalid_markers if m)
        self._closing = False
        self._closed = False

    async def __aenter__(self) -> "NationalClient":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    # --- public API ------------------------------------------------------------------------------------------

    async def allocate_msgid(self) -> str:
        """A fresh msgid, for a caller that must persist it before sending (pass it to :meth:`call`)."""
        return await self.msgids.allocate()

    def policy(self, infno: str) -> TransactionPolicy:
        policy = self._policies.get(infno)
        if policy is None:
            policy = self._policies[infno] = _policy_from_catalog(self.catalog, infno)
        return policy

    async def call(
        self,
        infno: str,
        input: Mapping[str, Any],  # noqa: A002 - the spec's name for it
        *,
        visit_key: str | None = None,
        msgid: str | None = None,
        insuplc_admdvs: str | None = None,
        read_timeout_s: float | None = None,
        call_log: Any = None,
    ) -> Response:
        """Send one transaction; a :class:`Response` on infcode 0, else one of the outcome exceptions.

        ``call_log`` (a sink with ``add(record, input_obj=, output_obj=)``, e.g. the chain engine's) takes the
        call-log record of each attempt instead of the client writing it in a transaction of its own: the chain
        engine writes it with the call's outcome."""
        result = await self._invoke(infno, input, visit_key=visit_key, msgid=msgid,
                                    insuplc_admdvs=insuplc_admdvs, read_timeout_s=read_timeout_s,
                                    call_log=call_log)
        assert isinstance(result, Response)
        return result

    async def reverse(
        self,
        psn_no: str,
        omsgid: str,
        oinfno: str,
        *,
        insuplc_admdvs: str | None = None,
        visit_key: str | None = None,
        msgid: str | None = None,
        call_log: Any = None,
    ) -> Response:
        """2601 冲正 of the message ``omsgid`` (transaction ``oinfno``) whose outcome is unknown."""
        return await self.call(REVERSAL, {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}},
                               visit_key=visit_key, msgid=msgid, insuplc_admdvs=insuplc_admdvs, call_log=call_log)

    async def upload(self, content: bytes, filename: str, *, visit_key: str | None = None,
                     msgid: str | None = None) -> UploadResult:
        """9101: upload a file (multipart); its file_qury_no, filename and dld_endtime."""
        # the catalog checks fsUploadIn.in like any field; on the wire the bytes travel as the multipart part
        # "file", and the envelope's fsUploadIn keeps filename and fixmedins_code (convention with the simulator)
        payload = {"fsUploadIn": {"in": content, "filename": filename,
                                  "fixmedins_code": self.settings.fixmedins_code}}
        response = await self._invoke(UPLOAD, payload, visit_key=visit_key, msgid=msgid,
                                      file=(filename, content))
        assert isinstance(response, Response)
        output = response.output
        if isinstance(output, Mapping) and isinstance(output.get("fileinfo"), Mapping):
            output = output["fileinfo"]  # some platforms wrap it
        if not isinstance(output, Mapping) or not output.get("file_qury_no"):
            raise FileTransferError("9101 answer has no file_qury_no")
        return UploadResult(file_qury_no=str(output["file_qury_no"]),
                            filename=None if output.get("filename") is None else str(output["filename"]),
                            dld_endtime=None if output.get("dld_endtime") is None else str(output["dld_endtime"]))

    async def download(self, file_qury_no: str, filename: str, *, visit_key: str | None = None) -> bytes:
        """9102: the file's bytes (usually a zip); FileTransferError when the platform answers an error."""
        payload = {"fsDownloadIn": {"file_qury_no": file_qury_no, "filename": filename,
                                    "fixmedins_code": self.settings.fixmedins_code}}
        result = await self._invoke(DOWNLOAD, payload, visit_key=visit_key, expect_file=True)
        assert isinstance(result, bytes)
        return result

    async def download_rows(self, file_qury_no: str, filename: str, columns: list[str] | tuple[str, ...],
                            *, visit_key: str | None = None) -> list[dict[str, str | None]]:
        """9102 and parse: every row of the TXT files in the downloaded zip, keyed by ``columns``."""
        return parse_download(await self.download(file_qury_no, filename, visit_key=visit_key), columns)

    async def sign_in(self) -> str:
        """The current sign_no (9001 when no worker of this institution holds a valid one)."""
        return await self.signin.sign_no()

    async def sign_out(self) -> bool:
        """9002 for the session this process signed in; True when one was signed out."""
        return await self.signin.sign_out()

    async def aclose(self) -> None:
        """Sign out (when configured and this process signed in), release the msgid slot, close connections."""
        if self._closing:
            return
        self._closing = True
        try:
            if self.settings.signin_enabled and self.settings.signout_on_close:
                await self.signin.sign_out()
        finally:
            self._closed = True
            try:
                await self.msgids.aclose()
            finally:
                await self._http.aclose()

    # --- sign-in callbacks -----------------------------------------------------------------------------------

    async def _sign_in_call(self) -> str:
        s = self.settings
        payload = {"signIn": {"opter_no": s.opter, "mac": s.signin_mac or _host_mac(),
                              "ip": s.signin_ip or _host_ip()}}
        response = await self.call(SIGN_IN, payload)
        output = response.output if isinstance(response.output, Mapping) else {}
        block = output.get("signinoutb") or output.get("signInOutb") or {}
        sign_no = block.get("sign_no") if isinstance(block, Mapping) else None
        if not sign_no:
            raise SignInError(SIGN_IN, "9001 answer has no signinoutb.sign_no")
        return str(sign_no)

    async def _sign_out_call(self, sign_no: str) -> None:
        await self.call(SIGN_OUT, {"signOut": {"sign_no": sign_no, "opter_no": self.settings.opter}})

    # --- the pipeline ----------------------------------------------------------------------------------------

    def _prepare(self, infno: str, payload: Any, policy: TransactionPolicy) -> Any:
        if not isinstance(payload, Mapping):
            raise EnvelopeValidationError(infno, "input", "object_required")
        if policy.known:
            prepare = getattr(self.catalog, "prepare_input", None)
            if prepare is not None:  # validate and normalise in one walk
                return prepare(infno, payload)
            self.catalog.validate_input(infno, payload)
            payload = self.catalog.normalize_input(infno, payload)
        return payload

    def _path(self, infno: str, policy: TransactionPolicy) -> str:
        s = self.settings
        if infno in s.paths:
            return s.paths[infno]
        if self.signer.kind == "api":
            own = self.signer.path_for(infno) or policy.api_path
            if own:
                return own
        if infno == UPLOAD:
            return s.upload_path
        if infno == DOWNLOAD:
            return s.download_path
        return policy.path or s.call_path

    def _timeout(self, infno: str, read_timeout_s: float | None) -> httpx.Timeout:
        s = self.settings
        read = read_timeout_s if read_timeout_s is not None else s.read_timeout_for(infno)
        return httpx.Timeout(connect=s.connect_timeout_s, read=read, write=s.write_timeout_s, pool=s.pool_timeout_s)

    def _says_sign_in_invalid(self, infno: str, exc: BusinessRejection) -> bool:
        if infno in (SIGN_IN, SIGN_OUT) or not self.settings.signin_enabled:
            return False
        text = (exc.err_msg or "").lower()
        return any(marker in text for marker in self._markers)

    async def _backoff(self, attempt: int) -> None:
        base = self.settings.retry_backoff_s
        if base > 0:
            delay = base * (2 ** (attempt - 1))
            await asyncio.sleep(delay * (1 + secrets.randbelow(250) / 1000))

    async def _invoke(
        self,
        infno: str,
        payload: Any,
        *,
        visit_key: str | None = None,
        msgid: str | None = None,
        insuplc_admdvs: str | None = None,
        read_timeout_s: float | None = None,
        file: tuple[str, bytes] | None = None,
        expect_file: bool = False,
        call_log: Any = None,
    ) -> Response | bytes:
        if self._closed:
            raise ConfigurationError("the platform client is closed")
        policy = self.policy(infno)
        started, t0 = clock.now(), time.perf_counter()
        try:
            normalized = self._prepare(infno, payload, policy)
            if file is not None:
                normalized = _without_bytes(normalized)
            if insuplc_admdvs and len(insuplc_admdvs) > 6:
                raise EnvelopeValidationError(infno, "insuplc_admdvs", "max_length_6")
            if (self.settings.insuplc_required_with_psn_no and not insuplc_admdvs and has_psn_no(normalized)):
                raise EnvelopeValidationError(infno, "insuplc_admdvs", "required_when_input_has_psn_no",
                                              "pass insuplc_admdvs from 1101 insuinfo")
            input_text = encode_input(infno, normalized, max_chars=self.settings.max_input_chars)
        except EnvelopeValidationError as exc:
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc, payload, None,
                               call_log)
            raise
        caller_msgid = msgid is not None
        attempts = max(1, self.settings.retry_attempts)
        attempt, renewed_sign_in = 0, False
        while True:
            attempt += 1
            if msgid is None:
                msgid = await self.allocate_msgid()
            started, t0 = clock.now(), time.perf_counter()
            sign_no = ""
            try:
                if self.settings.signin_enabled and infno not in _NO_SIGN_NO:
                    sign_no = await self.signin.sign_no()
                result = await self._exchange(infno, msgid, input_text, sign_no, insuplc_admdvs or "", policy,
                                              read_timeout_s, file, expect_file)
            except asyncio.CancelledError:
                # the caller gave up mid-call: the request may have gone out, so the log says "unknown"
                lost = UnknownOutcome(infno, msgid, "the call was cancelled while in flight")
                await asyncio.shield(self._record(infno, msgid, visit_key, started, time.perf_counter() - t0,
                                                  lost, normalized, None, call_log))
                raise
            except PlatformError as exc:
                await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, exc,
                                   normalized, getattr(exc, "response", None), call_log)
                if is_retryable_transport(exc) and attempt < attempts:
                    await self._backoff(attempt)
                    continue  # nothing was sent: the same msgid again
                if isinstance(exc, UnknownOutcome) and policy.safe_to_retry and attempt < attempts:
                    msgid = None  # the platform may have seen it: a query goes again under a new msgid
                    await self._backoff(attempt)
                    continue
                if isinstance(exc, BusinessRejection) and self._says_sign_in_invalid(infno, exc):
                    await self.signin.invalidate(sign_no)
                    if not renewed_sign_in and (policy.safe_to_retry or not caller_msgid):
                        renewed_sign_in, msgid = True, None
                        continue
                raise
            output = result.output if isinstance(result, Response) else {"file_bytes": len(result)}
            await self._record(infno, msgid, visit_key, started, time.perf_counter() - t0, None, normalized,
                               output, call_log)
            return result

    async def _exchange(
        self,
        infno: str,
        msgid: str,
        input_text: str,
        sign_no: str,
        insuplc_admdvs: str,
        policy: TransactionPolicy,
        read_timeout_s: float | None,
        file: tuple[str, bytes] | None,
        expect_file: bool,
    ) -> Response | bytes:
        header = build_header(self.sender, infno, msgid, sign_no=sign_no, insuplc_admdvs=insuplc_admdvs)
        sealed: Sealed = self.signer.seal(infno, header, input_text)
        path = self._path(infno, policy)
        timeout = self._timeout(infno, read_timeout_s)
        try:
            if file is not None:
                filename, content = file
                reply = await self._http.post(
                    path, headers=sealed.headers, timeout=timeout,
                    data={"envelope": sealed.body},
                    files={"file": (filename, content, "application/octet-stream")},
                )
            else:
                reply = await self._http.post(
                    path, content=sealed.body.encode("utf-8"), headers={**_JSON_HEADERS, **sealed.headers},
                    timeout=timeout,
                )
        except httpx.HTTPError as exc:
            raise classify_exception(exc, infno, msgid) from exc
        if expect_file and 200 <= reply.status_code < 300:
            return self._file_reply(infno, msgid, reply)
        return self._envelope_reply(infno, msgid, reply)

    def _envelope_reply(self, infno: str, msgid: str, reply: httpx.Response) -> Response:
        status = reply.status_code
        if 200 <= status < 300:
            body = parse_reply(reply.content, infno=infno, msgid=msgid)
            if read_infcode(body.get("infcode")) == 0:
                body = self.signer.open(infno, msgid, body)
            response = to_response(body, infno=infno, msgid=msgid)
            read = getattr(self.catalog, "read_output", None)  # the province's spellings → the catalog's names
            return response if read is None else response.model_copy(update={"output": read(infno, response.output)})
        if status not in (401, 403):
            try:
                body = parse_reply(reply.content, infno=infno, msgid=msgid)
            except UnknownOutcome:
                body = None
            if body is not None and read_infcode(body.get("infcode")) != 0:
                to_response(body, infno=infno, msgid=msgid)  # raises the platform's own rejection
        outcome = classify_status(status, infno, msgid, self.settings.not_processed_statuses)
        assert outcome is not None
        raise outcome

    def _file_reply(self, infno: str, msgid: str, reply: httpx.Response) -> bytes:
        content = reply.content
        json_error = error_from_json_body(content)
        if json_error is not None:
            if isinstance(json_error, FileErrorReply) and json_error.infcode is None:
                raise UnknownOutcome(infno, msgid, "9102 answered JSON without a readable infcode")
            raise json_error
        return content

    async def _record(
        self,
        infno: str,
        msgid: str | None,
        visit_key: str | None,
        started: Any,
        seconds: float,
        exc: BaseException | None,
        input_obj: Any,
        output_obj: Any,
        call_log: Any = None,
    ) -> None:
        outcome = outcome_label(exc)
        record_call(PLATFORM, infno, outcome, seconds)
        infcode: str | None = "0" if exc is None else None
        err_msg: str | None = None
        if isinstance(exc, (BusinessRejection, FileErrorReply)):
            infcode, err_msg = exc.infcode, exc.err_msg
        elif exc is not None:
            err_msg = str(exc)
        omsgid, oinfno = _reversal_of(infno, input_obj)
        record = CallRecord(
            service=self.service, platform=PLATFORM, infno=infno, msgid=msgid, visit_key=visit_key,
            started_at=started, duration_ms=int(seconds * 1000), outcome=outcome, infcode=infcode,
            err_msg=err_msg, omsgid=omsgid, oinfno=oinfno,
        )
        if call_log is not None:
            call_log.add(record, input_obj=input_obj, output_obj=output_obj)
            return
        await self.call_log.write(record, input_obj=input_obj, output_obj=output_obj)
