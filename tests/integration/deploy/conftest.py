"""The running bridge the live ops tests look at: every service that has a worker, on the session's real Kafka and
a fresh database of the session's PostgreSQL, started for each module that asks for it and stopped after its last
test (idle workers would otherwise share the machine's cores with the rest of the suite, and under
``pytest -n`` one process may run this folder's modules between others')."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from integration.deploy.live import services_with_a_worker
from support.stack import new_database
from yibao.cli import mobilepay_demo
from yibao.core.db.migrations import upgrade
from yibao.core.kafka import create_topics
from yibao.hisevents import load_mapping
from yibao.stack import Stack
from yibao.stack.bridge import LocalBridge

MAPPING = "example-oracle-his"


@pytest.fixture(scope="module")
def running_bridge(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBridge]:
    tmp = tmp_path_factory.mktemp("ops-live")
    url = new_database(stack, tmp)
    upgrade(url)
    prefix = f"ops{uuid.uuid4().hex[:8]}."
    info = dataclasses.replace(stack.info, database_url=url)
    cdc = [prefix + t for t in load_mapping(MAPPING).topics()]
    asyncio.run(create_topics(info.kafka_bootstrap, [(t, 1, {}) for t in cdc]))
    (tmp / "his").mkdir()
    bridge = LocalBridge(info, tmp, prefix=prefix, services=services_with_a_worker(), env={
        "YIBAO_RECONCILIATION_REPORTS_DIR": str(tmp / "reports"),
        "YIBAO_RECONCILIATION_SCHEDULE_ENABLED": "false",
        # the his-writer refuses to start without the HIS database it writes the answers into: a database of its own
        "YIBAO_HIS_WRITER_HIS_DATABASE_URL": new_database(stack, tmp / "his"),
    })
    # mobile pay refuses to start without its keys and channels: the demo's (platform keys, channels file, callback)
    mobilepay_demo.prepare(bridge, tmp)
    try:
        bridge.start()
        yield bridge
    finally:
        bridge.stop()
