"""The whole bridge as real local processes: the platform simulator and the workers, on a given stack.

Used by ``yibao demo``, the end-to-end tests and the benchmarks, so all three run the bridge the way it runs in
production (one process per worker, talking through Kafka and the database), with switches the tests need:
kill a worker with SIGKILL mid-chain and start it again, set the simulator's faults, read its ledger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from yibao.core.errors import StackError
from yibao.stack._proc import free_port
from yibao.stack.select import StackInfo

__all__ = ["LocalBridge", "WorkerHandle", "CHAIN_SERVICES"]

#: the workers of the HIS → platform path, in start order
CHAIN_SERVICES: tuple[str, ...] = ("ingest", "registration", "settlement")


@dataclass
class WorkerHandle:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    ready_path: str
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WorkerHandle":
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "yibao.cli.main", *self.args],
                                     env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise StackError(f"{self.name} exited ({code}):\n{self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no final commit — a crash."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=3).text
        except httpx.HTTPError:
            return values
        for line in text.splitlines():
            if line.startswith("yibao_") and " " in line:
                name, value = line.rsplit(" ", 1)
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
        return values

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class LocalBridge:
    def __init__(self, info: StackInfo, workdir: Path, *, prefix: str = "",
                 services: Iterable[str] = CHAIN_SERVICES, sim_seed: int = 2026, sim_faults: Iterable[str] = (),
                 sim_population: int = 500,
                 env: dict[str, str] | None = None, log_level: str = "WARNING") -> None:
        self.info = info
        self.workdir = workdir
        self.prefix = prefix
        self.services = tuple(services)
        self.sim_seed = sim_seed
        self.sim_faults = list(sim_faults)
        self.sim_population = sim_population  # = generate_day's default: every generated patient is known
        self.extra_env = dict(env or {})
        self.log_level = log_level
        self.sim_port = free_port()
        self.admin_port = free_port()
        self.simulator: WorkerHandle | None = None
        self.workers: dict[str, WorkerHandle] = {}
        self._ports = {name: free_port() for name in self.services}

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def base_env(self) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP": self.info.kafka_bootstrap,
            "DATABASE_URL": self.info.database_url,
            "YIBAO_TOPIC_PREFIX": self.prefix,
            "YIBAO_SESSION_TIMEOUT_S": "6",
            "YIBAO_LOG_LEVEL": self.log_level,
            "YIBAO_PLATFORM_BASE_URL": self.sim_url,
        }
        if self.prefix:
            from yibao.hisevents import load_mapping

            topics = [self.prefix + t for t in load_mapping("example-oracle-his").topics()]
            env["YIBAO_INGEST_CDC_TOPICS"] = json.dumps(topics)
        return {**env, **self.extra_env}

    def cdc_topic(self, name: str) -> str:
        return self.prefix + name

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> "LocalBridge":
        args = ["sim", "--port", str(self.sim_port), "--admin-port", str(self.admin_port),
                "--seed", str(self.sim_seed), "--population", str(self.sim_population)]
        for rule in self.sim_faults:
            args += ["--fault", rule]
        self.simulator = WorkerHandle("simulator", args, self.base_env(), self.workdir / "simulator.log",
                                      self.admin_port, "/admin/health").start()
        self.simulator.wait_ready()
        for name in self.services:
            self.start_worker(name, wait=False)
        for name in self.services:
            self.workers[name].wait_ready()
        return self

    def start_worker(self, name: str, *, wait: bool = True) -> WorkerHandle:
        """Start the worker ``name``: a service (``settlement``), or another replica of one (``settlement#2``:
        the same consumer group, so the partitions are shared between them)."""
        service = name.split("#", 1)[0]
        port = self._ports.setdefault(name, free_port())
        prefix = "YIBAO_" + service.upper().replace("-", "_") + "_"
        env = {**self.base_env(), f"{prefix}WEB_PORT": str(port)}
        log_name = name.replace("#", "-")
        handle = WorkerHandle(name, ["worker", service], env, self.workdir / f"{log_name}.log", port,
                              "/readyz").start()
        self.workers[name] = handle
        if wait:
            handle.wait_ready()
        return handle

    def kill_worker(self, name: str) -> None:
        self.workers[name].kill()

    def restart_worker(self, name: str) -> WorkerHandle:
        self.workers[name].stop()
        return self.start_worker(name)

    def stop(self) -> None:
        for handle in reversed(list(self.workers.values())):
            handle.stop()
        if self.simulator is not None:
            self.simulator.stop()

    def __enter__(self) -> "LocalBridge":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the simulator's admin API ----------------------------------------------------------------------------

    def admin(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        reply = httpx.request(method, f"{self.admin_url}/admin/{path.lstrip('/')}", json=body, timeout=30)
        reply.raise_for_status()
        return reply.json()

    def set_faults(self, rules: list[str]) -> None:
        self.admin("faults", method="PUT", body={"rules": rules})
