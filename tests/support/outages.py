"""A PostgreSQL cluster and a Kafka broker of a test's own that the test can stop and start again, to play an
outage: the database restarted by its administrator (``pg_ctl stop -m fast`` … ``start``), the broker restarted
(SIGTERM … the same process line again, same ports, same data). Never the session's stack: other tests keep it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from yibao.stack import kafka_kraft, postgres

__all__ = ["RestartablePostgres", "RestartableKafka", "require", "poll", "readiness"]


def require(what: str, ok: bool, why: str) -> None:
    """Skip a test the machine cannot run — or fail it when the real stack is required (CI)."""
    if ok:
        return
    if os.environ.get("YIBAO_REQUIRE_REAL") == "1":
        pytest.fail(f"{what} required but not available: {why}")
    pytest.skip(f"{what} not available: {why}")


class RestartablePostgres(postgres.PostgresServer):
    """A private cluster of the test's own (yibao.stack.postgres: ``stop_fast`` … ``start_again``)."""


class RestartableKafka(kafka_kraft.KafkaBroker):
    """A KRaft broker of the test's own (yibao.stack.kafka_kraft: ``stop_now`` … ``start_again``)."""

    def __init__(self) -> None:
        super().__init__(workdir=Path(tempfile.mkdtemp(prefix="yibao-kafka-restart-")))


def poll(condition, timeout: float, what: str, *, every: float = 0.25):  # type: ignore[no-untyped-def]
    """Wait until ``condition()`` is truthy (returns it), or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def readiness(url: str) -> tuple[int, dict]:
    try:
        response = httpx.get(f"{url}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        return 0, {"problems": [f"no answer: {type(exc).__name__}"]}
    return response.status_code, response.json()
