"""Per-call record limits of the work-injury platform (seed 002 §2.2.1: 500 records, 10 attachments).

What counts as "the records" of a call: the business data itself when it is a list, or each list directly
under the top-level object (e.g. ``{"feedetail": [...]}``) — every such list must respect the limit. Lists
nested deeper belong to one record and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yibao.envelope.errors import EnvelopeValidationError
from yibao.envelope.workinjury.settings import WorkInjurySettings

__all__ = ["record_limit", "check_record_limits"]


def record_limit(infno: str, settings: WorkInjurySettings) -> int:
    return settings.max_attachments if infno in settings.attachment_transactions else settings.max_records


def check_record_limits(infno: str, data: Any, settings: WorkInjurySettings) -> None:
    """Raise :class:`EnvelopeValidationError` (infno, path, rule) when a call carries too many records."""
    limit = record_limit(infno, settings)
    kind = "attachments" if infno in settings.attachment_transactions else "records"
    lists: list[tuple[str, list | tuple]] = []
    if isinstance(data, (list, tuple)):
        lists.append(("data", data))
    elif isinstance(data, Mapping):
        lists.extend((f"data.{key}", value) for key, value in data.items() if isinstance(value, (list, tuple)))
    for path, items in lists:
        if len(items) > limit:
            raise EnvelopeValidationError(infno, path, f"at most {limit} {kind} per call", f"{len(items)} given")
