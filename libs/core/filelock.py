"""One process at a time on this machine: an exclusive ``flock`` on a lock file, held for a ``with`` block.

Used where processes that start together would otherwise do the same work twice: migrating one SQLite file
(SQLite has no advisory lock like PostgreSQL's) and fetching the broker's jars from Maven Central once.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

__all__ = ["held"]


@contextlib.contextmanager
def held(path: str | Path) -> Iterator[None]:
    """Wait for the lock on ``path`` (created if missing, left in place), hold it for the block."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
