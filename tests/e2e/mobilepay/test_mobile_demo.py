"""The mobile-pay part of ``yibao demo`` (yibao.cli.mobilepay_demo) on the real broker and database: a small day
of mobile-pay visits ends with every order paid, refunded or revoked as planned, and HIS told what the platform's
ledger holds."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from support.stack import new_database
from yibao.cli import mobilepay_demo
from yibao.core.db.migrations import upgrade
from yibao.core.kafka import create_topics
from yibao.core.topics import CATALOG
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_the_demos_mobile_pay_day(stack: Stack, tmp_path: Path) -> None:
    url = new_database(stack, tmp_path)
    upgrade(url)
    prefix = f"mpd{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    asyncio.run(create_topics(info.kafka_bootstrap, [(s.full_name(prefix), s.partitions, {}) for s in CATALOG]))
    bridge = LocalBridge(info, tmp_path, prefix=prefix, services=("registration", "mobilepay"), sim_seed=2026,
                         env={"YIBAO_SIM_HOLD_S": "1", "YIBAO_REGISTRATION_CHAIN_BACKOFF_S": "0.1"})
    mobilepay_demo.prepare(bridge, tmp_path, order_ttl_s=5)
    bridge.start()
    try:
        lines = asyncio.run(mobilepay_demo.run(bridge, visits=9))
    finally:
        bridge.stop()
    text = "\n".join(lines)
    print(text)
    assert "PROBLEMS" not in text, text
    assert "paid (2.0)" in text and "paid (1.0)" in text and "cancelled (abandon)" in text, text
    assert "refunded (ALL)" in text and "refunded (CASH, then HI at the window)" in text, text
