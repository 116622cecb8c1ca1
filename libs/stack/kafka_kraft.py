"""A real Apache Kafka 4.x broker in KRaft mode, from Maven Central, without Docker.

The broker jars are resolved once by Maven from ``maven/pom.xml`` (kept in the repository, the version pinned
there) into ``~/.cache/yibao-bridge/kafka-<pom hash>/lib`` and reused offline afterwards. Each start formats a
fresh storage directory (``kafka.tools.StorageTool format --standalone``) and runs ``kafka.Kafka`` as combined
broker+controller on loopback-only ports with replication factor 1, -Xmx512m.
"""

from __future__ import annotations

import base64
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from yibao.core.errors import StackError
from yibao.stack._proc import free_port, stop_process, tail, wait_for_port, which
from yibao.stack.maven_jars import ensure_lib, lib_dir, pom_property

__all__ = ["KafkaBroker", "available", "java_major", "ensure_jars", "kafka_version"]

POM = Path(__file__).resolve().parent / "maven" / "pom.xml"


def java_major() -> int | None:
    java = which("java")
    if not java:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def available() -> tuple[bool, str]:
    """Whether this machine can run the real broker, and why not."""
    major = java_major()
    if major is None:
        return False, "no java on PATH"
    if major < 17:
        return False, f"java {major} found; Kafka 4.x needs 17+"
    if which("mvn") is None and not _lib_dir().exists():
        return False, "maven (mvn) not found and no cached broker jars"
    return True, f"java {major}"


def kafka_version() -> str:
    return pom_property(POM, "kafka.version")


def _lib_dir() -> Path:
    return lib_dir(POM, "kafka", kafka_version())


def ensure_jars() -> Path:
    """Resolve the broker jars with Maven once; later calls are offline and instant."""
    return ensure_lib(POM, "kafka", kafka_version(), must_have="kafka_2.13-*.jar", what="Kafka broker")


def _cluster_id() -> str:
    """A random KRaft cluster id (a base64url Uuid) that does not begin with '-': the storage tool would read
    such an id as an option and fail without a word (Kafka's own Uuid.randomUuid avoids them too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class KafkaBroker:
    """One KRaft broker+controller on loopback. ``start()`` / ``stop()``; ``bootstrap`` is host:port."""

    workdir: Path
    port: int = 0
    controller_port: int = 0
    heap: str = "512m"
    #: SCRAM-SHA-512 users (name → password): when given, a second listener takes SASL_PLAINTEXT with them
    scram_users: dict[str, str] = field(default_factory=dict, repr=False)
    sasl_port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL listener (SCRAM-SHA-512), when ``scram_users`` were given."""
        if not self.scram_users:
            raise StackError("this broker has no SASL listener (no scram_users)")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "kafka.log"

    def _listeners(self) -> list[str]:
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}", f"CONTROLLER://127.0.0.1:{self.controller_port}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        extra: list[str] = []
        if self.scram_users:
            listeners.append(f"SASL://127.0.0.1:{self.sasl_port}")
            advertised.append(f"SASL://127.0.0.1:{self.sasl_port}")
            protocols.append("SASL:SASL_PLAINTEXT")
            extra = ["inter.broker.listener.name=PLAINTEXT", "sasl.enabled.mechanisms=SCRAM-SHA-512",
                     "listener.name.sasl.scram-sha-512.sasl.jaas.config="
                     "org.apache.kafka.common.security.scram.ScramLoginModule required;"]
        return [f"listeners={','.join(listeners)}", f"advertised.listeners={','.join(advertised)}",
                f"listener.security.protocol.map={','.join(protocols)}", *extra]

    def _properties(self) -> str:
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
            *self._listeners(),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={self.workdir / 'data'}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "log.flush.interval.messages=9223372036854775807",
            "",
        ])

    def start(self, *, timeout: float = 90) -> "KafkaBroker":
        lib = ensure_jars()
        java = which("java")
        assert java is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        if self.scram_users:
            self.sasl_port = self.sasl_port or free_port()
        props = self.workdir / "server.properties"
        props.write_text(self._properties())
        cluster_id = _cluster_id()
        classpath = f"{lib}/*"
        # SCRAM credentials of a KRaft cluster are written into its metadata when the storage is formatted
        scram = [arg for name, password in self.scram_users.items()
                 for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]
        fmt = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props),
             "--standalone", *scram],
            capture_output=True, text=True,
        )
        if fmt.returncode != 0:
            raise StackError(f"Kafka storage format failed (exit {fmt.returncode}, cluster id {cluster_id}):\n"
                             + (fmt.stdout + fmt.stderr)[-2000:])
        self._launch(timeout)
        return self

    def _launch(self, timeout: float) -> None:
        java = which("java")
        assert java is not None
        started_before = self.log.read_text(errors="replace").count("Kafka Server started") if self.log.exists() else 0
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseSerialGC", "-cp", f"{ensure_jars()}/*", "kafka.Kafka",
             str(self.workdir / "server.properties")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, proc=self.proc, timeout=timeout, what="Kafka broker", log=self.log)
        self._wait_ready(timeout, started_before)

    def stop_now(self) -> None:
        """A restart, first half: the broker stopped (SIGTERM, then SIGKILL if it lingers)."""
        stop_process(self.proc, timeout=30)
        self.proc = None

    def start_again(self, timeout: float = 90) -> None:
        """…and the second: the same broker (ports, data) started again."""
        self._launch(timeout)

    def _wait_ready(self, timeout: float, started_before: int = 0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError("Kafka broker exited during start-up" + tail(self.log))
            if self.log.read_text(errors="replace").count("Kafka Server started") > started_before:
                return
            time.sleep(0.1)
        raise StackError("Kafka broker did not report 'started'" + tail(self.log))

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
        self.proc = None
