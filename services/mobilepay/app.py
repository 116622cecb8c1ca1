"""The mobile-pay worker: ``yibao worker mobilepay``.

One faust app: an agent absorbing ``his_events`` (outpatient registrations, charge lines, cancellations, counter
settlement requests) and registration's ``visits`` facts into visits; the chain engine's scheduler driving each
visit's orders against the mobile-pay platform (:mod:`yibao.mobilepay.chain`, through
:class:`~yibao.envelope.mobilepay.client.MobilePayClient`); the outbox relay; and the web endpoints — /metrics,
/healthz, /readyz, the channels' API and the platform's callback (:mod:`yibao.mobilepay.http`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from yibao.chains.runtime import ChainRuntime
from yibao.core.deployment import Deployment
from yibao.core.errors import ConfigurationError
from yibao.core.runtime import ServiceRuntime
from yibao.mobilepay import http, store
from yibao.mobilepay.absorb import route
from yibao.mobilepay.chain import MobilePayChain
from yibao.mobilepay.channels import Channels
from yibao.mobilepay.config import ChainConfig
from yibao.mobilepay.results import ORDERS_BY_PHASE, SERVICE
from yibao.mobilepay.settings import MobilepaySettings
from yibao.mobilepay.state import OrderPhase

__all__ = ["build", "main"]

log = logging.getLogger(__name__)

PHASES: tuple[str, ...] = OrderPhase.__args__  # type: ignore[attr-defined]


def build(settings: MobilepaySettings | None = None, *, platform: Any = None) -> ServiceRuntime:
    from yibao.envelope.mobilepay.catalog import load_catalog
    from yibao.envelope.mobilepay.client import MobilePayClient
    from yibao.envelope.mobilepay.codec import MobilePayCodec
    from yibao.envelope.mobilepay.settings import MobilePaySettings

    settings = settings or MobilepaySettings()
    platform = platform or MobilePaySettings()
    if not platform.private_key.get_secret_value() or not platform.platform_public_key:
        raise ConfigurationError("mobile pay needs the hospital's SM2 private key (YIBAO_MP_PRIVATE_KEY) and the "
                                 "platform's public key (YIBAO_MP_PLATFORM_PUBLIC_KEY)")
    codec = MobilePayCodec(platform.app_id, platform.app_secret, platform.private_key, platform.platform_public_key,
                           version=platform.version, timestamp_format=platform.timestamp_format,
                           backend=platform.sm2_backend, nested_numbers=platform.nested_numbers)
    catalog = load_catalog()
    wechat_settings = None
    if settings.wechat_enabled:
        from yibao.envelope.mobilepay.wechat import WeChatSettings

        wechat_settings = WeChatSettings()
        if not wechat_settings.configured:
            raise ConfigurationError("WeChat channels are enabled (YIBAO_MOBILEPAY_WECHAT_ENABLED) but WeChat Pay is "
                                     "not configured: YIBAO_WECHAT_MERCHANT_PRIVATE_KEY, _PLATFORM_PUBLIC_KEY, "
                                     "_API_V3_KEY …")
    config = ChainConfig.from_settings(settings, platform, wechat_settings)
    channels = Channels(settings.channels_file)
    if not channels.enabled:
        log.warning("no channels file is configured: every channel request is refused "
                    "(set YIBAO_MOBILEPAY_CHANNELS_FILE)")
    runtime = ServiceRuntime(settings, name=SERVICE)
    # the call log names the deployment's scoped service, as its chain rows do: the mobile reconciliation of one
    # deployment reads only its own orders from a database two deployments share
    calls_as = Deployment(prefix=getattr(settings, "topic_prefix", "") or "").scoped(SERVICE)

    def client() -> Any:
        mobile = MobilePayClient(platform, engine=runtime.engine, service=calls_as, catalog=catalog)
        if wechat_settings is None:
            return mobile
        from yibao.envelope.mobilepay.client import MobileAndWeChatClient
        from yibao.envelope.mobilepay.wechat import WeChatPayClient

        return MobileAndWeChatClient(mobile, WeChatPayClient(wechat_settings, engine=runtime.engine, service=calls_as))

    wechat_client = None
    if wechat_settings is not None:
        from yibao.envelope.mobilepay.wechat import WeChatPayClient

        wechat_client = WeChatPayClient(wechat_settings, engine=runtime.engine, service=calls_as)

    chains = ChainRuntime(runtime, MobilePayChain(config, catalog=catalog), settings, client_factory=client,
                          catalog=catalog)
    chains.subscribe(["his_events", "visits"], route, name="mobilepay-absorb")
    identity = _identity(settings, runtime)
    api = http.MobilePayApi(db=runtime.db, engine=chains.engine, channels=channels, codec=codec, settings=settings,
                            identity=identity, wechat=wechat_client)
    http.install(runtime.app, api)
    runtime.mobilepay = api  # type: ignore[attr-defined]  (tests and operators reach it here)

    @runtime.app.task
    async def _orders_gauge() -> None:
        while True:
            try:
                counts = await runtime.db(store.phase_counts)
                for phase in PHASES:
                    ORDERS_BY_PHASE.labels(phase).set(counts.get(phase, 0))
            except Exception as exc:  # noqa: BLE001 - a gauge never stops the worker
                log.warning("order gauge not refreshed", extra={"fields": {"error": type(exc).__name__}})
            await asyncio.sleep(10)

    return runtime


def _identity(settings: MobilepaySettings, runtime: ServiceRuntime) -> Any:
    """The settlement-type checks (1101 through the national client, 区划 from 1901), when enabled."""
    if not settings.identity_check:
        return None
    from yibao.mobilepay.identity import IdentityService

    return IdentityService.build(settings, runtime)


def main() -> int:
    return build().run()
