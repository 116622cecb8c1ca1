"""Jars from Maven Central, resolved once per pom into the cache and reused offline afterwards.

``mvn dependency:copy-dependencies`` copies a pom's dependencies (with theirs) into a staging folder, which is
renamed into ``~/.cache/yibao-bridge/<name>-<version>-<pom hash>/lib`` when complete; a changed pom gets a new
folder. Maven's own ~/.m2 cache makes a second resolution offline-fast too.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from yibao.core.errors import StackError
from yibao.core.filelock import held
from yibao.stack._proc import cache_dir, which

__all__ = ["pom_property", "lib_dir", "ensure_lib"]


def pom_property(pom: Path, name: str) -> str:
    m = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom.read_text())
    return m.group(1) if m else "unknown"


def lib_dir(pom: Path, name: str, version: str) -> Path:
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"{name}-{version}-{digest}" / "lib"


def ensure_lib(pom: Path, name: str, version: str, *, must_have: str, what: str) -> Path:
    """The lib folder of ``pom``'s jars; resolved with Maven the first time. ``must_have`` is a glob one of the
    jars must match (a check that Maven really fetched the main artifact)."""
    lib = lib_dir(pom, name, version)
    if (lib / ".complete").exists():
        return lib
    lib.parent.parent.mkdir(parents=True, exist_ok=True)
    with held(lib.parent.parent / f".{name}.lock"):  # test processes starting together fetch once, in turn
        if (lib / ".complete").exists():
            return lib
        return _fetch(pom, name, version, lib, must_have=must_have, what=what)


def _fetch(pom: Path, name: str, version: str, lib: Path, *, must_have: str, what: str) -> Path:
    mvn = which("mvn")
    if mvn is None:
        raise StackError(f"Maven (mvn) is needed once to fetch the {what} jars from Maven Central")
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-lib-", dir=lib.parent.parent))
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or not any(staging.glob(must_have)):
        shutil.rmtree(staging, ignore_errors=True)
        raise StackError(f"Maven could not fetch the {what} jars:\n" + (proc.stdout + proc.stderr)[-2000:])
    (staging / ".complete").write_text(version)
    lib.parent.mkdir(parents=True, exist_ok=True)
    if lib.exists():
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(lib)
    return lib
