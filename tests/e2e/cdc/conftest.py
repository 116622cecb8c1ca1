"""One real Kafka Connect worker (Debezium's PostgreSQL connector inside) for the whole test session.

Started lazily by the first test that asks for it, against the session's Kafka; tests add their own connectors
to it through the REST API and remove them afterwards. Where Connect cannot run (no Java 17, no Maven and no
cached jars) the tests are skipped — except under ``YIBAO_REQUIRE_REAL=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from yibao.stack import Stack
from yibao.stack import connect as connect_stack


@pytest.fixture(scope="session")
def kafka_connect(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[connect_stack.KafkaConnect]:
    ok, why = connect_stack.available()
    if not ok:
        if os.environ.get("YIBAO_REQUIRE_REAL") == "1":
            pytest.fail(f"Kafka Connect is required here but cannot run: {why}")
        pytest.skip(f"Kafka Connect cannot run here: {why}")
    worker = connect_stack.KafkaConnect(tmp_path_factory.mktemp("connect"), stack.info.kafka_bootstrap).start()
    try:
        yield worker
    finally:
        worker.stop()
