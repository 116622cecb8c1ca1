"""Settings of the mobile-pay worker (env prefix ``YIBAO_MOBILEPAY_``).

The platform's own settings (where it is, the application's keys, envelope details, ordStas meanings) are the
client's: :class:`yibao.envelope.mobilepay.settings.MobilePaySettings` (``YIBAO_MP_*``); WeChat's are
``YIBAO_WECHAT_*`` (:class:`yibao.envelope.mobilepay.wechat.WeChatSettings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings

__all__ = ["MobilepaySettings"]


class MobilepaySettings(ChainSettings):
    """The mobile-pay worker: channels over HTTP, orders as chains, the platform's callbacks."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_MOBILEPAY_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "mobilepay"
    default_web_port: ClassVar[int] = 6065

    channels_file: Path | None = Field(
        None, description="a secret YAML/JSON file of the channels allowed to call (each {channel, kind, version, "
                          "rights, token or token_sha256}); unset: every channel request is refused (401)")
    order_ttl_s: float = Field(
        900.0, description="an uploaded order the patient has not confirmed (paid) after this long is revoked (6401)")
    registration_wait_s: float = Field(
        300.0, description="how long an order waits for registration to establish the visit on the platform "
                           "(psn_no, insutype, mdtrt_id) before it is refused")
    callback_wait_s: float = Field(
        30.0, description="after 6202, how long the platform's settlement callback is awaited before 6301 is asked")
    confirm_poll_s: float = Field(
        5.0, description="between two 6301 of an order the platform still reports in payment (doubles, to 10×)")
    confirm_max_polls: int = Field(
        20, description="6301 answers still 'in payment' before the order is parked for a person")
    callback_max_age_s: float = Field(
        600.0, description="a callback whose signed timestamp is older than this (or this far ahead) is refused "
                           "as stale")
    callback_path: str = Field("/mobilepay/callback", description="where the platform posts settlement results")
    max_body_bytes: int = Field(262144, description="largest request body the channel API and the callback read")
    wechat_enabled: bool = Field(
        False, description="WeChat channels pay the cash part through WeChat Pay (统一支付下单, YIBAO_WECHAT_*)")
    wechat_cash_wait_s: float = Field(
        900.0, description="WeChat: how long the cash part may stay unpaid before the insurance part is refunded "
                           "(6203 HI) and the WeChat order closed")
    identity_rules: str = Field(
        "", description="settlement-type rules (自费, 本地医保 …): path of a YAML file replacing the shipped example "
                        "(yibao/mobilepay/data/settle_types.yaml); empty: the shipped file")
    identity_check: bool = Field(True, description="check a patient's settlement type against 1101 (national client)")
    admdvs_dictionary: str = Field("admdvs", description="the 1901 dictionary holding 医保区划 (province/city/district)")
    admdvs_refresh_s: float = Field(86400.0, description="how long the 1901 区划 dictionary is kept before it is "
                                                         "downloaded again")
