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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yibao.envelope.crypto import DEFAULT_UID

__all__ = ["WorkInjuryFieldNames", "WorkInjurySettings"]


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
