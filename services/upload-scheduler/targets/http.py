"""What the target adapters share: the JSON envelope, authentication hooks, and outcomes classified exactly as the
national client classifies them (nothing sent → retried; sent and no answer → :class:`UnknownOutcome`, resolved by
the engine as the target's ``lost_answer`` says; an answer with a non-zero code → :class:`BusinessRejection`).

Envelope (configuration; targets.yaml): ``POST <url><path>`` with ``{"request_id": <msgid>, "org_code":
<fixmedins_code>, "data": <input>}``; the answer ``{"code": 0, "message": "", "data": {…}}``. Amounts travel as
exact decimals (:mod:`yibao.envelope.national.jsontext`). Every call is recorded like a national one (the engine
writes it to ``platform_calls``, masked) and counted in ``yibao_platform_calls_total{platform=<target>}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from yibao.core import clock
from yibao.envelope.calllog import CallRecord
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, PlatformError, UnknownOutcome
from yibao.envelope.metrics import record_call
from yibao.envelope.national import jsontext
from yibao.envelope.national.outcomes import classify_exception, classify_status, is_retryable_transport, outcome_label
from yibao.upload_scheduler.targets.catalog import TargetSpec

__all__ = ["TargetReply", "TargetAdapter", "AuthExpired"]

_JSON = {"Content-Type": "application/json;charset=UTF-8"}


@dataclass(frozen=True)
class TargetReply:
    output: dict[str, Any]


class AuthExpired(Exception):
    """The target refused our credentials (HTTP 401): renew them and send once more."""


class TargetAdapter:
    """One target: its transactions (targets.yaml), where it lives, how it authenticates. Subclasses add the auth."""

    platform = "target"

    def __init__(self, name: str, spec: TargetSpec, *, url: str, org_code: str, catalog: Any,
                 timeout_s: float = 30.0, http: httpx.AsyncClient | None = None, service: str = "upload-scheduler",
                 retry_attempts: int = 3) -> None:
        self.platform = name
        self.spec = spec
        self.url = url.rstrip("/")
        self.org_code = org_code
        self.catalog = catalog
        self.service = service
        self.retry_attempts = retry_attempts
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._own_http = http is None

    # --- auth hooks --------------------------------------------------------------------------------------------
    async def headers(self, body: bytes) -> dict[str, str]:
        return {}

    async def renew(self) -> None:
        """New credentials after a 401 (token targets)."""

    # --- the call ---------------------------------------------------------------------------------------------
    def path(self, infno: str) -> str:
        tx = self.spec.transactions.get(infno) or self.spec.transactions.get(infno.upper())
        if tx is None:
            raise EnvelopeValidationError(infno, "", "unknown transaction", f"not a transaction of {self.platform}")
        return tx.path

    async def call(self, infno: str, input: Mapping[str, Any], *,  # noqa: A002 - the protocol's name
                   visit_key: str | None = None, msgid: str | None = None, insuplc_admdvs: str | None = None,
                   read_timeout_s: float | None = None, call_log: Any = None) -> TargetReply:
        infno = infno.upper()
        started, t0 = clock.now(), time.perf_counter()
        try:
            data = self.catalog.prepare_input(infno, dict(input))
            body = jsontext.dumps_bytes({"request_id": msgid, "org_code": self.org_code, "data": data})
            path = self.path(infno)
        except EnvelopeValidationError as exc:
            self._record(infno, msgid, visit_key, started, t0, exc, input, None, call_log)
            raise
        renewed, attempt = False, 0
        while True:
            attempt += 1
            try:
                output = await self._exchange(infno, msgid, path, body, read_timeout_s)
            except AuthExpired:
                if renewed:
                    exc2 = BusinessRejection(infno, f"{self.platform}: credentials refused after renewal",
                                             infcode="401", msgid=msgid)
                    self._record(infno, msgid, visit_key, started, t0, exc2, data, None, call_log)
                    raise exc2 from None
                renewed = True
                await self.renew()
                continue
            except PlatformError as exc:
                self._record(infno, msgid, visit_key, started, t0, exc, data, None, call_log)
                if is_retryable_transport(exc) and attempt < self.retry_attempts:
                    await asyncio.sleep(0.05 * 2 ** attempt)
                    continue
                raise
            self._record(infno, msgid, visit_key, started, t0, None, data, output, call_log)
            return TargetReply(output)

    async def _exchange(self, infno: str, msgid: str | None, path: str, body: bytes,
                        read_timeout_s: float | None) -> dict[str, Any]:
        headers = {**_JSON, **(await self.headers(body))}
        timeout = None if read_timeout_s is None else httpx.Timeout(read_timeout_s, connect=5.0)
        try:
            reply = await self._http.post(self.url + path, content=body, headers=headers,
                                          **({"timeout": timeout} if timeout is not None else {}))
        except httpx.HTTPError as exc:
            raise classify_exception(exc, infno, msgid) from exc
        if reply.status_code == 401:
            raise AuthExpired()
        if not 200 <= reply.status_code < 300:
            outcome = classify_status(reply.status_code, infno, msgid, (502, 503, 504))
            assert outcome is not None
            raise outcome
        try:
            answer = jsontext.loads(reply.content)
        except (ValueError, UnicodeDecodeError):
            raise UnknownOutcome(infno, msgid, f"{self.platform} answered something that is not JSON") from None
        if not isinstance(answer, dict) or "code" not in answer:
            raise UnknownOutcome(infno, msgid, f"{self.platform} answered without a code")
        if str(answer.get("code")) != "0":
            raise BusinessRejection(infno, str(answer.get("message") or "refused without a message"),
                                    infcode=str(answer.get("code")), msgid=msgid)
        data = answer.get("data")
        return data if isinstance(data, dict) else {"data": data} if data is not None else {}

    def _record(self, infno: str, msgid: str | None, visit_key: str | None, started: Any, t0: float,
                exc: BaseException | None, input_obj: Any, output_obj: Any, call_log: Any) -> None:
        seconds = time.perf_counter() - t0
        outcome = outcome_label(exc)
        record_call(self.platform, infno, outcome, seconds)
        infcode, err = ("0", None) if exc is None else (getattr(exc, "infcode", None), str(getattr(exc, "err_msg", None) or exc))
        record = CallRecord(service=self.service, platform=self.platform, infno=infno, msgid=msgid,
                            visit_key=visit_key, started_at=started, duration_ms=int(seconds * 1000), outcome=outcome,
                            infcode=infcode, err_msg=err[:1000] if err else None)
        if call_log is not None:
            call_log.add(record, input_obj=input_obj, output_obj=output_obj)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()
