"""The registration worker: ``yibao worker registration``.

One faust app: an agent absorbing ``his_events`` and ``settlement_facts`` into visits, the chain engine's scheduler
driving each visit's chain against the national platform (see :mod:`yibao.registration.chain`), the outbox relay,
and the web endpoints (/metrics, /healthz, /readyz, /consultation-fee/quote, /consultation-fee/rules).
"""

from __future__ import annotations

from yibao.chains.runtime import ChainRuntime
from yibao.core.runtime import ServiceRuntime
from yibao.registration import http
from yibao.registration.absorb import route
from yibao.registration.chain import RegistrationChain
from yibao.registration.config import ChainConfig
from yibao.registration.results import SERVICE
from yibao.registration.settings import RegistrationSettings

__all__ = ["build", "main"]


def build(settings: RegistrationSettings | None = None) -> ServiceRuntime:
    from yibao.envelope.catalog import Catalog
    from yibao.envelope.settings import PlatformSettings

    settings = settings or RegistrationSettings()
    platform = PlatformSettings()
    catalog = Catalog.load(platform.province)
    config = ChainConfig.from_settings(settings, platform.fixmedins_code)  # rules validated here
    runtime = ServiceRuntime(settings, name=SERVICE)
    chains = ChainRuntime(runtime, RegistrationChain(config), settings, catalog=catalog)
    chains.subscribe(["his_events", "settlement_facts"], route, name="registration-absorb")
    http.install(runtime.app, config.fee_rules)
    return runtime


def main() -> int:
    return build().run()
