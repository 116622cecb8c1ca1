"""HIS commit order across tables: the position of a change in the HIS database's log, and when a change that
is ahead of other tables may be handed on. Pure: no broker, no database.

Debezium writes each table to its own topic. Each topic (partition) is in the table's commit order, but a
consumer working through a backlog reads the topics at different speeds, so a change committed later on one table
can be read long before an earlier change on another. The ingest worker therefore merges its partitions by
:func:`commit_key` and hands a change on only when :func:`release_bound` says no partition can still deliver an
earlier one.

**The key.** ``(source ts_ms, *log position)``: the database's own time of the change, then its position in the
log to order changes of the same millisecond (or second — Oracle LogMiner's times have second resolution):

* Oracle: ``commit_scn``, ``scn``, ``ssn``;
* MySQL/MariaDB: binlog ``file`` (its number), ``pos``, ``row``;
* SQL Server: ``commit_lsn``, ``change_lsn``, ``event_serial_no``;
* PostgreSQL: ``lsn``.

The time comes first because it is in every record Debezium writes (also unwrapped, with ``add.fields`` holding
``source.ts_ms``), keeps its meaning across connector restarts and snapshots, and is what HIS itself calls the
order of its work; the position breaks its ties. Where the two disagree (concurrent transactions committing within
the clock's resolution, an Oracle transaction whose change time precedes another's commit) the misorder stays
within that resolution — well inside the ``order_window_s`` the chain services tolerate between tables.

**The release.** A partition's *frontier* is the key of the last change consumed from it: the partition cannot
deliver anything earlier afterwards. A partition is *caught up* when it has nothing left to deliver (consumed to its
high-water mark). A change with key ``k`` may be handed on when every partition is caught up or has a frontier
``>= k``; :func:`release_bound` is the largest such ``k``: the smallest frontier among the partitions not caught
up, :data:`NOTHING` while one of them has delivered nothing yet, :data:`EVERYTHING` when all are caught up.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CommitKey", "NOTHING", "EVERYTHING", "PartitionState", "commit_key", "release_bound", "may_release",
           "encode_key", "decode_key"]

#: a change's place in HIS commit order; compared as a tuple
CommitKey = tuple[Any, ...]

#: below every key: nothing may be released
NOTHING: CommitKey = ()
#: above every key: everything may be released
EVERYTHING: CommitKey = (math.inf,)

#: position fields in the order they rank, per connector family; a connector sends one family's fields
_RANKED = ("commit_scn", "scn", "ssn",  # Oracle
           "file", "pos", "row",  # MySQL / MariaDB
           "commit_lsn", "change_lsn", "event_serial_no",  # SQL Server
           "lsn")  # PostgreSQL
_DIGITS = re.compile(r"(\d+)")


def _rank_value(name: str, raw: str) -> int | None:
    text = raw.strip()
    if name == "file":  # mysql-bin.000042
        found = _DIGITS.findall(text)
        return int(found[-1]) if found else None
    if ":" in text:  # SQL Server LSN 00000027:00000b48:0003 (fixed-width hex parts)
        try:
            return int(text.replace(":", ""), 16)
        except ValueError:
            return None
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def commit_key(ts_ms: int | None, position: Mapping[str, str] | None = None) -> CommitKey | None:
    """The key of a change from its source ``ts_ms`` and the connector's position fields; None without a time
    (such a change cannot be placed and is handed on at once)."""
    if ts_ms is None:
        return None
    parts: list[int] = []
    for name in _RANKED:
        raw = (position or {}).get(name)
        if raw is None:
            continue
        value = _rank_value(name, str(raw))
        if value is not None:
            parts.append(value)
    return (int(ts_ms), *parts)


@dataclass(frozen=True)
class PartitionState:
    """What the release decision needs to know of one consumed partition."""

    #: the key of the last change consumed from it (None: none consumed since the worker started)
    frontier: CommitKey | None
    #: nothing left to deliver: consumed up to the high-water mark, nothing of it still on its way to the consumer
    caught_up: bool


def release_bound(partitions: Iterable[PartitionState]) -> CommitKey:
    """The largest key that may be handed on now (see the module's doc)."""
    bound = EVERYTHING
    for state in partitions:
        if state.caught_up:
            continue
        if state.frontier is None:
            return NOTHING
        if state.frontier < bound:
            bound = state.frontier
    return bound


def may_release(key: CommitKey | None, bound: CommitKey) -> bool:
    """Whether a change with ``key`` may be handed on under ``bound`` (a change without a key always may)."""
    return key is None or key <= bound


def encode_key(key: CommitKey) -> str:
    """The key as stored with a held change (JSON list of integers)."""
    return json.dumps(list(key), separators=(",", ":"))


def decode_key(text: str) -> CommitKey:
    return tuple(json.loads(text))
