"""Choosing the broker and the database, and saying which was chosen.

Order of preference:

* broker — ``KAFKA_BOOTSTRAP`` if set (always wins); else, for ``prefer="real"``: testcontainers Kafka when a
  Docker engine answers, else a real Apache Kafka 4.x (KRaft) when Java 17+ and Maven are present, else the
  embedded Tansu broker; for ``prefer="embedded"`` (the zero-setup demo): Tansu first.
* database — ``DATABASE_URL`` if set; else for ``prefer="real"``: testcontainers PostgreSQL with Docker, else a
  private PostgreSQL from the distribution's binaries, else SQLite; for ``prefer="embedded"``: SQLite.

``require_real=True`` (CI) turns any fallback to Tansu or SQLite into a :class:`~yibao.core.errors.StackError`.
The result is printed by the callers and can be written as JSON (``YIBAO_STACK_REPORT``) for CI to check.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from yibao.core.db.engine import dialect_of
from yibao.core.errors import StackError
from yibao.stack import containers, kafka_kraft, postgres, tansu

__all__ = ["Stack", "StackInfo", "start_stack", "REAL_KAFKA_KINDS", "REAL_DB_KINDS"]

Prefer = Literal["real", "embedded"]
REAL_KAFKA_KINDS = frozenset({"kafka-kraft", "testcontainers-kafka", "external"})
REAL_DB_KINDS = frozenset({"postgresql", "testcontainers-postgresql", "external-postgresql"})


@dataclass
class StackInfo:
    kafka_bootstrap: str
    kafka_kind: str  # external | kafka-kraft | testcontainers-kafka | tansu
    kafka_detail: str
    database_url: str
    database_kind: str  # external-postgresql | external-sqlite | postgresql | testcontainers-postgresql | sqlite
    database_detail: str
    notes: list[str] = field(default_factory=list)

    @property
    def real_kafka(self) -> bool:
        return self.kafka_kind in REAL_KAFKA_KINDS

    @property
    def real_database(self) -> bool:
        return self.database_kind in REAL_DB_KINDS

    @property
    def idempotent_producer_ok(self) -> bool:
        return self.kafka_kind != "tansu"

    def describe(self) -> str:
        url = self.database_url
        if "@" in url:
            url = url.split("://", 1)[0] + "://…@" + url.rsplit("@", 1)[1]
        lines = [
            f"broker:   {self.kafka_kind} at {self.kafka_bootstrap} ({self.kafka_detail})",
            f"database: {self.database_kind} at {url} ({self.database_detail})",
        ]
        lines += [f"note:     {n}" for n in self.notes]
        return "\n".join(lines)

    def write_report(self, path: str | os.PathLike[str]) -> None:
        data = asdict(self)
        data["database_url"] = self.describe().splitlines()[1].split(" at ", 1)[1].rsplit(" (", 1)[0]
        # parallel test processes each write theirs: replaced whole, never read half-written
        target = Path(path)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        os.replace(partial, target)


@dataclass
class Stack:
    info: StackInfo
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    postgres_server: postgres.PostgresServer | None = field(default=None, repr=False)
    #: the broker this stack started (kafka-kraft), for a run that restarts it
    kafka_broker: kafka_kraft.KafkaBroker | None = field(default=None, repr=False)

    def stop(self) -> None:
        while self._stoppers:
            try:
                self._stoppers.pop()()
            except Exception:  # stopping must go on for the rest
                pass

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack(
    *,
    prefer: Prefer = "real",
    require_real: bool = False,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    durable_database: bool = False,
) -> Stack:
    env = dict(os.environ if env is None else env)
    stack = Stack(info=StackInfo("", "", "", "", "", ""))
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="yibao-stack-"))
        stack._stoppers.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        _choose_kafka(stack, prefer, workdir, env)
        _choose_database(stack, prefer, workdir, env, durable=durable_database)
    except BaseException:
        stack.stop()
        raise
    if require_real:
        missing = []
        if not stack.info.real_kafka:
            missing.append(f"broker fell back to {stack.info.kafka_kind}")
        if not stack.info.real_database:
            missing.append(f"database fell back to {stack.info.database_kind}")
        if missing:
            stack.stop()
            raise StackError("a real Kafka and PostgreSQL are required here, but " + "; ".join(missing)
                             + " — " + "; ".join(stack.info.notes))
    report = env.get("YIBAO_STACK_REPORT")
    if report:
        stack.info.write_report(report)
    return stack


def _choose_kafka(stack: Stack, prefer: Prefer, workdir: Path, env: dict[str, str]) -> None:
    info = stack.info
    if env.get("KAFKA_BOOTSTRAP"):
        info.kafka_bootstrap, info.kafka_kind, info.kafka_detail = env["KAFKA_BOOTSTRAP"], "external", "KAFKA_BOOTSTRAP"
        return
    order = ["tansu"] if prefer == "embedded" else ["docker", "kraft", "tansu"]
    for kind in order:
        if kind == "docker":
            if not containers.docker_engine_available():
                info.notes.append("no Docker engine answers: testcontainers skipped")
                continue
            container, bootstrap = containers.start_kafka()
            stack._stoppers.append(container.stop)
            info.kafka_bootstrap, info.kafka_kind, info.kafka_detail = bootstrap, "testcontainers-kafka", "apache/kafka"
            return
        if kind == "kraft":
            ok, why = kafka_kraft.available()
            if not ok:
                info.notes.append(f"real Kafka unavailable: {why}")
                continue
            try:
                broker = kafka_kraft.KafkaBroker(workdir / "kafka").start()
            except StackError as exc:
                info.notes.append(f"real Kafka failed to start: {str(exc).splitlines()[0]}")
                continue
            stack._stoppers.append(broker.stop)
            stack.kafka_broker = broker
            info.kafka_bootstrap, info.kafka_kind = broker.bootstrap, "kafka-kraft"
            info.kafka_detail = f"Apache Kafka {kafka_kraft.kafka_version()}, KRaft, {why}"
            return
        if kind == "tansu":
            ok, why = tansu.available()
            if not ok:
                info.notes.append(f"embedded broker unavailable: {why}")
                continue
            broker_t = tansu.TansuBroker(workdir / "tansu").start()
            stack._stoppers.append(broker_t.stop)
            info.kafka_bootstrap, info.kafka_kind, info.kafka_detail = broker_t.bootstrap, "tansu", "embedded, memory only"
            return
    raise StackError("no Kafka broker could be started: " + "; ".join(info.notes))


def _choose_database(stack: Stack, prefer: Prefer, workdir: Path, env: dict[str, str], *,
                     durable: bool = False) -> None:
    info = stack.info
    if env.get("DATABASE_URL"):
        url = env["DATABASE_URL"]
        kind = "external-postgresql" if dialect_of(url) == "postgresql" else f"external-{dialect_of(url)}"
        info.database_url, info.database_kind, info.database_detail = url, kind, "DATABASE_URL"
        return
    if prefer == "real":
        if containers.docker_engine_available():
            container, url = containers.start_postgres()
            stack._stoppers.append(container.stop)
            info.database_url, info.database_kind, info.database_detail = url, "testcontainers-postgresql", "postgres:16"
            return
        ok, why = postgres.available()
        if ok:
            try:
                server = postgres.PostgresServer(durable=durable).start()
            except StackError as exc:
                info.notes.append(f"PostgreSQL failed to start: {str(exc).splitlines()[0]}")
            else:
                stack._stoppers.append(server.stop)
                stack.postgres_server = server
                info.database_url, info.database_kind = server.url, "postgresql"
                info.database_detail = (f"PostgreSQL {server.version()}, private cluster, "
                                        + ("fsync and synchronous_commit on" if durable else "fsync off"))
                return
        else:
            info.notes.append(f"PostgreSQL unavailable: {why}")
    path = workdir / "yibao.sqlite"
    info.database_url, info.database_kind, info.database_detail = f"sqlite:///{path}", "sqlite", "embedded file"
