"""Settlement-result callbacks to the hospital: signed, encrypted, POSTed, retried with backoff until the
hospital acknowledges (HTTP 2xx and a JSON body with ``code`` 0 / "0" or ``success`` true).

Faults on target ``callback``: ``duplicate`` delivers an acknowledged callback a second time, ``late`` waits
before the first attempt, ``lose`` never sends it, ``partial`` sends one without the final status (ordStas 2, no
amounts). Every delivery is kept on the order (``callbacks``) with the envelope sent, so a test can replay it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from yibao.core import clock

from .deliveries import Deliveries
from . import wire
from .faults import FaultPlan
from .mobilepay import MobilePlatform, mp_timestamp
from .mpcodec import MpCodec
from .settings import SimulatorSettings
from .state import MobileOrder

__all__ = ["CallbackSender", "acknowledged"]

log = logging.getLogger(__name__)


def acknowledged(response: httpx.Response) -> bool:
    if not 200 <= response.status_code < 300:
        return False
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return response.text.strip().upper() in {"SUCCESS", "OK"}
    if not isinstance(body, dict):
        return False
    return str(body.get("code")) == "0" or body.get("success") is True


class CallbackSender(Deliveries):
    def __init__(self, settings: SimulatorSettings, mobile: MobilePlatform, codec: MpCodec, faults: FaultPlan) -> None:
        super().__init__()
        self.settings = settings
        self.mobile = mobile
        self.codec = codec
        self.faults = faults
        self.callback_url = settings.callback_url

    def envelope(self, order: MobileOrder, *, partial: bool = False) -> dict[str, Any]:
        fields = {"appId": self.codec.app_id, "encType": "SM4", "signType": "SM2", "version": self.settings.mp_version,
                  "timestamp": mp_timestamp(clock.now(), self.settings.mp_timestamp_ms)}
        with self.mobile.ledger.lock:
            data = self.mobile.callback_data(order, partial=partial)
        return self.codec.seal(fields, data)

    def schedule(self, order: MobileOrder) -> None:
        if not self.callback_url:
            order.callbacks.append({"status": "no callback URL configured"})
            return
        self._start(self._deliver(order))

    async def _deliver(self, order: MobileOrder) -> None:
        decision = self.faults.decide("callback")
        if decision.lose:
            order.callbacks.append({"status": "lost (fault callback:lose)", "time": clock.format_datetime(clock.now())})
            return
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        copies = 2 if decision.duplicate else 1
        for copy in range(copies):
            await self._send_until_acknowledged(order, copy, partial=decision.partial)

    async def _send_until_acknowledged(self, order: MobileOrder, copy: int, *, partial: bool = False) -> None:
        delay = self.settings.callback_retry_initial_s
        for attempt in range(1, self.settings.callback_max_attempts + 1):
            entry: dict[str, Any] = {"copy": copy, "attempt": attempt, "time": clock.format_datetime(clock.now())}
            envelope = self.envelope(order, partial=partial)
            entry["envelope"] = envelope
            try:
                response = await self._http.post(
                    self.callback_url, content=wire.dumps_bytes(envelope),
                    headers={"content-type": "application/json;charset=UTF-8"})
                entry["http_status"] = response.status_code
                ok = acknowledged(response)
            except httpx.HTTPError as exc:
                entry["error"] = type(exc).__name__
                ok = False
            entry["acknowledged"] = ok
            order.callbacks.append(entry)
            if ok:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.callback_retry_max_s)
        log.warning("callback given up after %d attempts", self.settings.callback_max_attempts,
                    extra={"fields": {"pay_ord_id": order.pay_ord_id}})

    async def drain(self, timeout: float = 5.0) -> None:
        await super().drain(timeout)
