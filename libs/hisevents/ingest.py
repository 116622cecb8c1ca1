"""The pure ingest function: one CDC record in, zero or more canonical HIS events out. No broker, no database.

The ingest *service* (yibao.ingest) consumes the CDC topics, calls :meth:`Ingestor.ingest` for every record,
writes ``result.events`` to the canonical topic (key = ``his_visit_id``) through its outbox, and parks a record
whose ingest raised :class:`~yibao.core.errors.DecodeError` or :class:`~yibao.core.errors.UnmappableEventError`
in the dead-letter topic with ``exc.reason`` and ``exc.code``. A skipped record (tombstone, heartbeat, a change
no rule wants) has ``result.skipped`` set and no events.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from yibao.core.clock import from_epoch_ms
from yibao.core.errors import UnmappableEventError
from yibao.hisevents.debezium import ChangeEvent, Skip, decode
from yibao.hisevents.eventid import event_id
from yibao.hisevents.mapping import CompiledRule, HisMapping, TableMapping, load_mapping
from yibao.hisevents.models import EVENT_MODELS, EventSource, HisEventBase
from yibao.hisevents.order import CommitKey, commit_key

__all__ = ["IngestResult", "Ingestor"]


@dataclass(frozen=True)
class IngestResult:
    """What one CDC record became. ``skipped`` is a reason when the record carries nothing to map."""

    events: list[HisEventBase] = field(default_factory=list)
    skipped: str | None = None
    table: str | None = None
    op: str | None = None
    #: the change's place in HIS commit order (:mod:`yibao.hisevents.order`); None when it has none
    commit_key: CommitKey | None = None


class Ingestor:
    """Turns CDC records into canonical events with one HIS mapping. Stateless and thread-safe."""

    def __init__(self, mapping: HisMapping | str) -> None:
        self.mapping = load_mapping(mapping) if isinstance(mapping, str) else mapping

    def ingest(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> IngestResult:
        """Decode and map one record. Raises DecodeError or UnmappableEventError with a reason for the DLQ."""
        decoded = decode(topic, partition, offset, key, value)
        if isinstance(decoded, Skip):
            return IngestResult(skipped=decoded.reason)
        result = self.map_change(decoded)
        ordered = commit_key(decoded.source_ts_ms, decoded.position)
        return dataclasses.replace(result, commit_key=ordered) if ordered is not None else result

    def map_change(self, change: ChangeEvent) -> IngestResult:
        if self.mapping.is_ignored(change):
            return IngestResult(skipped=f"table {change.table} is ignored by mapping {self.mapping.vendor}",
                                table=change.table, op=change.op)
        table = self.mapping.table_for(change)
        if table is None:
            raise UnmappableEventError(
                f"table {change.table} (topic {change.topic}) is not in mapping {self.mapping.vendor}"
            )
        try:
            return self._map(table, change)
        except UnmappableEventError as exc:
            # the dead letter goes out under the HIS visit id when the row holds it, like the visit's events (a
            # key-only before image holds none: its zeros are no visit id)
            if not _key_only_delete(table, change):
                exc.dlq_key = table.visit_id_of(change)
            raise

    def _map(self, table: TableMapping, change: ChangeEvent) -> IngestResult:
        _refuse_partial_images(table, change)
        rules = table.match(change)
        if not rules:
            return IngestResult(
                skipped=f"table {table.name}: no rule matches op {change.op or '?'} and the row's conditions",
                table=table.name, op=change.op,
            )
        for rule in rules:
            if rule.refusal is not None:
                if rule.cannot_see_change(change):
                    raise UnmappableEventError(
                        f"table {table.name}, rule {rule.name}: an update without a before image; it cannot be told "
                        f"whether {', '.join(rule.changed)} changed, and such a change is refused ({rule.refusal}). "
                        + _before_image_fix(table, change), code="refused")
                raise UnmappableEventError(
                    f"table {table.name}, rule {rule.name}: {_OP_NAMES.get(change.op or '', 'change')} refused: "
                    f"{rule.refusal}", code="refused")
            if rule.cannot_see_change(change) and not change.unwrapped:
                # an envelope whose update lost its before image: PostgreSQL's default replica identity. Matching
                # on `when` alone would turn every later update of the row into the event again.
                raise UnmappableEventError(
                    f"table {table.name}, rule {rule.name}: the update carries no before image, so changed: "
                    f"[{', '.join(rule.changed)}] cannot be checked; refusing to guess. "
                    + _before_image_fix(table, change), code="replica_identity")
        pk = table.primary_key_of(change)
        source = EventSource(
            topic=change.topic, partition=change.partition, offset=change.offset, table=table.name, op=change.op,
            connector=change.connector, position=change.position, ts_ms=change.source_ts_ms,
        )
        events = [self._event(table, rule, change, pk, source) for rule in rules]
        return IngestResult(events=events, table=table.name, op=change.op)

    def _event(
        self, table: TableMapping, rule: CompiledRule, change: ChangeEvent, pk: dict[str, str], source: EventSource
    ) -> HisEventBase:
        fields: dict[str, Any] = rule.extract(change)
        if fields.get("occurred_at") is None:
            ts = change.source_ts_ms if change.source_ts_ms is not None else change.ts_ms
            if ts is None:
                raise UnmappableEventError(
                    f"table {table.name}, rule {rule.name}: no occurred_at column mapped and the record has no ts_ms"
                )
            fields["occurred_at"] = from_epoch_ms(ts)  # source ts_ms is a real instant, not wall time
        assert rule.event is not None  # refusals never get here
        fields["event_id"] = event_id(table.name, pk, change, rule.name, rule.event)
        fields["type"] = rule.event
        fields["source"] = source
        try:
            return EVENT_MODELS[rule.event].model_validate(fields)
        except ValidationError as exc:
            raise UnmappableEventError(f"table {table.name}, rule {rule.name}: {_reason(rule, exc)}") from None


_OP_NAMES = {"c": "insert", "r": "snapshot read", "u": "update", "d": "delete"}


def _before_image_fix(table: TableMapping, change: ChangeEvent) -> str:
    """How the DBA makes the database log whole rows, for the connector at hand."""
    name = change.table
    if change.connector == "oracle":
        return f"Fix: ALTER TABLE {name} ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS, then replay the dead letter."
    if change.connector == "sqlserver":
        return "Fix: capture every column of the table in its CDC capture instance, then replay the dead letter."
    if change.connector in ("mysql", "mariadb"):
        return "Fix: binlog_row_image=FULL, then replay the dead letter."
    return (f"PostgreSQL logs whole old rows only with REPLICA IDENTITY FULL (the default logs the key alone). "
            f"Fix: ALTER TABLE {name} REPLICA IDENTITY FULL, then replay the dead letter.")


_EPOCH_DATE = _dt.date(1970, 1, 1)


def _blank(value: Any) -> bool:
    """What Debezium puts in the columns a key-only before image lacks: null, or the type's zero value for NOT
    NULL columns ("", 0, base64 "AA==" of a zero decimal, the epoch for a date or time)."""
    if value is None or value is False or value == "" or value == "AA==":
        return True
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None) == _dt.datetime(1970, 1, 1)
    if isinstance(value, _dt.date):
        return value == _EPOCH_DATE
    return False


def _key_only_delete(table: TableMapping, change: ChangeEvent) -> bool:
    """A delete whose before image has the key columns and nothing else but empty values."""
    if change.op != "d" or change.before is None:
        return False
    key = table.key_columns(change)
    before = change.before
    return any(col.casefold() in key for col in before) and \
        all(_blank(before[col]) for col in before if col.casefold() not in key)


def _refuse_partial_images(table: TableMapping, change: ChangeEvent) -> None:
    """A delete whose before image holds only the key (PostgreSQL's default REPLICA IDENTITY: the other columns
    are null or zero) cannot feed a rule that reads other columns; refuse to guess them, naming the columns and
    the fix. A real old row never has every non-key column empty."""
    if not _key_only_delete(table, change):
        return
    key = table.key_columns(change)
    before = change.before
    assert before is not None
    wanted: dict[str, str] = {}
    for rule in table.rules:
        if "d" in rule.ops:
            wanted.update((c.casefold(), c) for c in rule.columns if c.casefold() not in key)
    missing = sorted(name for folded, name in wanted.items() if folded not in before or _blank(before[folded]))
    if not missing:
        return
    raise UnmappableEventError(
        f"table {table.name}: the delete's before image holds only the key, but the rules for deletes read "
        f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}; refusing to guess them. "
        + _before_image_fix(table, change), code="replica_identity")


def _reason(rule: CompiledRule, exc: ValidationError, limit: int = 3) -> str:
    """Name each failing field with the column it came from; never the value."""
    labels = {f.target: f.source_label for f in rule.fields}
    parts = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors[:limit]:
        loc = err["loc"]
        target = str(loc[0]) if loc else "(event)"
        path = ".".join(str(p) for p in loc) or "(event)"
        label = labels.get(target)
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"field {path}{f' ({label})' if label else ''}: {msg}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
