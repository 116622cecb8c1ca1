"""Settings of the simulator (env prefix ``YIBAO_SIM_``), one object for a run.

Everything a joint test (联调测试) varies between provinces is a setting here: the gateway kind and its
credentials, paths, the institutions that exist, the population, the settlement policy, the faults and the
mobile-pay application.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GatewayKind", "SimulatorSettings", "DEFAULT_FIXMEDINS_CODE"]

#: the institution every default run knows (12 characters, the national code's shape)
DEFAULT_FIXMEDINS_CODE = "H44010600001"


class GatewayKind(str, Enum):
    """How requests authenticate in front of the platform (national-platform.md, "Gateway authentication")."""

    none = "none"
    tif = "tif"
    api = "_api"
    encrypted = "encrypted"


class SimulatorSettings(BaseSettings):
    """A run of the simulator. Tests build one directly; ``yibao sim`` reads flags and ``YIBAO_SIM_*``."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_SIM_", extra="ignore", case_sensitive=False)

    host: str = Field("127.0.0.1", description="address the platform and admin APIs listen on")
    port: int = Field(7070, description="platform API port (0: a free port)")
    admin_port: int = Field(7071, description="admin API port, never the platform's (0: a free port)")
    seed: int = Field(20240101, description="seed of the population and of every fault decision")
    population_size: int = Field(200, description="persons known to 1101 at start")
    admdvs: str = Field("440100", description="the platform's own 区划 (inf_refmsgid prefix, default 参保地)")
    fixmedins_codes: list[str] = Field(
        default_factory=lambda: [DEFAULT_FIXMEDINS_CODE], description="institutions the platform knows"
    )

    # --- paths ------------------------------------------------------------------------------------------
    call_path: str = Field("/fsi/api/rsfComIfsService/callService", description="path of normal transactions")
    api_path_prefix: str = Field("/fsi/api/", description="_api gateway: one path per infno under this prefix")
    upload_path: str = Field("/fsi/api/fileupload/upload", description="9101 multipart upload path")
    download_path: str = Field("/fsi/api/fileupload/download", description="9102 download path")
    mobilepay_prefix: str = Field("/org/local/api/hos/", description="mobile-pay 2.0 paths")

    # --- gateway ----------------------------------------------------------------------------------------
    gateway: GatewayKind = Field(GatewayKind.none, description="none, tif, _api or encrypted")
    tif_paasid: str = Field("yibao_paas", description="tif: the accepted x-tif-paasid")
    tif_token: str = Field("tif-token-for-tests", description="tif: the token shared with that paasid")
    api_access_key: str = Field("yibao-access-key", description="_api: the accepted _api_access_key")
    api_secret: str = Field("yibao-api-secret", description="_api: the HmacSHA1 secret")
    api_version: str = Field("1.0.0", description="_api: the accepted _api_version")
    max_clock_skew_s: int = Field(300, description="gateway timestamps older/newer than this are stale")
    sm4_key_hex: str = Field("0123456789abcdeffedcba9876543210", description="encrypted: SM4 key (32 hex)")
    hospital_public_key_hex: str = Field("", description="encrypted: the hospital's SM2 public key (x||y hex)")
    platform_private_key_hex: str = Field("", description="platform SM2 private key (hex); empty: a pair is generated")
    platform_public_key_hex: str = Field("", description="platform SM2 public key (x||y hex), with the private key")
    infcode_as_string: bool = Field(False, description="answer infcode as \"0\"/\"-1\" instead of 0/-1")

    # --- behaviour --------------------------------------------------------------------------------------
    validate_with_catalog: bool = Field(True, description="validate inputs with yibao.envelope.catalog when present")
    catalog_province: str = Field("", description="province overrides of the catalog (empty: national)")
    require_sign_in: bool = Field(True, description="every transaction but 9001 needs a valid sign_no")
    reversible_infnos: list[str] | None = Field(
        None, description="what 2601 may reverse; unset: the catalog's reversible transactions (of catalog_province)"
    )
    file_ttl_s: int = Field(86400, description="9101/9102 files downloadable for this long (dld_endtime)")
    hold_s: float = Field(30.0, description="commit_then_timeout: how long the reply is held before dropping")
    faults: list[str] = Field(
        default_factory=list, description="fault rules INFNO:KIND:PROBABILITY[:PARAM] (see faults.py)"
    )
    policy_file: str = Field("", description="YAML/JSON settlement policy overriding the default")

    # --- mobile pay 2.0 ---------------------------------------------------------------------------------
    mp_app_id: str = Field("yibaoMobileApp0001", description="mobile pay appId (first 16 chars key the SM4)")
    mp_app_secret: str = Field("yibao-mobile-app-secret", description="mobile pay appSecret")
    mp_hospital_public_key_hex: str = Field("", description="hospital's SM2 public key for mobile pay")
    mp_version: str = Field("2.0.1", description="mobile pay envelope version")
    mp_timestamp_ms: bool = Field(True, description="timestamps in epoch ms (False: yyyyMMddHHmmss)")
    mp_verify_requests: bool = Field(True, description="verify the hospital's signData on every request")
    mp_refund_requires_auth: bool = Field(
        False, description="a 6203 needs payAuthNo or ecToken (some provinces): hospital-initiated refunds then "
                           "go through the counter (2208)")
    callback_url: str = Field("", description="hospital URL receiving settlement-result callbacks")
    callback_retry_initial_s: float = Field(0.2, description="first retry delay of an unacknowledged callback")
    callback_retry_max_s: float = Field(30.0, description="longest delay between callback attempts")
    callback_max_attempts: int = Field(20, description="attempts before a callback is given up")
    callback_late_s: float = Field(2.0, description="late_callback fault: delay before the first attempt")

    # --- the prescription centre calling the hospital back (7102 审核结果, 7103 购药结果: simulator/rx_feedback.py) ----
    rx_feedback_url: str = Field("", description="hospital URL receiving 7102/7103 (the upload scheduler's "
                                                 "POST /national/inbound); empty: no feedback is sent")
    rx_feedback_token: str = Field("", description="the shared token presented to the hospital (empty: none)")
    rx_feedback_token_header: str = Field("X-Yibao-Inbound-Token", description="the header carrying the token")
    rx_review_delay_s: float = Field(1.0, ge=0, description="from a 7101 accepted to its 7102")
    rx_purchase_delay_s: float = Field(1.0, ge=0, description="from an approving 7102 to the 7103 of the purchase")
    rx_reject_ratio: float = Field(0.0, ge=0, le=1, description="share of prescriptions the pharmacy rejects "
                                                                "(seeded by hosp_rxno: the same verdict every run)")
    rx_reject_pattern: str = Field("", description="a regular expression: prescriptions whose hosp_rxno matches "
                                                   "are rejected (before the ratio)")
    rx_approved_code: str = Field("1", description="rx_chk_stas_codg of an approved review (assumed: no public list)")
    rx_rejected_code: str = Field("2", description="rx_chk_stas_codg of a rejected review (assumed)")
    rx_pharmacy_code: str = Field("P44010600001", description="the reviewing and dispensing pharmacy's code")
    rx_pharmacy_name: str = Field("模拟定点零售药店", description="the reviewing and dispensing pharmacy's name")
    rx_feedback_max_attempts: int = Field(5, ge=1, description="posts of one message before it is given up")
    rx_feedback_retry_s: float = Field(0.2, gt=0, description="first delay before posting again (doubling, ≤ 5 s)")

    # --- WeChat Pay (医保自费混合收款, API v3) -------------------------------------------------------------------
    wx_merchant_public_key_pem: str = Field("", description="WeChat: the hospital's RSA public key (PEM) its "
                                                            "requests are verified with; empty: not verified")
    wx_platform_private_key_pem: str = Field("", description="WeChat Pay's RSA private key (PEM) answers and "
                                                             "notifications are signed with; empty: one is generated")
    wx_api_v3_key: str = Field("yibao-wechat-apiv3-key-000000001", description="WeChat: the APIv3 key (32 "
                                                                              "characters) notifications are sealed with")
    wx_autopay_s: float = Field(0.3, description="WeChat: the patient pays an order's cash part this long after it "
                                                 "is placed (fault wechat:abandon: never)")
    # --- work injury (工伤保险异地就医系统) --------------------------------------------------------------------
    wi_path_prefix: str = Field("/gsyd/api/", description="work injury: one path per GY* transaction under this prefix")
    wi_hospital_public_key_hex: str = Field("", description="work injury: the hospital's SM2 public key (x||y hex); "
                                                            "empty: every request is refused unsealed")
    wi_org_codes: list[str] = Field(default_factory=lambda: [DEFAULT_FIXMEDINS_CODE],
                                    description="work injury: agreement institutions the platform knows")
    wi_admdvs: str = Field("440100", description="work injury: the 区划 of the place of treatment (this province)")
    wi_mirror_uploads: bool = Field(True, description="work injury: offer every upload to the matching download "
                                                      "queue (the other province's view), so every stream has records")
