"""A PostgreSQL cluster and a Kafka broker of a test's own that the test can stop and start again, to play an
outage: the database restarted by its administrator (``pg_ctl stop -m fast`` … ``start``), the broker restarted
(SIGTERM … the same process line again, same ports, same data). Never the session's stack: other tests keep it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from yibao.stack import kafka_kraft, postgres
from yibao.stack._proc import stop_process, wait_for_port, which
from yibao.core.errors import StackError

__all__ = ["RestartablePostgres", "RestartableKafka", "require", "poll", "readiness"]


def require(what: str, ok: bool, why: str) -> None:
    """Skip a test the machine cannot run — or fail it when the real stack is required (CI)."""
    if ok:
        return
    if os.environ.get("YIBAO_REQUIRE_REAL") == "1":
        pytest.fail(f"{what} required but not available: {why}")
    pytest.skip(f"{what} not available: {why}")


class RestartablePostgres(postgres.PostgresServer):
    """A private cluster (see yibao.stack.postgres) with a fast stop and a start again on the same port."""

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        directory = postgres.bin_dir()
        assert directory is not None and self.workdir is not None
        return self._run([str(directory / "pg_ctl"), "-D", str(self.workdir / "data"), *args])

    def stop_fast(self) -> None:
        """``pg_ctl stop -m fast``: sessions are ended (admin shutdown), the server goes away."""
        done = self._pg_ctl("-m", "fast", "-w", "stop")
        if done.returncode != 0:
            raise StackError("pg_ctl stop failed: " + done.stderr[-500:])

    def start_again(self, timeout: float = 60) -> None:
        options = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        done = self._pg_ctl("-o", options, "-l", str(self.log), "-w", "-t", str(int(timeout)), "start")
        if done.returncode != 0:
            raise StackError("pg_ctl start failed: " + done.stderr[-500:])
        wait_for_port(self.port, proc=None, timeout=timeout, what="PostgreSQL", log=self.log)


class RestartableKafka(kafka_kraft.KafkaBroker):
    """A KRaft broker whose process can be stopped and started again on the same ports and data."""

    def __init__(self) -> None:
        super().__init__(workdir=Path(tempfile.mkdtemp(prefix="yibao-kafka-restart-")))

    def _command(self) -> list[str]:
        java = which("java")
        assert java is not None
        return [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC", "-cp", f"{kafka_kraft.ensure_jars()}/*",
                "kafka.Kafka", str(self.workdir / "server.properties")]

    def stop_now(self) -> None:
        stop_process(self.proc, timeout=30)
        self.proc = None

    def start_again(self, timeout: float = 90) -> None:
        started_before = self.log.read_text(errors="replace").count("Kafka Server started")
        log = self.log.open("ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        wait_for_port(self.port, proc=self.proc, timeout=timeout, what="Kafka broker", log=self.log)
        poll(lambda: self.log.read_text(errors="replace").count("Kafka Server started") > started_before,
             timeout, "the broker to report 'started' again")


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
