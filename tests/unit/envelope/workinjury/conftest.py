"""The hospital and the work-injury platform, each with its own key pair."""

from __future__ import annotations

import pytest

from yibao.envelope.crypto import generate_keypair


@pytest.fixture(scope="session")
def keys() -> dict[str, tuple[str, str]]:
    return {"hospital": generate_keypair(), "platform": generate_keypair(), "stranger": generate_keypair()}
