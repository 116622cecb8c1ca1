"""The ingest unit of work, free of faust so it can be tested on its own.

One CDC message → decode and map (pure, may raise an InputError → parked) → in one transaction: for each
canonical event, record its id in the inbox (a duplicate stops there) and hand it on in HIS commit order:

* when the release decision (:mod:`yibao.ingest.ordering`, :func:`yibao.hisevents.order.release_bound`) allows
  the message's place in commit order, its events go to the outbox (keyed by HIS visit id) for the relay to
  publish — after the held events of other tables it passes, in key order;
* otherwise they are held in ``ingest_held`` (sealed like the outbox) until changes committed before them on
  other tables have been handed on; :func:`release_held` moves them to the outbox later, in key order.

Holding and releasing happen in the transaction that records the inbox row, so a kill -9 loses nothing and
doubles nothing: an event is in the inbox together with either its outbox row or its held row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, insert, select

from yibao.core import clock
from yibao.core.db.schema import ingest_held
from yibao.core.deployment import Deployment
from yibao.core.messaging.inbox import first_time
from yibao.core.messaging.outbox import Outgoing, enqueue_many
from yibao.hisevents.order import EVERYTHING, CommitKey, decode_key, encode_key, may_release

__all__ = ["Held", "IngestOutcome", "store_events", "release_held", "load_held"]

CONSUMER = "ingest"


@dataclass(frozen=True, order=True)
class Held:
    """A held event's place: its commit key, then the row (ties keep the order they were held in)."""

    key: CommitKey
    id: int


@dataclass(frozen=True)
class IngestOutcome:
    outcome: str  # processed | duplicate | skipped
    new: int = 0
    duplicates: int = 0
    reason: str | None = None
    #: events of this message held back (their rows), and how many held events went to the outbox with it
    held: tuple[Held, ...] = ()
    released_ids: tuple[int, ...] = field(default=())

    @property
    def released(self) -> int:
        return len(self.released_ids)


def store_events(conn: Connection, result, *, out_topic: str, bound: CommitKey = EVERYTHING,  # result: IngestResult
                 release: Sequence[Held] = (), source: tuple[str, int, int] | None = None) -> IngestOutcome:
    """Store one message's events. ``bound`` is the release decision's bound; ``release`` the held events it lets
    go now (in key order); ``source`` the message's (topic, partition, offset), kept with a held event."""
    new_events = []
    duplicates = 0
    for event in result.events:
        if first_time(conn, CONSUMER, event.event_id):
            new_events.append(event)
        else:
            duplicates += 1
    key = getattr(result, "commit_key", None)
    now = may_release(key, bound)
    outgoing: list[Outgoing] = []
    released_ids: list[int] = []
    if release:
        rows = _held_rows(conn, [h.id for h in release])
        cipher = Deployment.of(conn).cipher
        mine_done = not (now and new_events)
        for h in release:
            if not mine_done and key is not None and key < h.key:
                outgoing += _outgoing(new_events, out_topic)
                mine_done = True
            row = rows.get(h.id)
            if row is None:  # released by someone else meanwhile: nothing to do for it
                continue
            outgoing.append((row.topic, row.msg_key, cipher.open(row.payload),
                             json.loads(row.headers) if row.headers else None))
            released_ids.append(h.id)
        if not mine_done:
            outgoing += _outgoing(new_events, out_topic)
        for start in range(0, len(released_ids), 500):
            conn.execute(delete(ingest_held).where(ingest_held.c.id.in_(released_ids[start:start + 500])))
    elif now:
        outgoing = _outgoing(new_events, out_topic)
    enqueue_many(conn, CONSUMER, outgoing)
    held: tuple[Held, ...] = ()
    if new_events and not now:
        assert key is not None  # a message without a key is always released
        held = _hold(conn, new_events, key, out_topic, source)
    outcome = "processed" if new_events else ("duplicate" if result.events else "skipped")
    reason = None if result.events else (result.skipped or "no event")
    return IngestOutcome(outcome, new=len(new_events), duplicates=duplicates, reason=reason, held=held,
                         released_ids=tuple(released_ids))


def release_held(conn: Connection, release: Sequence[Held]) -> IngestOutcome:
    """Move held events to the outbox, in the order given (key order), and forget them."""
    return store_events(conn, _NOTHING_NEW, out_topic="", release=release)


def load_held(conn: Connection) -> list[Held]:
    """Every event this deployment's ingest holds, in key order (at start, and after a failed release)."""
    producer = Deployment.of(conn).scoped(CONSUMER)
    rows = conn.execute(select(ingest_held.c.id, ingest_held.c.order_key)
                        .where(ingest_held.c.producer == producer)).all()
    return sorted(Held(decode_key(k), int(i)) for i, k in rows)


@dataclass(frozen=True)
class _NothingNew:
    events: tuple = ()
    commit_key: None = None
    skipped: str | None = "release of held events"


_NOTHING_NEW = _NothingNew()


def _headers(event) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The headers a canonical event goes out with (on the outbox now, or held first)."""
    return {"event_id": event.event_id, "type": event.type}


def _outgoing(events: list, out_topic: str) -> list[Outgoing]:
    return [(out_topic, e.his_visit_id, e.to_json(), _headers(e)) for e in events]


def _held_rows(conn: Connection, ids: list[int]) -> dict:
    producer = Deployment.of(conn).scoped(CONSUMER)
    found: dict = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in conn.execute(select(ingest_held).where(ingest_held.c.producer == producer,
                                                          ingest_held.c.id.in_(chunk))):
            found[int(row.id)] = row
    return found


def _hold(conn: Connection, events: list, key: CommitKey, out_topic: str,
          source: tuple[str, int, int] | None) -> tuple[Held, ...]:
    deployment = Deployment.of(conn)
    producer, seal, at, encoded = deployment.scoped(CONSUMER), deployment.cipher.seal, clock.now(), encode_key(key)
    topic_, partition, offset = source or ("", 0, 0)
    held = []
    for e in events:
        value = e.to_json()
        row_id = conn.execute(insert(ingest_held).values(
            producer=producer, order_key=encoded, source_topic=topic_, source_partition=partition,
            source_offset=offset, topic=out_topic, msg_key=e.his_visit_id, payload=seal(value.decode() if isinstance(value, bytes) else value),
            headers=json.dumps(_headers(e))).values(held_at=at)
            .returning(ingest_held.c.id)).scalar_one()
        held.append(Held(key, int(row_id)))
    return tuple(held)
