"""The messages at the scheduler's boundaries (pydantic, strict): what HIS sends (:class:`UploadSource` on
``yibao.uploads.sources.v1``), what HIS and ops get back (:class:`UploadOutcome` on ``yibao.uploads.results.v1``),
and the catalog messages (:data:`CatalogMessage` on ``yibao.catalog.v1``).

Records travel as the platform's own field names (the national 接口规范's, or a target's); amounts are exact:
the JSON is read with every fraction as a Decimal (:func:`yibao.envelope.national.jsontext.loads`), a float never
exists. Personal fields (certno, psn_name …) are inside ``record``: never in a repr, a log line or a metric label.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from yibao.core import clock
from yibao.core.errors import InputError
from yibao.envelope.national import jsontext
from yibao.hisevents.models import validation_reason

__all__ = ["UploadSource", "UploadOutcome", "CatalogRow", "CatalogVersion", "CatalogMessage", "parse_source",
           "RecordStatus", "OPEN_STATUSES", "FINAL_STATUSES"]

Time = Annotated[_dt.datetime, AfterValidator(clock.as_shanghai)]
RecordStatus = Literal["pending", "sent", "accepted", "rejected", "parked", "withdrawn"]
#: statuses of a record the platform does not (yet) hold as it should
OPEN_STATUSES: tuple[str, ...] = ("pending", "sent", "rejected", "parked")
FINAL_STATUSES: tuple[str, ...] = ("accepted", "withdrawn")


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    def to_json(self) -> bytes:
        return jsontext.dumps_bytes(self.model_dump(mode="python", exclude_none=True))


class UploadSource(_Message):
    """One record HIS owes a platform (or its withdrawal), as HIS produces it.

    ``source_id`` is unique per version of the record (e.g. the HIS row id and its update time): the same message
    delivered twice changes nothing. ``record_key`` is the platform's business key; when absent the lane's key
    paths read it from the record. A new ``record`` for a key already uploaded is a new revision (a fix): it is
    sent again. ``op: withdraw`` takes back a record not uploaded yet."""

    source_id: str = Field(min_length=1, max_length=96)
    kind: str = Field(min_length=1, max_length=40, description="the lane: a national infno (4101, 3503 …) or a "
                                                               "target's record kind (drg.mrpage …)")
    op: Literal["upsert", "withdraw"] = "upsert"
    record_key: str | None = Field(None, min_length=1, max_length=160)
    his_visit_id: str | None = Field(None, max_length=80)
    insuplc_admdvs: str | None = Field(None, min_length=6, max_length=6, pattern=r"^\d{6}$",
                                       description="the patient's 参保地 (1101 insuinfo): required by the platform's "
                                                   "envelope when the record carries psn_no")
    occurred_at: Time = Field(description="the business event the deadline counts from (settlement, discharge …)")
    deadline_at: Time | None = Field(None, description="HIS's own deadline, overriding the lane's")
    record: dict[str, Any] = Field(default_factory=dict)


def parse_source(value: bytes) -> UploadSource:
    """An UploadSource from the topic's bytes; InputError naming what is wrong."""
    try:
        data = jsontext.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise InputError("not a JSON UploadSource") from None
    if not isinstance(data, dict):
        raise InputError("an UploadSource is a JSON object")
    try:
        return UploadSource.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"not an UploadSource: {validation_reason(exc)}") from None


class UploadOutcome(_Message):
    """Where a record stands now that it changed (accepted, rejected with the platform's reason, parked with ours,
    withdrawn): for HIS and ops. Keyed by the record's lane and key."""

    message_id: str
    target: str
    kind: str
    record_key: str
    his_visit_id: str | None = None
    revision: int
    status: RecordStatus
    reason: str | None = None
    reason_field: str | None = None
    msgid: str | None = None
    receipt: dict[str, Any] | None = None
    occurred_at: Time = Field(default_factory=clock.now)


class CatalogRow(_Message):
    """One row of a platform catalog as it is in force (compacted topic, key ``<infno>:<code>``)."""

    type: Literal["row"] = "row"
    infno: str
    code: str
    ver: str
    vali_flag: str | None = None
    row: list[str | None] | dict[str, Any]


class CatalogVersion(_Message):
    """A catalog update applied (key ``<infno>:__version__``): consumers know which version they hold."""

    type: Literal["version"] = "version"
    infno: str
    ver: str | None
    prev_ver: str | None = None
    rows: int
    applied_at: Time


CatalogMessage = TypeAdapter(Annotated[CatalogRow | CatalogVersion, Field(discriminator="type")])
