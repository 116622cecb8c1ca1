"""Two parties of one mobile-pay application: the hospital (the bridge) and the platform (the simulator)."""

from __future__ import annotations

import pytest

from yibao.envelope.crypto import generate_keypair
from yibao.envelope.mobilepay import MobilePayCodec

APP_ID = "1G6AB2KF30000101A8C0000017B8E5D9"  # an appId of the usual 32-character shape (made up)
APP_SECRET = "8D7A3F1C0B9E4D2A6F5E8C7B1A0D9E3F"


@pytest.fixture(scope="session")
def keys() -> dict[str, tuple[str, str]]:
    return {"hospital": generate_keypair(), "platform": generate_keypair()}


@pytest.fixture
def hospital(keys) -> MobilePayCodec:
    return MobilePayCodec(APP_ID, APP_SECRET, keys["hospital"][0], keys["platform"][1])


@pytest.fixture
def platform(keys) -> MobilePayCodec:
    return MobilePayCodec.for_platform(APP_ID, APP_SECRET, keys["platform"][0], keys["hospital"][1])
