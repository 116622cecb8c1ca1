"""The settlement worker: ``yibao worker settlement``.

One faust app: an agent absorbing ``his_events`` (charge lines, settlement and refund requests) and registration's
``visits`` facts into visits, the chain engine's scheduler driving each visit's chain against the national platform
(see :mod:`yibao.settlement.chain`), the outbox relay, and the web endpoints (/metrics, /healthz, /readyz).
"""

from __future__ import annotations

from yibao.chains.runtime import ChainRuntime
from yibao.core.runtime import ServiceRuntime
from yibao.settlement.absorb import route
from yibao.settlement.chain import SettlementChain
from yibao.settlement.config import ChainConfig
from yibao.settlement.results import SERVICE
from yibao.settlement.settings import SettlementSettings

__all__ = ["build", "main"]


def build(settings: SettlementSettings | None = None) -> ServiceRuntime:
    from yibao.envelope.catalog import Catalog
    from yibao.envelope.settings import PlatformSettings

    settings = settings or SettlementSettings()
    catalog = Catalog.load(PlatformSettings().province)
    runtime = ServiceRuntime(settings, name=SERVICE)
    chains = ChainRuntime(runtime, SettlementChain(ChainConfig.from_settings(settings), catalog=catalog), settings,
                          catalog=catalog)
    chains.subscribe(["his_events", "visits"], route, name="settlement-absorb")
    return runtime


def main() -> int:
    return build().run()
