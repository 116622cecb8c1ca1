"""Dead letters: what could not be processed, why, where it came from, and the original bytes.

Nothing is ever dropped: an event that cannot be processed is parked as a :class:`DeadLetter` on the DLQ topic
(and, if even that fails, in the ``parked_work`` table). The original key and value are kept byte for byte
(Base64) so ``yibao replay`` can put them back on their source topic once the cause is fixed. The reason names
the problem (field, rule) and never carries personal data.

In the table, a letter belongs to its deployment (``service`` is scoped by the topic prefix) and its JSON — which
holds the original bytes, personal data included — is sealed with the deployment's data cipher
(:func:`park_in_table`, :func:`open_parked`).
"""

from __future__ import annotations

import base64
import datetime as _dt

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from yibao.core import clock
from yibao.core.atrest import SealedDataError
from yibao.core.db.schema import parked_work
from yibao.core.deployment import Deployment

__all__ = ["DeadLetter", "park_in_table", "open_parked", "parked_letters"]


class DeadLetter(BaseModel):
    service: str
    reason_code: str = Field(description="stable code: undecodable, unmappable, exhausted, invalid_input, …")
    reason: str
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key_b64: str | None = None
    value_b64: str | None = None
    attempts: int = 1
    failed_at: _dt.datetime = Field(default_factory=clock.now)
    event_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        service: str,
        reason_code: str,
        reason: str,
        topic: str | None,
        partition: int | None,
        offset: int | None,
        key: bytes | None,
        value: bytes | None,
        attempts: int = 1,
        event_id: str | None = None,
    ) -> "DeadLetter":
        return cls(
            service=service, reason_code=reason_code, reason=reason[:2000], source_topic=topic,
            source_partition=partition, source_offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(value).decode() if value is not None else None,
            attempts=attempts, event_id=event_id,
        )

    @property
    def key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None

    @property
    def value(self) -> bytes | None:
        return base64.b64decode(self.value_b64) if self.value_b64 is not None else None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def park_in_table(conn: Connection, letter: DeadLetter, *, msg_key: str | None = None) -> None:
    """Store a dead letter in ``parked_work`` inside the caller's transaction (sealed, scoped)."""
    deployment = Deployment.of(conn)
    key = msg_key if msg_key is not None else (letter.key.decode(errors="replace") if letter.key else None)
    conn.execute(parked_work.insert().values(
        service=deployment.scoped(letter.service), reason_code=letter.reason_code, reason=letter.reason,
        source_topic=letter.source_topic, source_partition=letter.source_partition,
        source_offset=letter.source_offset, msg_key=key[:200] if key else None,
        payload=deployment.cipher.seal(letter.model_dump_json()), created_at=letter.failed_at))


def open_parked(conn: Connection, payload: str) -> DeadLetter:
    """The dead letter a ``parked_work.payload`` holds (opened with the deployment's data cipher)."""
    return DeadLetter.model_validate_json(Deployment.of(conn).cipher.open(payload))


def parked_letters(conn: Connection, *, waiting_only: bool = True) -> tuple[list[tuple[int, DeadLetter]], int]:
    """This deployment's parked letters as (id, letter), oldest first (by default only those not replayed yet),
    and how many rows could not be opened (sealed with a key this deployment does not have).

    A row is this deployment's when its ``service`` is the scoped name of the service inside the letter, so a
    deployment without a prefix does not take the rows of one with a prefix."""
    deployment = Deployment.of(conn)
    query = select(parked_work.c.id, parked_work.c.service, parked_work.c.payload).order_by(parked_work.c.id)
    if waiting_only:
        query = query.where(parked_work.c.replayed_at.is_(None))
    if deployment.prefix:
        query = query.where(parked_work.c.service.startswith(deployment.prefix, autoescape=True))
    letters: list[tuple[int, DeadLetter]] = []
    unreadable = 0
    for row in conn.execute(query).all():
        if not row.payload:
            continue
        try:
            letter = open_parked(conn, row.payload)
        except SealedDataError:
            unreadable += 1
            continue
        if row.service == deployment.scoped(letter.service):
            letters.append((row.id, letter))
    return letters, unreadable
