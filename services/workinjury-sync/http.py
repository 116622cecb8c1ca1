"""The realtime checks HIS asks at the counter, served on the worker's web port (faust's web server, next to
/metrics and /healthz), each within a time budget (``YIBAO_WORKINJURY_SYNC_REALTIME_TIMEOUT_S``):

    POST /workinjury/filing-check     {"certno", "check_date", "scene", ["psn_no", "mdtrt_admdvs"]}  GYD051 人员备案信息核验
    POST /workinjury/card-auth        {"certno", "card_no", ["psn_name"]}                           GYD052 社保卡卡鉴权
    POST /workinjury/card-internal-auth {"card_no", "card_random", "card_mac"}                       GYD055 社保卡内部认证
    POST /workinjury/ecard-scan       {"qr_code", ["scene"]}                                         GYU010 电子社保卡扫码
    POST /workinjury/settlements      {"certno", ["psn_no", "begin_date", "end_date"]}               GYD104 结算信息（按人员）
    GET  /workinjury/ping                                                                            GYU000 连通性测试
    POST /workinjury/downloads/{GYDxxx}/poll                  poll a download stream now (ops)
    POST /workinjury/downloads/{GYDxxx}/redownload {"trans_no"}  ask a past delivery again with GYR005 (ops)

Answers: 200 ``{"infno", "trans_no", "result": "passed" | "failed" | "ok", "output": {...}}`` (``failed``: the
platform's verdict, e.g. no valid filing — a business answer, with its message); 422 when the platform refused the
request (its words); 400 for a request HIS must fix, the field named (the body's structure, or the catalog's
是否必填/参数长度); 413 for a body over 64 KiB; 503 while the key pair is not configured; 504 when the budget ran out
or the answer was lost (nothing these checks do needs undoing); 502 when the platform could not be reached. Never a
500 for anything a client sends. The handlers are plain functions of the body (:func:`check_response`), tested
without a server.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.core.errors import ConfigurationError
from yibao.core.web import BadRequest, read_body, read_json_object
from yibao.envelope.errors import BusinessRejection, EnvelopeValidationError, TransportError, UnknownOutcome
from yibao.hisevents.models import validation_reason
from yibao.workinjury_sync import metrics
from yibao.workinjury_sync.absorb import poll_now, redownload
from yibao.workinjury_sync.config import ChainConfig
from yibao.workinjury_sync.streams import QUEUE_STREAMS

__all__ = ["CHECKS", "check_response", "stream_response", "install", "MAX_BODY"]

MAX_BODY = 64 * 1024
log = logging.getLogger(__name__)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)


class FilingCheck(_Body):
    certno: str = Field(min_length=1, max_length=50)
    psn_no: str | None = Field(None, max_length=30)
    mdtrt_admdvs: str | None = Field(None, max_length=6)
    check_date: _dt.date
    scene: str = Field("1", pattern=r"^[123]$", description="1 入院登记, 2 出院结算, 3 辅助器具配置结算")


class CardAuth(_Body):
    certno: str = Field(min_length=1, max_length=50)
    card_no: str = Field(min_length=1, max_length=20)
    psn_name: str | None = Field(None, max_length=50)


class CardInternalAuth(_Body):
    card_no: str = Field(min_length=1, max_length=20)
    card_random: str = Field(min_length=1, max_length=64)
    card_mac: str = Field(min_length=1, max_length=64)


class ECardScan(_Body):
    qr_code: str = Field(min_length=1, max_length=1024)
    scene: str | None = Field(None, pattern=r"^[123]$")


class SettlementsByPerson(_Body):
    certno: str = Field(min_length=1, max_length=50)
    psn_no: str | None = Field(None, max_length=30)
    begin_date: _dt.date | None = None
    end_date: _dt.date | None = None


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


#: path → (transaction, body model, the platform input built from it and the configuration)
CHECKS: dict[str, tuple[str, type[_Body] | None, Any]] = {
    "/workinjury/filing-check": ("GYD051", FilingCheck, lambda b, c: {"data": _compact({
        "certno": b.certno, "psn_no": b.psn_no, "org_code": c.org_code, "mdtrt_admdvs": b.mdtrt_admdvs or c.admdvs,
        "check_date": b.check_date, "scene": b.scene})}),
    "/workinjury/card-auth": ("GYD052", CardAuth, lambda b, c: {"data": _compact({
        "certno": b.certno, "card_no": b.card_no, "psn_name": b.psn_name, "org_code": c.org_code})}),
    "/workinjury/card-internal-auth": ("GYD055", CardInternalAuth, lambda b, c: {"data": {
        "card_no": b.card_no, "card_random": b.card_random, "card_mac": b.card_mac, "org_code": c.org_code}}),
    "/workinjury/ecard-scan": ("GYU010", ECardScan, lambda b, c: {"data": _compact({
        "qr_code": b.qr_code, "org_code": c.org_code, "scene": b.scene})}),
    "/workinjury/settlements": ("GYD104", SettlementsByPerson, lambda b, c: {"query": _compact({
        "certno": b.certno, "psn_no": b.psn_no, "begin_date": b.begin_date, "end_date": b.end_date})}),
    "/workinjury/ping": ("GYU000", None, lambda b, c: {"data": {"org_code": c.org_code}}),
}


async def check_response(client: Any, config: ChainConfig, path: str, body: bytes | None, *,
                         timeout_s: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of one realtime check. Never raises for anything a client can send."""
    infno, model, build = CHECKS[path]
    outcome = "error"
    try:
        try:
            request = None
            if model is not None:
                request = model.model_validate(read_json_object(body, max_bytes=MAX_BODY))
        except BadRequest as exc:
            outcome = "invalid"
            return exc.status, {"error": str(exc)}
        except ValidationError as exc:
            outcome = "invalid"
            return 400, {"error": validation_reason(exc)}
        try:
            reply = await asyncio.wait_for(client.call(infno, build(request, config), read_timeout_s=timeout_s),
                                           timeout=timeout_s)
        except EnvelopeValidationError as exc:
            outcome = "invalid"
            return 400, {"error": str(exc), "infno": infno}
        except BusinessRejection as exc:
            outcome = "refused"
            return 422, {"error": exc.err_msg, "infno": infno, "infcode": exc.infcode}
        except (asyncio.TimeoutError, UnknownOutcome):
            outcome = "timeout"
            return 504, {"error": f"no answer from the work-injury platform within {timeout_s:g} s", "infno": infno}
        except TransportError as exc:
            return 502, {"error": f"the work-injury platform could not be reached ({exc.detail})", "infno": infno}
        except ConfigurationError as exc:
            return 503, {"error": str(exc), "infno": infno}
        except Exception as exc:  # the platform (or the way to it) failed in a way nobody classified: not the client's
            log.warning("realtime check failed", extra={"fields": {"infno": infno, "error": type(exc).__name__}})
            return 502, {"error": f"the work-injury platform's answer could not be used ({type(exc).__name__})",
                         "infno": infno}
        output = dict(reply.output)
        passed = output.get("passed")
        result = "ok" if passed is None else ("passed" if str(passed) == "1" else "failed")
        outcome = result if result != "ok" else "passed"
        return 200, {"infno": infno, "trans_no": reply.trans_no, "result": result, "output": output}
    finally:
        metrics.REALTIME.labels(infno, outcome).inc()


async def stream_response(engine: Any, infno: str, action: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
    """Ops asks a stream to poll now, or a past delivery again (GYR005)."""
    if infno not in QUEUE_STREAMS:
        return 404, {"error": f"{infno} is not a download stream ({', '.join(QUEUE_STREAMS)})"}
    message_id = f"ops:{uuid.uuid4().hex}"
    if action == "poll":
        await engine.absorb([poll_now(infno, message_id)])
        return 202, {"stream": infno, "polling": True}
    try:
        data = read_json_object(body, max_bytes=MAX_BODY)
    except BadRequest as exc:
        return exc.status, {"error": str(exc)}
    trans_no = data.get("trans_no")
    if not isinstance(trans_no, str) or not 0 < len(trans_no) <= 40:
        return 400, {"error": "trans_no: required, the serial of the delivery to ask again (≤ 40 characters)"}
    await engine.absorb([redownload(infno, trans_no, message_id)])
    return 202, {"stream": infno, "redownload": trans_no}


def install(app: Any, client_of: Any, engine_of: Any, config: ChainConfig, timeout_s: float) -> None:
    """Add the endpoints to a faust app's web server. ``client_of()`` / ``engine_of()`` give the worker's platform
    client and chain engine."""
    from faust.web import View

    for path, (infno, model, _) in CHECKS.items():
        def view(path: str = path, is_post: bool = model is not None) -> type:
            class Check(View):  # type: ignore[misc]
                async def _answer(self, request: Any) -> Any:
                    body = await read_body(request, max_bytes=MAX_BODY) if is_post else None
                    status, payload = await check_response(client_of(), config, path, body, timeout_s=timeout_s)
                    return self.json(payload, status=status)

                if is_post:
                    async def post(self, request: Any) -> Any:
                        return await self._answer(request)
                else:
                    async def get(self, request: Any) -> Any:
                        return await self._answer(request)

            Check.__name__ = f"WorkInjury{infno}"
            return Check

        app.page(path)(view())

    @app.page("/workinjury/downloads/{infno}/{action}")
    class Streams(View):  # type: ignore[misc]
        async def post(self, request: Any, infno: str, action: str) -> Any:
            if action not in ("poll", "redownload"):
                return self.json({"error": "unknown action (poll, redownload)"}, status=404)
            body = await read_body(request, max_bytes=MAX_BODY)
            status, payload = await stream_response(engine_of(), infno, action, body)
            return self.json(payload, status=status)
