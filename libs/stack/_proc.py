"""Small process helpers shared by the stack launchers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from yibao.core.errors import StackError

__all__ = ["free_port", "wait_for_port", "stop_process", "tail", "cache_dir", "is_root"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, proc: subprocess.Popen | None, timeout: float, what: str, log: Path | None) -> None:
    """Wait until 127.0.0.1:port accepts connections, failing early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} before listening" + tail(log))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise StackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s" + tail(log))


def stop_process(proc: subprocess.Popen | None, *, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(text)


def cache_dir() -> Path:
    base = os.environ.get("YIBAO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "yibao-bridge"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def which(name: str) -> str | None:
    return shutil.which(name)
