"""Dead letters: what could not be processed, why, where it came from, and the original bytes.

Nothing is ever dropped: an event that cannot be processed is parked as a :class:`DeadLetter` on the DLQ topic
(and, if even that fails, in the ``parked_work`` table). The original key and value are kept byte for byte
(Base64) so ``yibao replay`` can put them back on their source topic once the cause is fixed. The reason names
the problem (field, rule) and never carries personal data.
"""

from __future__ import annotations

import base64
import datetime as _dt

from pydantic import BaseModel, Field

from yibao.core import clock

__all__ = ["DeadLetter"]


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
