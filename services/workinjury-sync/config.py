"""The chain's configuration, resolved once from the settings (so decisions never read the environment)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from yibao.workinjury_sync.streams import QUEUE_STREAMS

__all__ = ["ChainConfig"]


@dataclass(frozen=True)
class ChainConfig:
    org_code: str
    admdvs: str
    catalog: Any = field(repr=False)  #: the work-injury catalog (pure checks: lengths, required, code lists)
    poll_interval: _dt.timedelta = _dt.timedelta(minutes=30)
    page_size: int = 500
    streams: tuple[str, ...] = QUEUE_STREAMS
    upload_batch: int = 500
    orphan_timeout: _dt.timedelta = _dt.timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Any, platform: Any, catalog: Any) -> ChainConfig:
        """From the worker's settings and the platform client's (org code, 区划)."""
        return cls(
            org_code=platform.org_code, admdvs=platform.admdvs, catalog=catalog,
            poll_interval=_dt.timedelta(seconds=float(settings.poll_interval_s)),
            page_size=int(settings.page_size),
            streams=tuple(settings.streams) if settings.streams is not None else QUEUE_STREAMS,
            upload_batch=int(settings.upload_batch),
            orphan_timeout=_dt.timedelta(seconds=float(settings.orphan_timeout_s)),
        )

    def deadline_s(self, infno: str) -> int | None:
        return self.catalog.transaction(infno).deadline_s
