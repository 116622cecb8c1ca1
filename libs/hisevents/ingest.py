"""The pure ingest function: one CDC record in, zero or more canonical HIS events out. No broker, no database.

The ingest *service* (yibao.ingest) consumes the CDC topics, calls :meth:`Ingestor.ingest` for every record,
writes ``result.events`` to the canonical topic (key = ``his_visit_id``) through its outbox, and parks a record
whose ingest raised :class:`~yibao.core.errors.DecodeError` or :class:`~yibao.core.errors.UnmappableEventError`
in the dead-letter topic with ``exc.reason`` and ``exc.code``. A skipped record (tombstone, heartbeat, a change
no rule wants) has ``result.skipped`` set and no events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from yibao.core.clock import from_epoch_ms
from yibao.core.errors import UnmappableEventError
from yibao.hisevents.debezium import ChangeEvent, Skip, decode
from yibao.hisevents.eventid import event_id
from yibao.hisevents.mapping import CompiledRule, HisMapping, TableMapping, load_mapping
from yibao.hisevents.models import EVENT_MODELS, EventSource, HisEventBase

__all__ = ["IngestResult", "Ingestor"]


@dataclass(frozen=True)
class IngestResult:
    """What one CDC record became. ``skipped`` is a reason when the record carries nothing to map."""

    events: list[HisEventBase] = field(default_factory=list)
    skipped: str | None = None
    table: str | None = None
    op: str | None = None


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
        return self.map_change(decoded)

    def map_change(self, change: ChangeEvent) -> IngestResult:
        if self.mapping.is_ignored(change):
            return IngestResult(skipped=f"table {change.table} is ignored by mapping {self.mapping.vendor}",
                                table=change.table, op=change.op)
        table = self.mapping.table_for(change)
        if table is None:
            raise UnmappableEventError(
                f"table {change.table} (topic {change.topic}) is not in mapping {self.mapping.vendor}"
            )
        rules = table.match(change)
        if not rules:
            return IngestResult(
                skipped=f"table {table.name}: no rule matches op {change.op or '?'} and the row's conditions",
                table=table.name, op=change.op,
            )
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
        fields["event_id"] = event_id(table.name, pk, change, rule.name, rule.event)
        fields["type"] = rule.event
        fields["source"] = source
        try:
            return EVENT_MODELS[rule.event].model_validate(fields)
        except ValidationError as exc:
            raise UnmappableEventError(f"table {table.name}, rule {rule.name}: {_reason(rule, exc)}") from None


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
