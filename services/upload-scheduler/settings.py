"""Settings of the upload-scheduler worker (env prefix ``YIBAO_UPLOAD_SCHEDULER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from yibao.chains.runtime import ChainSettings

__all__ = ["UploadSchedulerSettings", "TARGETS", "CATALOG_INFNOS"]

#: every target the scheduler knows (targets.yaml); only the enabled ones are driven
TARGETS = ("national", "zifei", "yimatong", "drg", "epidemic", "flu")
#: the platform catalogs synced by default: 1301-1319, the institution (1201)
CATALOG_INFNOS = tuple(str(n) for n in range(1301, 1320)) + ("1201",)


class UploadSchedulerSettings(ChainSettings):
    """The upload scheduler: every data upload the platforms require, per record and on time, and the platform
    catalogs (1301-1319 by version, 1901 dictionaries, 1201) kept in the database and published."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_UPLOAD_SCHEDULER_", extra="ignore", case_sensitive=False)
    service_name: ClassVar[str] = "upload-scheduler"
    default_web_port: ClassVar[int] = 6063

    # --- what is uploaded, where ---------------------------------------------------------------------------
    lanes_file: Path | None = Field(None, description="a lanes file replacing the shipped one (data/lanes.yaml: "
                                                      "keys, batch sizes, schedules, deadlines per upload)")
    targets_file: Path | None = Field(None, description="a targets file replacing the shipped one (data/targets.yaml: "
                                                        "each target's transactions, fields, lost-answer rule)")
    targets_enabled: list[str] = Field(
        default_factory=lambda: ["national"],
        description="targets whose lanes are driven (JSON list of national, zifei, yimatong, drg, epidemic, flu); "
                    "a record for a target not enabled is parked with that reason")
    settlement_list_deadline_days: int = Field(
        7, ge=0, le=365, description="4101 结算清单: days after the settlement by which the platform must have it "
                                     "(the province's rule; 0: the day of settlement)")
    requirement_poll_s: float = Field(10.0, gt=0, description="how often a record waiting for another (7104 for its "
                                                              "7101 …) looks again")
    record_window: int = Field(200, ge=10, le=5000, description="pending records a lane reads at once to choose "
                                                                "its next batch")
    # --- what the platform posts back (7102 处方审核结果, 7103 处方购药结果 on POST /national/inbound). Ingress-level
    #     auth: the platform (or the gateway in front of it) presents the shared token, and/or its address is on the
    #     allow-list; with neither configured every post is refused (403). Production puts this port behind the
    #     hospital's ingress (TLS; mTLS where the province offers it): these checks are the second line.
    inbound_token: SecretStr = Field(SecretStr(""), description="the shared token the platform presents in "
                                                                "inbound_token_header (empty: no token check)")
    inbound_token_header: str = Field("X-Yibao-Inbound-Token", min_length=1, max_length=64,
                                      description="the header carrying the shared token")
    inbound_allowed_sources: list[str] = Field(
        default_factory=list, description="addresses or networks (JSON list: \"10.1.2.3\", \"10.8.0.0/16\") allowed "
                                          "to post, as the worker sees the peer (X-Forwarded-For is not trusted); "
                                          "empty: no address check")
    inbound_max_body_bytes: int = Field(256 * 1024, ge=1024, le=8 * 1024 * 1024,
                                        description="the largest inbound envelope read (7103 with its drug lines)")
    # --- ops -----------------------------------------------------------------------------------------------
    gauges_interval_s: float = Field(15.0, gt=0, description="how often backlog, deadline margins and catalog "
                                                             "ages are measured for /metrics")
    # --- catalogs ------------------------------------------------------------------------------------------
    catalogs_file: Path | None = Field(None, description="a catalogs file replacing the shipped one "
                                                        "(data/catalogs.yaml: how each 13xx file is read)")
    catalog_sync_enabled: bool = Field(True, description="download the platform catalogs by itself")
    catalog_sync_interval_s: float = Field(3600.0, gt=0, description="how often every catalog is brought up to the "
                                                                     "platform's newest version")
    catalog_retry_s: float = Field(300.0, gt=0, description="after a refused file or an unreachable platform, the "
                                                            "next try of that catalog")
    catalog_infnos: list[str] = Field(default_factory=lambda: list(CATALOG_INFNOS),
                                      description="catalogs synced (JSON list of 1301-1319, 1201)")
    catalog_dictionaries: list[str] = Field(
        default_factory=lambda: ["insutype", "med_type", "psn_type", "clr_type", "dept"],
        description="1901 dictionary types synced (JSON list)")
    catalog_page_size: int = Field(1000, ge=1, le=9999, description="rows per page of the paged catalog queries "
                                                                    "(1304, 1312, 1316-1319)")
    catalog_apply_batch: int = Field(5000, ge=100, le=100000, description="catalog rows written per statement while "
                                                                          "a file is applied (memory stays bounded)")
    catalog_max_versions: int = Field(50, ge=1, description="versions one sync applies at most before yielding")
    catalog_publish: bool = Field(True, description="publish every applied catalog row on yibao.catalog.v1 "
                                                    "(compacted: consumers read one current catalog)")
    catalog_publish_batch: int = Field(2000, ge=1, description="catalog rows read and produced per batch")
    catalog_lease_s: float = Field(600.0, gt=0, description="one replica syncs a catalog at a time: its lease")
    # --- other targets: where they are and who we are (seeds 002, 004). Fields the tenders do not fix are
    #     configuration: see services/upload-scheduler/README.md#targets
    zifei_url: str = Field("http://127.0.0.1:7070/targets/zifei", description="provincial 自费 platform base URL")
    zifei_app_id: str = Field("", description="自费 platform: our app id")
    zifei_app_secret: SecretStr = Field(SecretStr(""), description="自费 platform: the HMAC secret of app_id")
    zifei_poll_s: float = Field(30.0, gt=0, description="自费 platform: how often a task's result is polled")
    zifei_max_polls: int = Field(120, ge=1, description="自费 platform: polls before a task is handed to a person")
    yimatong_url: str = Field("http://127.0.0.1:7070/targets/yimatong", description="药耗追溯码 一码通 base URL")
    yimatong_app_id: str = Field("", description="一码通: our app id (身份令牌获取)")
    yimatong_app_secret: SecretStr = Field(SecretStr(""), description="一码通: our app secret")
    drg_url: str = Field("http://127.0.0.1:7070/targets/drg", description="DRG 综合管理应用平台 base URL")
    drg_app_key: str = Field("", description="DRG platform: our app key (机构认证注册)")
    drg_app_secret: SecretStr = Field(SecretStr(""), description="DRG platform: the secret of app_key")
    epidemic_url: str = Field("http://127.0.0.1:7070/targets/epidemic", description="疫情防控 data platform base URL")
    epidemic_token: SecretStr = Field(SecretStr(""), description="疫情 platform: bearer token")
    flu_url: str = Field("http://127.0.0.1:7070/targets/flu", description="流感/发热 surveillance platform base URL")
    flu_token: SecretStr = Field(SecretStr(""), description="流感/发热 platform: bearer token")
    target_timeout_s: float = Field(30.0, gt=0, description="a call to another target longer than this is a lost "
                                                            "answer (resolved as targets.yaml says)")

    @field_validator("targets_enabled")
    @classmethod
    def _known_targets(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TARGETS))
        if unknown:
            raise ValueError(f"unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})")
        return value

    @field_validator("inbound_allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"inbound_allowed_sources: {entry[:60]!r} is not an address or a network") from None
        return value

    @field_validator("catalog_infnos")
    @classmethod
    def _known_catalogs(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CATALOG_INFNOS))
        if unknown:
            raise ValueError(f"not a catalog download: {', '.join(unknown)} (known: 1301-1319, 1201)")
        return value
