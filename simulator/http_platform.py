"""The platform's HTTP face (aiohttp): national envelopes, 9101 multipart, 9102 file answers, mobile pay.

Faults are applied here, around the transport-free business layer: latency and the "before" faults
(business error, 5xx, reset) before anything is done; the "after" faults (commit then time out, drop the
reply) once the work is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from . import wire, workinjury_http
from .errors import GatewayRefusal, MobilePayRefusal
from .faults import Decision
from .mobilepay import MP_PATHS, mp_timestamp, version_of
from .settings import GatewayKind

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["build_platform_app", "SIMULATED_BUSINESS_ERROR"]

log = logging.getLogger(__name__)

SIMULATED_BUSINESS_ERROR = "模拟业务错误 (simulated business error)"
_JSON = "application/json;charset=UTF-8"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.dumps_bytes(body), status=status, headers={"Content-Type": _JSON})


async def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering (the client sees a reset / an empty reply)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError  # aiohttp treats a cancelled handler on a dead connection as finished


def build_platform_app(sim: Simulator) -> web.Application:
    settings = sim.settings

    async def before(request: web.Request, decision: Decision) -> web.StreamResponse | None:
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.before == "reset":
            return await _drop(request)
        if decision.before == "http_5xx":
            return web.Response(status=decision.status, text="simulated gateway failure")
        return None

    async def after(request: web.Request, decision: Decision) -> None:
        if decision.after == "drop_reply":
            await _drop(request)
        if decision.after == "commit_then_timeout":
            await asyncio.sleep(settings.hold_s)
            await _drop(request)

    async def national(request: web.Request) -> web.StreamResponse:
        file_bytes: bytes | None = None
        file_name = ""
        try:
            if request.content_type.startswith("multipart/"):
                envelope: Any = None
                reader = await request.multipart()
                async for part in reader:
                    if part.name == "file":
                        file_name = part.filename or ""
                        file_bytes = await part.read(decode=False)
                    elif part.name == "envelope":
                        envelope = wire.loads(await part.text())
            else:
                envelope = wire.loads(await request.read())
        except Exception:  # noqa: BLE001 - unreadable body: answered like the platform answers bad input
            return _json(sim.national.answer(sim.clock.now(), err_msg="request body is not a readable JSON envelope"))
        infno = str(envelope.get("infno", "")) if isinstance(envelope, dict) else ""
        try:
            sim.gateway.check_headers(request.headers, infno)
        except GatewayRefusal as exc:
            sim.gateway_refusals[exc.status] = sim.gateway_refusals.get(exc.status, 0) + 1
            return _json({"code": exc.status, "message": str(exc)}, status=exc.status)
        decision = sim.faults.decide(infno or "?")
        early = await before(request, decision)
        if early is not None:
            return early
        if sim.gateway.encrypted and isinstance(envelope, dict) and isinstance(envelope.get("input"), str):
            opened = sim.gateway.open_input(envelope)
            if isinstance(opened, str):
                return _json(sim.national.answer(sim.clock.now(), err_msg=f"[{infno}] {opened}"))
            envelope = opened
        elif sim.gateway.encrypted and file_bytes is None and infno != "9102":
            return _json(sim.national.answer(
                sim.clock.now(), err_msg=f"[{infno}] envelope.input: the encrypted gateway expects Base64 ciphertext"))
        started = time.perf_counter()
        outcome = sim.national.process(
            envelope, file_bytes=file_bytes, file_name=file_name,
            forced_error=SIMULATED_BUSINESS_ERROR if decision.before == "business_error" else None,
        )
        sim.handler_seconds[infno or "?"] = sim.handler_seconds.get(infno or "?", 0.0) + time.perf_counter() - started
        if outcome.infno == "7101" and outcome.ok:
            sim.rx_feedback.schedule_accepted()  # the prescription centre's 7102/7103 to the hospital, when enabled
        await after(request, decision)
        if outcome.file is not None:
            name, content = outcome.file
            return web.Response(body=content, headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            })
        response = outcome.response
        if sim.gateway.encrypted and outcome.infno != "9102":
            response = sim.gateway.seal_output(response)
        return _json(response)

    async def mobile(request: web.Request, infno: str) -> web.StreamResponse:
        now = sim.clock.now()
        codec = sim.mp_codec
        fields = {"appId": codec.app_id, "encType": "SM4", "signType": "SM2", "version": settings.mp_version,
                  "timestamp": mp_timestamp(now, settings.mp_timestamp_ms)}

        def refusal(message: str, code: int = -1) -> web.Response:
            return _json({**fields, "code": code, "message": message[:200], "success": False, "type": "ERROR"})

        try:
            envelope = wire.loads(await request.read())
            if not isinstance(envelope, dict):
                raise ValueError
        except Exception:  # noqa: BLE001
            return refusal("request body is not a JSON envelope")
        if envelope.get("appId") != codec.app_id:
            return refusal("appId: unknown application")
        if envelope.get("encType") != "SM4" or envelope.get("signType") != "SM2":
            return refusal("encType/signType: must be SM4/SM2")
        try:
            data = codec.decrypt(str(envelope.get("encData", "")))
        except Exception:  # noqa: BLE001
            return refusal("encData: cannot be decrypted with the application's working key")
        if settings.mp_verify_requests:
            if codec.hospital_public is None:
                return refusal("signData: no hospital public key configured")
            plain = {k: v for k, v in envelope.items() if k not in ("encData", "signData")}
            plain["data"] = data
            if not codec.verify(plain, str(envelope.get("signData", "")), codec.hospital_public):
                return refusal("signData: signature does not verify (验签失败)")
        decision = sim.faults.decide(infno)
        early = await before(request, decision)
        if early is not None:
            return early
        if decision.before == "business_error":
            return refusal(SIMULATED_BUSINESS_ERROR)
        try:
            answer = sim.mobile.handle(infno, data, version=version_of(envelope.get("version")),
                                       expire=decision.expire)
        except MobilePayRefusal as exc:
            return refusal(str(exc))
        while sim.mobile.settled:
            sim.callbacks.schedule(sim.mobile.settled.pop(0))
        await after(request, decision)
        return _json(codec.seal({**fields, "code": 0, "message": "成功", "success": True, "type": "SUCCESS"}, answer))

    async def wechat(request: web.Request) -> web.StreamResponse:
        """WeChat Pay's API v3 (simulator/wechat.py): signed JSON answers; the bill download as text."""
        if request.path == "/v3/billdownload/file":
            return web.Response(text=sim.wechat.bill(request.query.get("bill_date", "")), content_type="text/plain")
        body = (await request.read()).decode("utf-8", "replace")
        decision = sim.faults.decide("wechat_refund") if (request.method, request.path) == (
            "POST", "/v3/refund/domestic/refunds") else None
        if decision is not None:
            early = await before(request, decision)
            if early is not None:
                return early
        status, answer = sim.wechat.handle(request.method, request.path_qs, request.headers, body)
        if decision is not None:
            await after(request, decision)
        text = json.dumps(answer, ensure_ascii=False, default=str)
        return web.Response(body=text.encode(), status=status, headers=sim.wechat.signed_headers(text))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/v3/"):
            return await wechat(request)
        if path.startswith(settings.mobilepay_prefix):
            infno = MP_PATHS.get(path[len(settings.mobilepay_prefix):])
            if infno is None:
                raise web.HTTPNotFound(text="no such mobile-pay service")
            return await mobile(request, infno)
        if path.startswith(settings.wi_path_prefix):
            return await workinjury_http.handle(sim, request, path[len(settings.wi_path_prefix):])
        if path.startswith("/targets/"):  # the other platforms of the upload scheduler (yibao.simulator.targets)
            from .targets import dispatch as target_dispatch

            return await target_dispatch(sim, request)
        national_paths = {settings.call_path, settings.upload_path, settings.download_path}
        if path in national_paths or (settings.gateway is GatewayKind.api and path.startswith(settings.api_path_prefix)):
            return await national(request)
        raise web.HTTPNotFound(text="no such service")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", dispatch)
    app.router.add_get("/v3/{tail:.*}", wechat)
    return app
