"""The running bridge the live ops tests look at: every service that has a worker, on the session's real Kafka and
a fresh database of the session's PostgreSQL, started once for this folder and stopped when its last test is done
(not at the end of the session: idle workers would share the machine's two cores with the rest of the suite)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

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
HERE = Path(__file__).resolve().parent
_RUNNING: list[LocalBridge] = []


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the folder's last test, stop the bridge."""
    if _RUNNING and (nextitem is None or HERE not in Path(nextitem.path).resolve().parents):
        _RUNNING.pop().stop()


@pytest.fixture(scope="session")
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
    _RUNNING.append(bridge)
    try:
        bridge.start()
        yield bridge
    finally:
        bridge.stop()  # a no-op when the hook above stopped it already
        if bridge in _RUNNING:
            _RUNNING.remove(bridge)
