"""Settings of the national-platform client (env prefix ``YIBAO_PLATFORM_``).

A service composes :class:`PlatformSettings` with its own settings; the defaults talk to the platform simulator
on loopback (``yibao sim``) with no gateway, as the institution the simulator knows by default, so a fresh
checkout works without configuration. Everything a province changes is a setting here: the gateway kind and its
credentials, paths, versions, timeouts, TLS.

Secrets (gateway token and secret, SM4 key, SM2 private key) are ``SecretStr`` and, like every yibao setting,
may be given as a file named after the environment variable in the secrets directory (``YIBAO_SECRETS_DIR``),
so they never need to sit in the environment or in a manifest.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from yibao.core.settings import YibaoSettings

__all__ = ["PlatformClientSettings", "PlatformSettings", "GatewayKind", "DEFAULT_BASE_URL", "DEFAULT_SETTLEMENT_INFNOS", "PROVINCE_DEFAULTS"]

GatewayKind = Literal["none", "tif", "api", "encrypted"]

#: the platform simulator on loopback (issue 4)
DEFAULT_BASE_URL = "http://127.0.0.1:7070"

#: transactions whose reply may take long (the platform computes a settlement): they get the settlement timeout
DEFAULT_SETTLEMENT_INFNOS = ("2206", "2207", "2208", "2303", "2304", "2305", "2601")



#: settings a province file may default (``platform:`` in data/provinces/<name>.yaml): how the envelope is headed
#: and signed there. Never secrets, never addresses of a deployment; a value set by the environment always wins.
PROVINCE_DEFAULTS = frozenset({
    "gateway", "sign_over", "signtype", "infver", "recer_sys_code", "api_version", "require_response_signature",
    "insuplc_required_with_psn_no", "call_path", "upload_path", "download_path", "api_path_template",
})

#: envelope fields filled from settings, with their maximum lengths
_HEADER_LIMITS = {
    "mdtrtarea_admvs": 6, "recer_sys_code": 10, "dev_no": 100, "dev_safe_info": 2000, "infver": 6,
    "opter_type": 3, "opter": 30, "opter_name": 50, "fixmedins_name": 200, "signtype": 10,
}


class PlatformClientSettings(YibaoSettings):
    """What every platform client has: where the platform is, how long a call may take, its connection pool, retries
    and TLS. Each platform's settings extend it under their own prefix (:class:`PlatformSettings`,
    :class:`yibao.envelope.workinjury.WorkInjuryPlatformSettings`); like every yibao setting, a secret may also be a
    file named after the environment variable in ``YIBAO_SECRETS_DIR``."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    base_url: str = Field(DEFAULT_BASE_URL, description="scheme://host:port of the platform (or its gateway)")

    # --- time limits and retries ---------------------------------------------------------------------------
    connect_timeout_s: float = Field(5.0, gt=0, description="TCP/TLS connect timeout")
    read_timeout_s: float = Field(30.0, gt=0, description="reply timeout of an ordinary call")
    write_timeout_s: float = Field(10.0, gt=0, description="request write timeout")
    pool_timeout_s: float = Field(5.0, gt=0, description="wait for a free pooled connection")
    max_connections: int = Field(50, ge=1, description="connection pool size")
    retry_attempts: int = Field(3, ge=1, description="attempts of a call that may be retried (1: never retry)")
    retry_backoff_s: float = Field(0.2, ge=0, description="first retry delay; doubles each attempt")
    not_processed_statuses: list[int] = Field(
        default_factory=lambda: [408, 429, 503],
        description="HTTP statuses proving the gateway refused to forward (TransportError, retried)",
    )
    tls_verify: bool = Field(True, description="verify the platform's certificate")


class PlatformSettings(PlatformClientSettings):
    """How to reach and authenticate to the national platform, and who we are on it."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_PLATFORM_", extra="ignore", case_sensitive=False)

    # --- where ---------------------------------------------------------------------------------------------
    call_path: str = Field("/fsi/api/rsfComIfsService/callService", description="path of normal transactions")
    upload_path: str = Field("/fsi/api/fileupload/upload", description="path of 9101 (multipart upload)")
    download_path: str = Field("/fsi/api/fileupload/download", description="path of 9102 (file download)")
    api_path_template: str = Field(
        "",
        description="_api gateway: a per-transaction path template overriding the catalog's ({infno}, "
        "{api_name} = hsa-fsi-<infno> substituted); empty (default): each transaction's api_path from the catalog",
    )
    paths: dict[str, str] = Field(
        default_factory=dict, description="per-infno path overrides (JSON object), winning over everything"
    )

    # --- gateway -------------------------------------------------------------------------------------------
    gateway: GatewayKind = Field("none", description="none, tif, api (the _api gateway) or encrypted")
    tif_paasid: str = Field("", description="tif: x-tif-paasid")
    tif_token: SecretStr = Field(SecretStr(""), description="tif: the token hashed into x-tif-signature")
    tif_service_id: str = Field("", description="tif: x-tif-serviceId (sent only when set)")
    api_access_key: str = Field("", description="_api: _api_access_key")
    api_secret: SecretStr = Field(SecretStr(""), description="_api: the HmacSHA1 secret")
    api_version: str = Field("1.0.0", description="_api: _api_version")
    sm4_key: SecretStr = Field(
        SecretStr(""), description="encrypted: SM4 key, 32 hex digits or 16 characters"
    )
    sm2_private_key: SecretStr = Field(SecretStr(""), description="encrypted: our SM2 private key (64 hex)")
    platform_public_key: str = Field(
        "", description="encrypted: the platform's SM2 public key (hex x||y, 04 prefix optional) for replies"
    )
    sm2_uid: str = Field("1234567812345678", description="encrypted: SM2 user id hashed into Z")
    sm2_backend: str = Field("auto", description="encrypted: SM2 backend (auto, gmssl-pyx, gmssl)")
    sign_over: Literal["plaintext", "ciphertext"] = Field(
        "plaintext",
        description="encrypted: cainfo signs the UTF-8 JSON of the plaintext input (plaintext) or the Base64 "
        "text of the encrypted input (ciphertext)",
    )
    signtype: str = Field("SM2", description="encrypted: the signtype written into the envelope")
    require_response_signature: bool = Field(
        False, description="encrypted: a reply whose encrypted output carries no cainfo is not believed"
    )

    # --- who we are ----------------------------------------------------------------------------------------
    fixmedins_code: str = Field("H44010600001", description="定点医药机构编号 (12 characters)")
    fixmedins_name: str = Field("yibao-bridge测试医院", description="定点医药机构名称 (≤200)")
    mdtrtarea_admvs: str = Field("440100", description="就医地医保区划 (6 digits)")
    recer_sys_code: str = Field("FSI_LOCAL", description="接收方系统代码 (≤10)")
    infver: str = Field("V1.0", description="接口版本号, issued by the platform")
    opter_type: str = Field("1", description="1 经办人, 2 自助终端, 3 移动终端")
    opter: str = Field("yibao", description="经办人/终端编号 (≤30); also opter_no of 9001")
    opter_name: str = Field("yibao-bridge", description="经办人姓名/终端名称 (≤50)")
    dev_no: str = Field("", description="设备编号 (≤100)")
    dev_safe_info: str = Field("", description="设备安全信息 (≤2000)")
    province: str | None = Field(
        None, description="province whose catalog overrides apply, and whose file's platform: section defaults the "
                          "settings above it does not set (guangdong, fujian, zhejiang or your own; None: national)")
    insuplc_required_with_psn_no: bool = Field(
        True, description="refuse locally a call whose input has psn_no but no insuplc_admdvs is given"
    )
    max_input_chars: int = Field(40000, description="longest input JSON text accepted (spec: 40000)")

    # --- time limits and retries ---------------------------------------------------------------------------
    settlement_read_timeout_s: float = Field(60.0, description="reply timeout of settlement_infnos")
    settlement_infnos: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SETTLEMENT_INFNOS), description="calls given the settlement timeout"
    )
    max_keepalive_connections: int = Field(20, description="idle connections kept open")

    # --- TLS -----------------------------------------------------------------------------------------------
    tls_ca_file: str | None = Field(None, description="CA bundle (PEM) for the platform's certificate")
    tls_client_cert: str | None = Field(None, description="client certificate (PEM) for mutual TLS")
    tls_client_key: str | None = Field(None, description="client key (PEM); omit when inside the cert file")

    # --- msgid ---------------------------------------------------------------------------------------------
    msgid_slots: int = Field(
        10, description="serial ranges per institution (divides 10000): most processes allocating msgids at once;"
        " each may issue 10000/slots msgids per second"
    )
    msgid_heartbeat_s: float = Field(5.0, description="how often a process renews its msgid slot lease")
    msgid_lease_ttl_s: float = Field(15.0, description="a process stops issuing this long after its last renewal")
    msgid_stale_after_s: float = Field(45.0, description="a slot not renewed this long may be taken over")
    msgid_lease_wait_s: float = Field(60.0, description="how long to wait for a free slot before failing")

    # --- 9001 sign-in --------------------------------------------------------------------------------------
    signin_enabled: bool = Field(True, description="sign in (9001) before the first call; sign_no everywhere")
    signin_renew_s: float = Field(4 * 3600.0, description="a sign_no is renewed after this long")
    signin_renew_at_midnight: bool = Field(True, description="a sign_no also expires at Shanghai midnight")
    signin_mac: str = Field("", description="mac of 9001 (empty: this host's)")
    signin_ip: str = Field("", description="ip of 9001 (empty: this host's)")
    signin_wait_s: float = Field(30.0, description="how long a worker waits for another worker's 9001")
    signout_on_close: bool = Field(True, description="9002 on close when this process made the sign-in")
    signin_invalid_markers: list[str] = Field(
        default_factory=list,
        description="err_msg phrases meaning the sign_no is invalid (the session is renewed), added to the catalog's "
                    "wording sign_in_invalid (a province file is the better place for them)",
    )

    @model_validator(mode="before")
    @classmethod
    def _province_defaults(cls, data: object) -> object:
        # what the province file says about heading and signing (gateway kind, infver, sign_over …) fills what
        # neither the caller nor the environment set: switching YIBAO_PLATFORM_PROVINCE switches them too
        if not isinstance(data, dict) or not data.get("province"):
            return data
        from yibao.envelope.catalog import Catalog  # here: the catalog is data, loaded once and cached

        defaults = Catalog.load(str(data["province"])).platform_defaults
        return {**{k: v for k, v in defaults.items() if k in PROVINCE_DEFAULTS}, **data}

    @field_validator("gateway", mode="before")
    @classmethod
    def _gateway_alias(cls, value: object) -> object:
        # the gateway is called "_api" in the field; accept that spelling too
        return "api" if value == "_api" else value

    @field_validator("fixmedins_code")
    @classmethod
    def _twelve_characters(cls, value: str) -> str:
        if len(value) != 12:
            raise ValueError("fixmedins_code must be exactly 12 characters (msgid = code(12)+time(14)+serial(4))")
        return value

    @model_validator(mode="after")
    def _envelope_lengths(self) -> "PlatformSettings":
        # the envelope's own field lengths (national-platform.md); a long value would be refused on every call
        for name, limit in _HEADER_LIMITS.items():
            if len(getattr(self, name)) > limit:
                raise ValueError(f"{name} is longer than the envelope allows ({limit} characters)")
        return self

    @field_validator("msgid_slots")
    @classmethod
    def _slots_divide_serials(cls, value: int) -> int:
        if value < 1 or 10000 % value:
            raise ValueError("msgid_slots must divide 10000 (1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, …)")
        return value

    @model_validator(mode="after")
    def _lease_times_in_order(self) -> "PlatformSettings":
        if not (self.msgid_heartbeat_s < self.msgid_lease_ttl_s < self.msgid_stale_after_s):
            raise ValueError("msgid times must satisfy heartbeat < lease_ttl < stale_after")
        return self

    def read_timeout_for(self, infno: str) -> float:
        return self.settlement_read_timeout_s if infno in self.settlement_infnos else self.read_timeout_s
