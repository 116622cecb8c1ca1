"""Fixtures of the national-envelope unit tests (the stand-ins themselves are in national_standins.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from unit.envelope.national.national_standins import StandInCatalog, StandInPlatform
from yibao.envelope.settings import PlatformSettings


@pytest.fixture
def platform() -> StandInPlatform:
    return StandInPlatform()


@pytest.fixture
def settings() -> PlatformSettings:
    return PlatformSettings(retry_backoff_s=0, retry_attempts=3, msgid_slots=4)


@pytest.fixture
async def make_client(sqlite_engine: Engine, platform: StandInPlatform, settings: PlatformSettings):
    """Build NationalClients wired to the stand-in platform; all closed after the test."""
    from yibao.envelope.client import NationalClient

    clients: list[NationalClient] = []

    def build(settings_: PlatformSettings | None = None, **kwargs: Any) -> NationalClient:
        kwargs.setdefault("catalog", StandInCatalog())
        kwargs.setdefault("transport", httpx.MockTransport(platform.handler))
        client = NationalClient(settings_ or settings, engine=sqlite_engine, service="test", **kwargs)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()
