"""The scheduler's configuration, resolved once from the settings and the lanes file (decisions never read the
environment or a file): what each lane uploads, with which transaction, in what batches, when, by when.

A **lane** is one kind of record for one target (``4101``, ``3503``, ``drg.mrpage`` …); its records are driven by
one chain visit per shard, keyed ``<target>:<kind>[:<shard>]``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yibao.upload_scheduler.errors import LaneConfigError

__all__ = ["Schedule", "Deadline", "Requirement", "LaneSpec", "LanesFile", "UploadConfig", "lane_key",
           "parse_lane_key", "load_lanes"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Spec):
    """realtime: as soon as it arrives; daily: at ``at`` (HH:MM) on the day after its event; every: at the next
    boundary of ``minutes`` after its event."""

    mode: Literal["realtime", "daily", "every"] = "realtime"
    at: str = "01:00"
    minutes: int = Field(15, ge=1, le=1440)

    @model_validator(mode="after")
    def _time(self) -> Schedule:
        try:
            hh, mm = (int(x) for x in self.at.split(":"))
            _dt.time(hh, mm)
        except (ValueError, TypeError):
            raise ValueError(f"schedule.at {self.at!r} is not HH:MM") from None
        return self

    def due(self, occurred_at: _dt.datetime) -> _dt.datetime:
        """When a record of an event at ``occurred_at`` is sent."""
        if self.mode == "realtime":
            return occurred_at
        if self.mode == "daily":
            hh, mm = (int(x) for x in self.at.split(":"))
            day = occurred_at.date() + _dt.timedelta(days=1)
            return occurred_at.replace(year=day.year, month=day.month, day=day.day, hour=hh, minute=mm, second=0,
                                       microsecond=0)
        start = occurred_at.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = int((occurred_at - start).total_seconds() // 60)
        return start + _dt.timedelta(minutes=(elapsed // self.minutes + 1) * self.minutes)


class Deadline(_Spec):
    days: int = Field(0, ge=0, le=366)
    hours: int = Field(0, ge=0, le=24 * 366)
    minutes: int = Field(0, ge=0, le=24 * 60 * 366)

    @property
    def span(self) -> _dt.timedelta:
        return _dt.timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class Requirement(_Spec):
    """The record waits for the record of the same key in ``lane`` to be accepted; ``fill`` copies receipt
    fields of that record into this one's input (``{"data.hi_rxno": "hi_rxno"}``)."""

    lane: str
    fill: dict[str, str] = Field(default_factory=dict)


class LaneSpec(_Spec):
    kind: str = ""
    target: str
    infno: str
    family: str
    name: str
    key: list[str] = Field(default_factory=list)
    shape: Literal["object", "list"] = "object"
    node: str | None = None
    batch: int = Field(1, ge=1, le=1000)
    shards: int = Field(1, ge=1, le=16)
    schedule: Schedule = Field(default_factory=Schedule)
    deadline: Deadline = Field(default_factory=Deadline)
    requires: Requirement | None = None
    receipt: list[str] = Field(default_factory=list)
    #: the receipt field the platform names the record by afterwards (7101's hi_rxno): its feedback (7102/7103,
    #: :mod:`yibao.upload_scheduler.inbound`) finds the record by it
    platform_key: str | None = None
    change_infno: str | None = None
    #: target lanes: the transaction that withdraws an accepted record before its new revision goes (DRG 冲销)
    reverse_infno: str | None = None
    #: target lanes: the transaction that polls a task the upload answered with (自费 platform)
    poll_infno: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> LaneSpec:
        if self.shape == "list" and not self.node:
            raise ValueError("a list lane names its node (input.<node> holds the records)")
        if self.shape == "object" and self.batch != 1:
            raise ValueError("an object lane sends one record per call (batch 1)")
        if self.platform_key is not None and self.platform_key not in self.receipt:
            raise ValueError(f"platform_key {self.platform_key} is not one of the lane's receipt fields")
        return self

    def body(self, payloads: list[dict[str, Any]]) -> dict[str, Any]:
        """The transaction input carrying ``payloads`` (one, for an object lane)."""
        if self.shape == "object":
            return dict(payloads[0])
        return {self.node: list(payloads)}  # type: ignore[dict-item]


class LanesFile(_Spec):
    lanes: dict[str, LaneSpec]


def load_lanes(path: Path | None = None) -> dict[str, LaneSpec]:
    """The lanes of ``path`` (default: the shipped data/lanes.yaml), each with its kind set; LaneConfigError names
    the file and the entry that is wrong."""
    if path is None:
        text = resources.files("yibao.upload_scheduler.data").joinpath("lanes.yaml").read_text(encoding="utf-8")
        where = "data/lanes.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise LaneConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
        where = str(path)
    try:
        raw = yaml.safe_load(text)
        parsed = LanesFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise LaneConfigError(f"{where}: not YAML ({exc.__class__.__name__})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise LaneConfigError(f"{where}: {loc}: {first['msg']}") from None
    lanes = {kind: spec.model_copy(update={"kind": kind}) for kind, spec in parsed.lanes.items()}
    for kind, spec in lanes.items():
        if spec.requires is not None and spec.requires.lane not in lanes:
            raise LaneConfigError(f"{where}: lanes.{kind}.requires names {spec.requires.lane}, which is not a lane")
    return lanes


def lane_key(spec: LaneSpec, record_key: str) -> str:
    """The chain visit key of the lane (and shard) a record belongs to."""
    base = f"{spec.target}:{spec.kind}"
    if spec.shards == 1:
        return base
    shard = int(hashlib.sha256(record_key.encode()).hexdigest()[:8], 16) % spec.shards
    return f"{base}:{shard}"


def parse_lane_key(key: str) -> tuple[str, str, int]:
    """(target, kind, shard) of a lane key."""
    parts = key.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ValueError(f"not a lane key: {key!r}")
    return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 0


@dataclass(frozen=True)
class UploadConfig:
    lanes: dict[str, LaneSpec]
    targets_enabled: frozenset[str] = frozenset({"national"})
    settlement_list_deadline: _dt.timedelta = _dt.timedelta(days=7)
    requirement_poll: _dt.timedelta = _dt.timedelta(seconds=10)
    record_window: int = 200
    zifei_poll: _dt.timedelta = _dt.timedelta(seconds=30)
    zifei_max_polls: int = 120
    fixmedins_code: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, *, fixmedins_code: str = "") -> UploadConfig:
        lanes = load_lanes(getattr(settings, "lanes_file", None))
        days = int(getattr(settings, "settlement_list_deadline_days", 7))
        if "4101" in lanes:  # the setting rules the 清单's deadline
            lanes["4101"] = lanes["4101"].model_copy(update={"deadline": Deadline(days=days)})
        return cls(lanes=lanes, targets_enabled=frozenset(getattr(settings, "targets_enabled", ["national"])),
                   settlement_list_deadline=_dt.timedelta(days=days),
                   requirement_poll=_dt.timedelta(seconds=float(getattr(settings, "requirement_poll_s", 10.0))),
                   record_window=int(getattr(settings, "record_window", 200)),
                   zifei_poll=_dt.timedelta(seconds=float(getattr(settings, "zifei_poll_s", 30.0))),
                   zifei_max_polls=int(getattr(settings, "zifei_max_polls", 120)),
                   fixmedins_code=fixmedins_code)

    def lane(self, kind: str) -> LaneSpec | None:
        return self.lanes.get(kind)

    def lane_keys(self, kind: str) -> list[str]:
        """Every chain visit key of a lane (one per shard)."""
        spec = self.lanes[kind]
        base = f"{spec.target}:{spec.kind}"
        return [base] if spec.shards == 1 else [f"{base}:{i}" for i in range(spec.shards)]
