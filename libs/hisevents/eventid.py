"""The stable event id: the same database change always gets the same id, different changes different ids.

CDC is at-least-once: a connector restart replays changes, a producer retry duplicates a record, a replay puts
the same change at another offset. Consumers recognise a change they have already applied by its event id, so
the id is derived only from facts of the *change*, never from where the record sits in Kafka:

    sha256( version | mapping table | primary key | op | position-or-content | rule | event type )[:32 hex]

* **Position** — when the record carries the connector's log coordinates that pin one row change (PostgreSQL
  ``lsn``; MySQL ``file``+``pos``+``row``; SQL Server ``change_lsn``+``commit_lsn``+``event_serial_no``; Oracle
  ``scn`` with LogMiner's ``rs_id``/``ssn`` or XStream's ``lcr_position``), those are used.
* **Content** — otherwise (no source block, an unwrapped record without position fields, or an Oracle ``scn`` /
  a commit timestamp alone, which several changes of one transaction can share) a canonical serialisation of
  the row state is added: columns sorted case-insensitively, values typed (Decimal text, ISO dates).
* The mapping's table name (not the topic or the record's spelling of it) and the rule name are included, so
  one change mapped by two rules yields two ids, and upper/lower case or topic renames do not change ids.

Limits: (1) in the content fallback, two *identical* changes of the same row with the same op and no position
(e.g. an update setting a column back and forth, seen without ``__op``/position fields) share an id and the
second is taken for a duplicate — configure ``add.fields`` with op and the position field to avoid it;
(2) ids depend on the connector's value encoding when there is no schema (a precise decimal is then a base64
string), so reconfiguring ``decimal.handling.mode`` changes the ids of replayed old changes; (3) a new
snapshot (op r at a new scn/lsn) is a new change with new ids — business-level dedup downstream (one 2201 per
visit) must still hold.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from yibao.hisevents.debezium import ChangeEvent, Row

__all__ = ["ID_VERSION", "STRONG_POSITION_FIELDS", "event_id", "change_identity", "canonical_row"]

ID_VERSION = "1"

#: position fields that identify one row change on their own (together with table, key and op)
STRONG_POSITION_FIELDS: frozenset[str] = frozenset(
    {"lsn", "pos", "change_lsn", "event_serial_no", "lcr_position", "rs_id", "ssn"}
)


def _canonical_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        return {"d": format(value, "f")}
    if isinstance(value, _dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, (_dt.date, _dt.time)):
        return {"t": value.isoformat()}
    if isinstance(value, Mapping):
        return {str(k): _canonical_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    return {"r": repr(value)}


def canonical_row(row: Row) -> str:
    """A stable text form of a row: sorted case-insensitive column names, typed values."""
    items = sorted(((name.casefold(), _canonical_value(row[name])) for name in row), key=lambda kv: kv[0])
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def change_identity(table: str, primary_key: Mapping[str, str], change: ChangeEvent) -> dict[str, Any]:
    """The facts that identify a change (what goes into the hash), exposed for tests and debugging."""
    position = dict(sorted(change.position.items()))
    identity: dict[str, Any] = {
        "v": ID_VERSION,
        "table": table.casefold(),
        "pk": {k.casefold(): v for k, v in sorted(primary_key.items(), key=lambda kv: kv[0].casefold())},
        "op": change.op or "?",
        "position": position,
    }
    if not (STRONG_POSITION_FIELDS & position.keys()):
        identity["content"] = hashlib.sha256(canonical_row(change.row).encode("utf-8")).hexdigest()
        if change.source_ts_ms is not None:
            identity["source_ts_ms"] = change.source_ts_ms
    return identity


def event_id(table: str, primary_key: Mapping[str, str], change: ChangeEvent, rule: str, event_type: str) -> str:
    """32 hex characters (128 bits) of SHA-256 over the change identity, the rule and the event type."""
    material = dict(change_identity(table, primary_key, change), rule=rule, event=event_type)
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return digest.hexdigest()[:32]
