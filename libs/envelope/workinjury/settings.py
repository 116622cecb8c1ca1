"""Settings of the work-injury (工伤跨省异地就医) envelope: wire field names, ciphertext layout, limits.

The interface specification (《工伤保险异地就医系统接口技术规范 V1.5.02》) is not public; seed 002 §2.2.1 only
says: business data SM4-encrypted, the SM4 key SM2-encrypted with the receiver's public key, messages signed
and verified, at most 500 records per call (10 for attachments). Everything the seed leaves open is therefore
a setting with a sensible default, to be checked against the province's copy of the spec:

* field names (default ``encryptKey``, ``encryptData``, ``sign``, ``signType``, ``transNo``, ``sendTime``,
  ``transCode``);
* SM2 ciphertext layout (C1C3C2 or C1C2C3, 04 prefix or not) and how binary fields are written (Base64/hex);
* what is signed: ``"envelope"`` (default: the sorted ``k=v&…`` string of every field but the signature, so
  the wrapped key, the ciphertext, the transaction code, serial and time are all covered and checked before
  anything is decrypted) or ``"plaintext"`` (the UTF-8 JSON of the business data, checked after decryption).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from yibao.envelope.crypto import DEFAULT_UID
from yibao.envelope.settings import PlatformClientSettings

__all__ = ["WorkInjuryFieldNames", "WorkInjurySettings", "WorkInjuryPlatformSettings"]


class WorkInjuryFieldNames(BaseModel):
    """Names of the envelope's fields on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encrypt_key: str = "encryptKey"
    encrypt_data: str = "encryptData"
    sign: str = "sign"
    sign_type: str = "signType"
    trans_no: str = "transNo"
    send_time: str = "sendTime"
    trans_code: str = "transCode"

    @model_validator(mode="after")
    def _distinct(self) -> WorkInjuryFieldNames:
        names = list(self.model_dump().values())
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("work-injury envelope field names must be non-empty and distinct")
        return self


class WorkInjurySettings(BaseModel):
    """How one province's work-injury platform wants its envelopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: WorkInjuryFieldNames = Field(default_factory=WorkInjuryFieldNames)
    mode: Literal["C1C3C2", "C1C2C3"] = "C1C3C2"
    prefix04: bool = True
    binary_encoding: Literal["base64", "hex"] = "base64"
    sign_over: Literal["envelope", "plaintext"] = "envelope"
    send_time_format: Literal["compact", "datetime"] = "compact"
    sign_type: str = "SM2"
    uid: bytes = DEFAULT_UID
    max_records: int = Field(500, ge=1, description="records per call (seed 002: 500)")
    max_attachments: int = Field(10, ge=1, description="attachments per call (seed 002: 10)")
    attachment_transactions: frozenset[str] = frozenset({"GYU002"})


class WorkInjuryPlatformSettings(PlatformClientSettings):
    """How to reach the work-injury platform (工伤保险异地就医系统) and who we are on it (env prefix
    ``YIBAO_WORKINJURY_PLATFORM_``). The defaults talk to the platform simulator on loopback (``yibao sim``); the key
    pair is the one staff download from the platform (no default: without it nothing is sent, and the worker says
    so). Secrets may be files named after the variable in ``YIBAO_SECRETS_DIR``; the time limits, retries and TLS are
    those of :class:`~yibao.envelope.settings.PlatformClientSettings`."""

    model_config = SettingsConfigDict(env_prefix="YIBAO_WORKINJURY_PLATFORM_", extra="ignore", case_sensitive=False)

    # --- where ---------------------------------------------------------------------------------------------
    paths: dict[str, str] = Field(default_factory=dict, description="per-transaction path overrides (JSON object "
                                                                    "GYxxx → path); default: the catalog's")
    province: str | None = Field(None, description="province whose work-injury catalog overrides apply "
                                                   "(data/workinjury/provinces/<name>.yaml or a deployment's dir)")

    # --- who we are ----------------------------------------------------------------------------------------
    org_code: str = Field("H44010600001", max_length=30, description="协议机构编号 on the work-injury platform")
    admdvs: str = Field("440100", min_length=6, max_length=6, description="就医地区划 (6 digits)")
    serial_code: str = Field("", description="12 characters prefixing every transNo (time and a serial follow); "
                                             "empty: org_code, which must then be 12 characters")

    # --- keys (the pair staff download from the platform) --------------------------------------------------
    private_key: SecretStr = Field(SecretStr(""), description="our SM2 private key (64 hex digits)")
    platform_public_key: str = Field("", description="the platform's SM2 public key (hex x||y, 04 prefix optional)")
    sm2_backend: str = Field("auto", description="SM2 backend (auto, gmssl-pyx, gmssl)")

    # --- envelope layout (see WorkInjurySettings; the specification is not public) --------------------------
    field_names: WorkInjuryFieldNames = Field(default_factory=WorkInjuryFieldNames,
                                              description="envelope field names (JSON object)")
    sm2_mode: Literal["C1C3C2", "C1C2C3"] = Field("C1C3C2", description="SM2 ciphertext order of the wrapped key")
    sm2_prefix04: bool = Field(True, description="write the 04 point prefix in C1")
    binary_encoding: Literal["base64", "hex"] = Field("base64", description="how ciphertext and signature are written")
    sign_over: Literal["envelope", "plaintext"] = Field("envelope", description="what the signature covers")
    send_time_format: Literal["compact", "datetime"] = Field("compact", description="yyyyMMddHHmmss or "
                                                                                   "yyyy-MM-dd HH:mm:ss")
    sm2_uid: str = Field("1234567812345678", description="SM2 user id hashed into Z")
    reply_code_key: str = Field("infcode", description="key of the result code in a reply's data (0: success)")
    reply_message_key: str = Field("err_msg", description="key of the error message in a reply's data")
    reply_output_key: str = Field("output", description="key of the business output in a reply's data")

    # --- the connection pool (the other time limits and retries: PlatformClientSettings) ---------------------
    max_connections: int = Field(20, ge=1, description="connection pool size")

    @field_validator("serial_code")
    @classmethod
    def _twelve(cls, value: str) -> str:
        if value and len(value) != 12:
            raise ValueError("serial_code must be exactly 12 characters (transNo = code(12)+time(14)+serial(4))")
        return value

    @property
    def serial_institution(self) -> str:
        """The 12 characters prefixing our transNo serials."""
        code = self.serial_code or self.org_code
        if len(code) != 12:
            raise ValueError("set YIBAO_WORKINJURY_PLATFORM_SERIAL_CODE (12 characters): org_code is not 12 characters")
        return code

    @property
    def keys_configured(self) -> bool:
        return bool(self.private_key.get_secret_value() and self.platform_public_key)

    def codec_settings(self) -> WorkInjurySettings:
        return WorkInjurySettings(fields=self.field_names, mode=self.sm2_mode, prefix04=self.sm2_prefix04,
                                  binary_encoding=self.binary_encoding, sign_over=self.sign_over,
                                  send_time_format=self.send_time_format, uid=self.sm2_uid.encode("utf-8"))
