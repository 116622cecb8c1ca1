"""The :class:`Simulator`: both HTTP faces (platform and admin, on separate ports) around one ledger.

    async with Simulator(SimulatorSettings(port=0, admin_port=0)) as sim:
        sim.url, sim.admin_url   # http://127.0.0.1:<port>
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from aiohttp import web

from . import smcrypto
from .callbacks import CallbackSender
from .errors import SimulatorConfigError
from .faults import FaultPlan
from .gateway import Gateway
from .http_admin import build_admin_app
from .http_platform import build_platform_app
from .mobilepay import MobilePlatform
from .mpcodec import MpCodec
from .national import NationalPlatform
from .platform_clock import PlatformClock
from .policy import DEFAULT_POLICY, SettlementPolicy
from .population import SimPerson, load_population
from .rx_feedback import RxFeedback
from .settings import SimulatorSettings
from .state import Ledger
from .wechat import WeChatPlatform
from .workinjury import WorkInjuryPlatform

__all__ = ["Simulator", "load_policy"]


def load_policy(path: str) -> SettlementPolicy:
    if not path:
        return DEFAULT_POLICY
    try:
        import yaml

        return SettlementPolicy.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except Exception as exc:  # noqa: BLE001
        raise SimulatorConfigError(f"policy file {path}: cannot be read ({type(exc).__name__})") from exc


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(256)
    sock.setblocking(False)
    return sock


class Simulator:
    """One run of the simulated platforms. Usable without HTTP too: ``sim.national.process(envelope)``."""

    def __init__(self, settings: SimulatorSettings | None = None, *, policy: SettlementPolicy | None = None,
                 persons: list[SimPerson] | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        s = self.settings
        self.clock = PlatformClock()
        people = persons if persons is not None else load_population(s.seed, s.population_size)
        self.ledger = Ledger(people, s.fixmedins_codes)
        self.national = NationalPlatform(s, self.ledger, self.clock, policy or load_policy(s.policy_file))
        self.faults = FaultPlan(s.seed, s.faults)
        if s.platform_private_key_hex or s.platform_public_key_hex:
            if not (s.platform_private_key_hex and s.platform_public_key_hex):
                raise SimulatorConfigError("platform_private_key_hex and platform_public_key_hex go together")
            self._private = bytes.fromhex(s.platform_private_key_hex)
            self._public = smcrypto.public_from_hex(s.platform_public_key_hex)
        else:
            self._private, self._public = smcrypto.sm2_keypair()
        self.gateway = Gateway(s, self._private, self._public)
        self.workinjury = WorkInjuryPlatform(s, self.clock.now, self._private, self._public)
        hospital_mp = smcrypto.public_from_hex(s.mp_hospital_public_key_hex) if s.mp_hospital_public_key_hex else None
        self.mp_codec = MpCodec(s.mp_app_id, s.mp_app_secret, self._private, self._public, hospital_mp)
        self.mobile = MobilePlatform(self.national)
        self.callbacks = CallbackSender(s, self.mobile, self.mp_codec, self.faults)
        self.rx_feedback = RxFeedback(s, self.national)  #: 7102/7103 to the hospital (off unless rx_feedback_url)
        self.wechat = WeChatPlatform(s, self.mobile, self.faults)
        self.gateway_refusals: dict[int, int] = {}
        #: wall seconds the national platform spent in its transaction handling, per infno (the platform's own
        #: work, as opposed to the transfer): a benchmark subtracts it from a call's round trip
        self.handler_seconds: dict[str, float] = {}
        self._runners: list[web.AppRunner] = []
        self.url = ""
        self.admin_url = ""

    @property
    def platform_public_key_hex(self) -> str:
        return self._public.hex().upper()

    @property
    def platform_public_key(self) -> bytes:
        return self._public

    def reset(self) -> None:
        self.ledger.reset()
        self.wechat.reset()
        self.workinjury.reset()
        self.faults.reset_counters()
        self.gateway.reset()
        self.gateway_refusals.clear()
        self.handler_seconds.clear()
        self.clock.reset()

    async def start(self) -> None:
        s = self.settings
        if s.port and s.port == s.admin_port:
            raise SimulatorConfigError("the admin API needs its own port, never the platform's")
        for app, port, attr in ((build_platform_app(self), s.port, "url"), (build_admin_app(self), s.admin_port, "admin_url")):
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await runner.setup()
            sock = _bind(s.host, port)
            site = web.SockSite(runner, sock)
            await site.start()
            self._runners.append(runner)
            setattr(self, attr, f"http://{s.host}:{sock.getsockname()[1]}")
        self.wechat.base_url = self.url

    async def stop(self) -> None:
        await self.callbacks.close()
        await self.rx_feedback.close()
        await self.wechat.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
