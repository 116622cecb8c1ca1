"""Settings of the settlement worker (env prefix ``YIBAO_SETTLEMENT_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings

__all__ = ["SettlementSettings"]


class SettlementSettings(ChainSettings):
    model_config = SettingsConfigDict(env_prefix="YIBAO_SETTLEMENT_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "settlement"
    default_web_port: ClassVar[int] = 6062

    detail_batch_size: int = Field(
        50, ge=1, le=500, description="fee lines per 2204/2301 upload call (platforms cap one call's lines)"
    )
    lines_wait_s: float = Field(
        300.0, description="how long a settlement request waits for its charge lines to add up to the HIS total "
                           "(lines travel on their own and may arrive after the request) before it is rejected",
    )
    prerequisite_wait_s: float = Field(
        900.0, description="how long a settlement or refund request waits for what must come first (the visit's "
                           "registration, its 2203 visit information, the 2402 discharge, the settlement a refund "
                           "names) before it is rejected",
    )
    order_window_s: float = Field(
        2.0, ge=0, description="an unwind (退号/取消入院/取消出院) or a discharge is answered only once it has been "
                               "known this long, so that HIS requests and charge lines committed before it on other "
                               "tables (their own CDC topics) are queued ahead of it first",
    )
    sheet_poll_s: float = Field(
        5.0, description="血透: how often an outpatient request settling an inpatient pre-settlement sheet looks "
                         "for sheet lines still arriving on the inpatient account",
    )
    outpatient_bchno_prefix: str = Field(
        "YB", max_length=10,
        description="prefix of the 收费批次号 (chrg_bchno) this service gives each outpatient settlement round",
    )
