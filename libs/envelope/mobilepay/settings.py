"""Settings of the mobile-pay 2.0 client (env prefix ``YIBAO_MP_``): where the platform is, the application's
credentials (appId, appSecret, our SM2 key, the platform's public key), the envelope's regional details
(version strings, timestamp form, paths) and how order statuses are read.

The defaults talk to the platform simulator on loopback (``yibao sim``) as the application it knows by default.
Secrets are ``SecretStr`` and may be files named after the variable in ``YIBAO_SECRETS_DIR``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from yibao.core.settings import secrets_dir

__all__ = ["MobilePaySettings", "ORDER_MEANINGS", "DEFAULT_ORD_STAS"]

#: what the bridge makes of an order status (ordStas)
ORDER_MEANINGS = ("uploaded", "paying", "settled", "refunded", "revoked", "failed")

#: ordStas as one integration reads them (mobilepay.md: 0-2 processing, 3-6 settled, 7-13 cancelled, 14-16
#: failed); the simulator answers 1 uploaded, 4 settled, 7 revoked, 9 refunded
DEFAULT_ORD_STAS: dict[str, str] = {
    "0": "uploaded", "1": "uploaded", "2": "paying",
    "3": "settled", "4": "settled", "5": "settled", "6": "settled",
    "7": "revoked", "8": "revoked", "9": "refunded", "10": "refunded", "11": "refunded", "12": "revoked",
    "13": "revoked",
    "14": "failed", "15": "failed", "16": "failed",
}


class MobilePaySettings(BaseSettings):
    """How to reach the mobile-pay 2.0 platform, and the application (appId) the hospital is on it."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_MP_", extra="ignore", case_sensitive=False)

    # --- where ---------------------------------------------------------------------------------------------
    base_url: str = Field("http://127.0.0.1:7070", description="scheme://host:port of the mobile-pay platform")
    paths: dict[str, str] = Field(default_factory=dict,
                                  description="per-transaction path overrides (JSON object, e.g. {\"6201\": "
                                              "\"/api/hos/uldFeeInfo\"}); default: the mobile-pay catalog's paths")
    paths_1_0: dict[str, str] = Field(default_factory=dict,
                                      description="paths of 1.0 orders where they differ from 2.0's (JSON object)")

    # --- who we are ----------------------------------------------------------------------------------------
    app_id: str = Field("yibaoMobileApp0001", description="appId (its first 16 characters key the SM4 working key)")
    app_secret: SecretStr = Field(SecretStr("yibao-mobile-app-secret"), description="appSecret (signs and keys)")
    private_key: SecretStr = Field(SecretStr(""), description="our SM2 private key (64 hex)")
    platform_public_key: str = Field("", description="the platform's SM2 public key (hex x||y, 04 prefix optional)")
    org_codg: str = Field("H44010600001", description="orgCodg: the institution's 定点医药机构编号")
    org_name: str = Field("yibao-bridge测试医院", description="the institution's name")
    sm2_backend: str = Field("auto", description="SM2 backend (auto, gmssl-pyx, gmssl)")

    # --- the envelope's regional details --------------------------------------------------------------------
    version: str = Field("2.0.1", description="envelope version of 2.0 orders")
    version_1_0: str = Field("1.0.1", description="envelope version of 1.0 orders (channels configured for 1.0)")
    timestamp_format: Literal["compact", "epoch_ms"] = Field(
        "compact", description="envelope timestamp: compact (yyyyMMddHHmmss) or epoch_ms")
    nested_numbers: Literal["number", "string"] = Field(
        "number", description="numbers inside data in the sign string: as numbers, or stringified (a "
                              "counterpart's interop quirk)")
    ord_stas: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ORD_STAS),
        description="ordStas code → uploaded, paying, settled, refunded, revoked or failed (JSON object)")

    # --- time limits and retries ---------------------------------------------------------------------------
    connect_timeout_s: float = Field(5.0, description="TCP/TLS connect timeout")
    read_timeout_s: float = Field(30.0, description="reply timeout")
    write_timeout_s: float = Field(10.0, description="request write timeout")
    pool_timeout_s: float = Field(5.0, description="wait for a free pooled connection")
    max_connections: int = Field(50, description="connection pool size")
    retry_attempts: int = Field(3, description="attempts of a call that reached nothing, or of a query")
    retry_backoff_s: float = Field(0.2, description="first retry delay; doubles each attempt")
    not_processed_statuses: list[int] = Field(
        default_factory=lambda: [408, 429, 503],
        description="HTTP statuses proving the gateway refused to forward (nothing done: retried)")
    tls_verify: bool = Field(True, description="verify the platform's certificate")
    tls_ca_file: str | None = Field(None, description="CA bundle (PEM) for the platform's certificate")

    @field_validator("ord_stas")
    @classmethod
    def _meanings(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted({m for m in value.values() if m not in ORDER_MEANINGS})
        if bad:
            raise ValueError(f"ord_stas meanings must be among {', '.join(ORDER_MEANINGS)} (not {', '.join(bad)})")
        return value

    def meaning(self, ord_stas: object) -> str | None:
        """What an ordStas means (None: a code this configuration does not know)."""
        return self.ord_stas.get(str(ord_stas).strip()) if ord_stas not in (None, "") else None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        directory = secrets_dir()
        if directory is not None:
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=directory))
        return tuple(sources)
