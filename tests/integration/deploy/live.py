"""What the live ops tests share: the workers running as in production, their /metrics, a real Prometheus.

Imported as ``integration.deploy.live``. The workers are started by :class:`yibao.stack.bridge.LocalBridge` (one
process per ``yibao worker <service>``, on the session's Kafka and a fresh database), every service that has a
worker in this version — so a service that ships later is scraped and checked without changing these tests.
Prometheus is Debian's binary, with a configuration written here: loopback only, a temporary storage directory,
a one-second scrape interval, and the project's alert rules loaded.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from yibao.cli.worker import SERVICES
from yibao.stack._proc import free_port

__all__ = ["services_with_a_worker", "exported_series", "Prometheus", "poll"]

TYPE_LINE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|info|stateset|unknown)$")


def services_with_a_worker() -> tuple[str, ...]:
    """The services this version can run (``yibao worker <service>`` finds their ``app`` module)."""
    return tuple(s for s, package in SERVICES.items() if importlib.util.find_spec(f"{package}.app") is not None)


def exported_series(metrics_text: str, prefix: str = "yibao_") -> set[str]:
    """The series names a /metrics page can carry, from its ``# TYPE`` lines: a labelled metric is announced there
    before it has counted anything, so this is what the worker exports, not only what it has seen."""
    names: set[str] = set()
    for line in metrics_text.splitlines():
        match = TYPE_LINE.match(line)
        if not match or not match.group(1).startswith(prefix):
            continue
        name, kind = match.groups()
        if kind == "counter":
            base = name.removesuffix("_total")
            names |= {base + "_total", base + "_created"}
        elif kind == "histogram":
            names |= {name + s for s in ("_bucket", "_count", "_sum", "_created")}
        elif kind == "summary":
            names |= {name, name + "_count", name + "_sum", name + "_created"}
        elif kind == "info":
            names.add(name.removesuffix("_info") + "_info")
        else:
            names.add(name)
    return names


def poll(what: str, check: Any, *, timeout: float, interval: float = 0.5) -> Any:
    """Call ``check()`` until it returns something true; fail with ``what`` and the last value at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


@dataclass
class Prometheus:
    """A Prometheus server scraping the given targets (service → port on 127.0.0.1) as job ``yibao-bridge``, with
    the target labels the PodMonitor gives in a cluster (namespace, pod)."""

    binary: str
    workdir: Path
    targets: dict[str, int]
    rule_files: Iterable[Path] = ()
    namespace: str = "yibao-bridge"
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{
                "job_name": "yibao-bridge",
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"],
                     "labels": {"namespace": self.namespace, "pod": f"yibao-{service}-0"}}
                    for service, port in sorted(self.targets.items())
                ],
            }],
        }

    def start(self, *, timeout: float = 60) -> "Prometheus":
        self.port = self.port or free_port()
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False), encoding="utf-8")
        storage = self.workdir / "tsdb"
        storage.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        poll("Prometheus ready", self._ready, timeout=timeout, interval=0.2)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query through the HTTP API; the result vector."""
        reply = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        reply.raise_for_status()
        body = reply.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def api(self, path: str) -> Any:
        reply = httpx.get(f"{self.url}/api/v1/{path}", timeout=5)
        reply.raise_for_status()
        return reply.json()["data"]

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
