"""The settlement worker: ``yibao worker settlement``.

It absorbs HIS events (charge lines, settlement and refund requests) and registration's VisitFacts into visits,
and drives each visit's chain against the national platform (see :mod:`yibao.settlement.chain`).
"""

from __future__ import annotations

from yibao.chains.runtime import ChainRuntime
from yibao.core.runtime import ServiceRuntime
from yibao.settlement.chain import SERVICE, SettlementChain
from yibao.settlement.router import make_router
from yibao.settlement.settings import SettlementSettings

__all__ = ["build", "main"]


def build(settings: SettlementSettings | None = None) -> ServiceRuntime:
    settings = settings or SettlementSettings()
    runtime = ServiceRuntime(settings, name=SERVICE)
    chains = ChainRuntime(runtime, SettlementChain(settings), settings)
    chains.subscribe(["his_events", "visits"], make_router(), name="settlement-absorb")
    return runtime


def main() -> int:
    return build().run()
