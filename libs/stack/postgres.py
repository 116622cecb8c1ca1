"""A private PostgreSQL server for tests and local runs, from the distribution's binaries (no Docker).

``initdb`` a fresh cluster in a temporary directory (trust auth, loopback only, durability switched off — it is
throw-away, ``wal_level=logical`` so that Debezium can capture a HIS database on it), start it with ``pg_ctl`` on
a free port, create database ``yibao``. When running as root (CI),
the server runs as the ``postgres`` system user, which Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from yibao.core.errors import StackError
from yibao.stack._proc import free_port, is_root, tail, wait_for_port, which

__all__ = ["PostgresServer", "available", "bin_dir"]


def bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<ver>/bin (newest)."""
    found = which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def available() -> tuple[bool, str]:
    directory = bin_dir()
    if directory is None:
        return False, "PostgreSQL server binaries (initdb) not found"
    if is_root():
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False, "running as root and no 'postgres' user to run the server as"
    return True, str(directory)


@dataclass
class PostgresServer:
    port: int = 0
    database: str = "yibao"
    user: str = "yibao"
    workdir: Path | None = None
    #: as production runs it (fsync, synchronous_commit, full_page_writes on: benchmarks); else relaxed for tests
    durable: bool = False
    _started: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def log(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "postgres.log"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        if is_root():
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, cwd="/")

    def start(self, *, timeout: float = 60) -> "PostgresServer":
        directory = bin_dir()
        if directory is None:
            raise StackError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
        self.workdir = Path(tempfile.mkdtemp(prefix="yibao-pg-"))
        os.chmod(self.workdir, 0o755)
        if is_root():
            owner = pwd.getpwnam("postgres")
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
        data = self.workdir / "data"
        init = self._run([str(directory / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
                          "-E", "UTF8", "--no-locale", "--no-sync"])
        if init.returncode != 0:
            raise StackError("initdb failed:\n" + (init.stdout + init.stderr)[-2000:])
        self.port = self.port or free_port()
        started = self._pg_ctl("-o", self._options(), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start")
        if started.returncode != 0:
            raise StackError("pg_ctl start failed:\n" + (started.stdout + started.stderr)[-1000:] + tail(self.log))
        self._started = True
        wait_for_port(self.port, proc=None, timeout=timeout, what="PostgreSQL", log=self.log)
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def _options(self) -> str:
        durability = ("-c fsync=on -c synchronous_commit=on -c full_page_writes=on" if self.durable
                      else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        # wal_level=logical: the same cluster stands in for a HIS database that Debezium captures (pgoutput)
        return (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 {durability} "
                "-c max_connections=200 -c wal_level=logical -c max_replication_slots=16 -c max_wal_senders=16")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        directory = bin_dir()
        assert directory is not None and self.workdir is not None
        return self._run([str(directory / "pg_ctl"), "-D", str(self.workdir / "data"), *args])

    def stop_fast(self) -> None:
        """An administrator's restart, first half: ``pg_ctl stop -m fast`` (sessions ended, the server away)."""
        done = self._pg_ctl("-m", "fast", "-w", "stop")
        if done.returncode != 0:
            raise StackError("pg_ctl stop failed: " + done.stderr[-500:])

    def start_again(self, timeout: float = 60) -> None:
        """…and the second: the same cluster started again on the same port."""
        done = self._pg_ctl("-o", self._options(), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start")
        if done.returncode != 0:
            raise StackError("pg_ctl start failed: " + done.stderr[-500:])
        wait_for_port(self.port, proc=None, timeout=timeout, what="PostgreSQL", log=self.log)

    def create_database(self, name: str) -> str:
        """A further empty database on the same server (for tests that need isolation); returns its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def version(self) -> str:
        directory = bin_dir()
        out = subprocess.run([str(directory / "postgres"), "--version"], capture_output=True, text=True).stdout
        m = re.search(r"\(PostgreSQL\) (\S+)", out)
        return m.group(1) if m else "?"

    def stop(self) -> None:
        if self._started and self.workdir is not None:
            directory = bin_dir()
            self._run([str(directory / "pg_ctl"), "-D", str(self.workdir / "data"), "-m", "immediate", "-w", "stop"])
            self._started = False
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
