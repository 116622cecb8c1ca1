"""The ingest unit of work, free of faust so it can be tested on its own.

One CDC message → decode and map (pure, may raise an InputError → parked) → in one transaction: for each
canonical event, record its id in the inbox (a duplicate stops there) and put it in the outbox, keyed by
HIS visit id, for the relay to publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import enqueue

__all__ = ["IngestOutcome", "store_events"]

CONSUMER = "ingest"


@dataclass(frozen=True)
class IngestOutcome:
    outcome: str  # processed | duplicate | skipped
    new: int = 0
    duplicates: int = 0
    reason: str | None = None


def store_events(conn: Connection, result, *, out_topic: str) -> IngestOutcome:  # result: IngestResult
    if not result.events:
        return IngestOutcome("skipped", reason=result.skipped or "no event")
    new = duplicates = 0
    for event in result.events:
        if not first_time(conn, CONSUMER, event.event_id):
            duplicates += 1
            continue
        enqueue(conn, producer=CONSUMER, topic=out_topic, key=event.his_visit_id, value=event.to_json(),
                headers={"event_id": event.event_id, "type": event.type})
        new += 1
    return IngestOutcome("processed" if new else "duplicate", new=new, duplicates=duplicates)
