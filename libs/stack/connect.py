"""A real Kafka Connect worker with Debezium's PostgreSQL connector, from Maven Central, without Docker.

The jars (the Kafka distribution's connect-runtime and JSON converter at the broker's version, Debezium's
PostgreSQL connector, see ``maven/connect/pom.xml``) are resolved once into the cache like the broker's. A
:class:`KafkaConnect` runs ``ConnectStandalone`` (-Xmx512m) against a given bootstrap with its REST API on a
loopback port; connectors are added and removed through that API (:meth:`KafkaConnect.put_connector`), so one
worker serves a whole test session or ``yibao stack up --with-connect``.

Connector configurations ship beside the mapping files (``yibao/hisevents/mappings/*.connector.json``) with
``${env:NAME}`` placeholders — Kafka's ``EnvVarConfigProvider`` syntax, which this worker enables — and
:func:`connector_config` fills them from a dict instead when asked to.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from yibao.core.errors import StackError
from yibao.stack._proc import free_port, stop_process, tail, wait_for_port, which
from yibao.stack.kafka_kraft import java_major
from yibao.stack.maven_jars import ensure_lib, lib_dir, pom_property

__all__ = [
    "POM",
    "KafkaConnect",
    "available",
    "ensure_jars",
    "connect_version",
    "debezium_version",
    "connector_config",
    "shipped_connectors",
    "CONNECTORS_DIR",
]

POM = Path(__file__).resolve().parent / "maven" / "connect" / "pom.xml"
_PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _mappings_dir() -> Path:
    from yibao.hisevents.mapping import MAPPINGS_DIR

    return MAPPINGS_DIR


CONNECTORS_DIR = _mappings_dir()


def shipped_connectors() -> list[str]:
    """Names of the connector configurations shipped beside the mapping files."""
    return sorted(p.name.removesuffix(".connector.json") for p in CONNECTORS_DIR.glob("*.connector.json"))


def connect_version() -> str:
    return pom_property(POM, "kafka.version")


def debezium_version() -> str:
    return pom_property(POM, "debezium.version")


def available() -> tuple[bool, str]:
    """Whether this machine can run Connect, and why not."""
    major = java_major()
    if major is None:
        return False, "no java on PATH"
    if major < 17:
        return False, f"java {major} found; Kafka Connect 4.x needs 17+"
    if which("mvn") is None and not (lib_dir(POM, "kafka-connect", connect_version()) / ".complete").exists():
        return False, "maven (mvn) not found and no cached Kafka Connect jars"
    return True, f"java {major}"


def ensure_jars() -> Path:
    return ensure_lib(POM, "kafka-connect", connect_version(), must_have="debezium-connector-postgres-*.jar",
                      what="Kafka Connect and Debezium")


def connector_config(source: str | Path, values: Mapping[str, str] | None = None) -> dict[str, str]:
    """A shipped connector configuration (``"example-postgres-his"`` → ``mappings/<name>.connector.json``,
    ``"example-oracle-his.mysql"`` → ``mappings/example-oracle-his.mysql.connector.json``) or a file. With
    ``values``, every ``${env:NAME}`` placeholder is replaced from them (a missing one is an error); without,
    the placeholders stay for Connect's EnvVarConfigProvider to fill."""
    path = Path(source)
    if path.suffix != ".json" and path.parent == Path("."):
        path = CONNECTORS_DIR / f"{source}.connector.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(f"connector configuration {source}: file not found") from None
    except json.JSONDecodeError as exc:
        raise StackError(f"connector configuration {path.name}: not valid JSON ({exc.msg})") from None
    config = data.get("config", data)
    if not isinstance(config, dict):
        raise StackError(f"connector configuration {path.name}: 'config' must be an object")
    out = {str(k): str(v) for k, v in config.items() if not str(k).startswith("//")}
    if values is None:
        return out

    def fill(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise StackError(f"connector configuration {path.name}: no value for ${{env:{m.group(1)}}}")
        return str(values[m.group(1)])

    return {k: _PLACEHOLDER.sub(fill, v) for k, v in out.items()}


@dataclass
class KafkaConnect:
    """One standalone Connect worker on loopback. ``start()`` / ``stop()``; ``url`` is its REST API."""

    workdir: Path
    bootstrap: str
    port: int = 0
    heap: str = "512m"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "connect.log"

    def _properties(self) -> str:
        return "\n".join([
            f"bootstrap.servers={self.bootstrap}",
            "key.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable=true",
            "value.converter.schemas.enable=true",
            f"offset.storage.file.filename={self.workdir / 'offsets.dat'}",
            "offset.flush.interval.ms=1000",
            f"listeners=http://127.0.0.1:{self.port}",
            "rest.advertised.host.name=127.0.0.1",
            f"rest.advertised.port={self.port}",
            "topic.creation.enable=true",
            # connector configurations may say ${env:NAME} (passwords stay out of the files and the REST API)
            "config.providers=env",
            "config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            "",
        ])

    def start(self, *, timeout: float = 120) -> KafkaConnect:
        lib = ensure_jars()
        java = which("java")
        assert java is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        props = self.workdir / "worker.properties"
        props.write_text(self._properties())
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [java, f"-Xmx{self.heap}", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
             "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn",
             "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common=warn",
             "-Dorg.slf4j.simpleLogger.log.org.eclipse.jetty=warn",
             "-Dorg.slf4j.simpleLogger.log.org.reflections=warn",
             "-Dorg.slf4j.simpleLogger.showDateTime=true",
             "-cp", f"{lib}/*", "org.apache.kafka.connect.cli.ConnectStandalone", str(props)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, **self.env},
        )
        log.close()
        wait_for_port(self.port, proc=self.proc, timeout=timeout, what="Kafka Connect", log=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            try:
                if httpx.get(f"{self.url}/connector-plugins", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StackError("Kafka Connect's REST API did not answer" + tail(self.log))

    def _alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise StackError(f"Kafka Connect exited ({code})" + tail(self.log, 40))

    def put_connector(self, name: str, config: Mapping[str, str]) -> None:
        """Create the connector, or replace its configuration (PUT /connectors/<name>/config)."""
        self._alive()
        reply = httpx.put(f"{self.url}/connectors/{name}/config", json=dict(config), timeout=60)
        if reply.status_code >= 400:
            raise StackError(f"Kafka Connect refused connector {name}: {reply.status_code} {reply.text[:2000]}")

    def status(self, name: str) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/connectors/{name}/status", timeout=10)
        return reply.json() if reply.status_code == 200 else {}

    def wait_running(self, name: str, *, timeout: float = 90) -> None:
        """Until the connector and its task run; a failed task is an error with its trace."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._alive()
            status = self.status(name)
            tasks = status.get("tasks") or []
            for task in tasks:
                if task.get("state") == "FAILED":
                    raise StackError(f"connector {name} task failed:\n{str(task.get('trace'))[:3000]}")
            if status.get("connector", {}).get("state") == "RUNNING" and tasks and \
                    all(t.get("state") == "RUNNING" for t in tasks):
                return
            time.sleep(0.2)
        raise StackError(f"connector {name} not running after {timeout:.0f}s: {self.status(name)}"
                         + tail(self.log))

    def delete_connector(self, name: str) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        httpx.delete(f"{self.url}/connectors/{name}", timeout=60)

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)
        self.proc = None
