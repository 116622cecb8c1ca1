"""Settings of the workinjury-sync worker (env prefix ``YIBAO_WORKINJURY_SYNC_``). The platform client's own
settings (where, who, keys, envelope layout) are ``YIBAO_WORKINJURY_PLATFORM_…``
(:class:`yibao.envelope.workinjury.WorkInjuryPlatformSettings`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings

__all__ = ["WorkInjurySyncSettings"]


class WorkInjurySyncSettings(ChainSettings):
    model_config = SettingsConfigDict(env_prefix="YIBAO_WORKINJURY_SYNC_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "workinjury-sync"
    default_web_port: ClassVar[int] = 6064

    poll_interval_s: float = Field(1800.0, gt=0, description="how often each download stream is polled (GYD001, "
                                                             "GYD006, GYD101 …; the seed: every 30 minutes)")
    page_size: int = Field(500, ge=1, le=500, description="records asked per download call (the platform's "
                                                          "limit: 500)")
    streams: list[str] | None = Field(None, description="download streams to poll (JSON list of GY D codes); default: "
                                                        "every stream")
    upload_batch: int = Field(500, ge=1, le=500, description="fee lines per GYU102 call (at most 500)")
    deadline_warning_ratio: float = Field(0.66, gt=0, lt=1, description="an upload waiting longer than this share "
                                                                       "of its deadline is reported at risk "
                                                                       "(yibao_workinjury_uploads_at_risk)")
    watch_interval_s: float = Field(15.0, gt=0, description="how often the deadline and lag gauges are read from the "
                                                            "database")
    realtime_timeout_s: float = Field(8.0, gt=0, description="time budget of a realtime check HIS asks over HTTP "
                                                             "(GYD051, GYD052, GYD055, GYU010, GYD104, GYU000)")
    orphan_timeout_s: float = Field(900.0, gt=0, description="how long a request waits for what it depends on (an "
                                                             "audit for its application's download, fee lines for "
                                                             "their admission event) before HIS is told")

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: list[str] | None) -> list[str] | None:
        from yibao.workinjury_sync.streams import QUEUE_STREAMS

        if value is not None:
            unknown = sorted(set(value) - set(QUEUE_STREAMS))
            if unknown:
                raise ValueError(f"unknown download streams {unknown} (known: {', '.join(QUEUE_STREAMS)})")
        return value
