"""Patient identity (seed 003): the settlement type a patient chooses (自费, 本地医保, 省直, 市直, 区直, 省内异地, 省外异地,
公费及特约) checked against 1101 and 医保区划 before HIS records it, and the 区划 lookup the channels offer.

* **Rules** — ``data/settle_types.yaml`` (or ``identity_rules``): each 医保 type says which 参保地 it allows
  (the hospital's own 统筹区 and its districts, another 统筹区 of the province, another province, or a list) and,
  for 市直/区直/公费, the contract units (合同单位) it has.
* **Check** — 1101 (through the national client: a query, sent again when its answer is lost) with the patient's
  certificate: an insured patient whose 参保地 fits the type is verified; otherwise refused with the reason and the
  type the platform's answer points to (``suggested``). 自费 needs no 1101.
* **One visit** (挂号回执: ``his_visit_id`` + ``registered_type``): 医保 may become 自费 for one registration, never
  自费 → 医保.
* **医保区划** — the 1901 dictionary ``admdvs`` (setting ``admdvs_dictionary``), downloaded once and kept
  ``admdvs_refresh_s``; parents follow the codes (province XX0000, city XXXX00, district XXXXXX, 省本级 XX9900).

Nothing personal is answered: the verdict names types, 险种 and 区划 only.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.core.errors import ConfigurationError
from yibao.envelope.errors import BusinessRejection, PlatformError
from yibao.mobilepay.models import IdentityBody

__all__ = ["SettleType", "SettleRules", "load_rules", "IdentityService", "classify_admdvs", "parent_of"]

SHIPPED = Path(__file__).resolve().parent / "data" / "settle_types.yaml"


class SettleType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    insured: bool = True
    admdvs: Literal["local", "province", "other"] | list[str] | None = None
    contract_units: list[str] = Field(default_factory=list)
    note: str | None = None


class SettleRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    local_admdvs: str = Field(pattern=r"^\d{6}$")
    types: dict[str, SettleType]

    def allows(self, name: str, admdvs: str) -> bool:
        kind = self.types[name].admdvs
        area = classify_admdvs(admdvs, self.local_admdvs)
        if kind is None:
            return True
        if isinstance(kind, list):
            return admdvs in kind
        return area == kind

    def suggest(self, admdvs: str) -> str | None:
        """The first insured type whose 参保地 rule takes this 参保地 (no contract unit needed)."""
        for name, t in self.types.items():
            if t.insured and not t.contract_units and self.allows(name, admdvs):
                return name
        return None


def load_rules(path: str | None = None) -> SettleRules:
    source = Path(path) if path else SHIPPED
    try:
        return SettleRules.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"settlement-type rules {source}: cannot be used ({type(exc).__name__})") from None


def parent_of(code: str) -> str | None:
    """The 区划 a code belongs to: district → city, city or 省本级 → province, province → None."""
    if code.endswith("0000"):
        return None
    if code.endswith("00"):
        return code[:2] + "0000"
    return code[:4] + "00"


def classify_admdvs(admdvs: str, local: str) -> str:
    """local (the hospital's 统筹区 or one of its districts), province (another of the province), or other."""
    if admdvs == local or parent_of(admdvs) == local or admdvs[:4] == local[:4]:
        return "local"
    if admdvs[:2] == local[:2]:
        return "province"
    return "other"


class IdentityService:
    def __init__(self, rules: SettleRules, client_factory: Any, *, dictionary: str = "admdvs",
                 refresh_s: float = 86400.0) -> None:
        self.rules = rules
        self._client_factory = client_factory
        self._client: Any = None
        self.dictionary = dictionary
        self.refresh_s = refresh_s
        self._admdvs: dict[str, str] = {}
        self._admdvs_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def build(cls, settings: Any, runtime: Any) -> IdentityService:
        rules = load_rules(settings.identity_rules or None)

        def client() -> Any:
            from yibao.envelope.client import NationalClient
            from yibao.envelope.settings import PlatformSettings

            return NationalClient(PlatformSettings(), engine=runtime.engine, service="mobilepay")

        return cls(rules, client, dictionary=settings.admdvs_dictionary, refresh_s=settings.admdvs_refresh_s)

    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # --- 区划 --------------------------------------------------------------------------------------------------

    async def names(self) -> dict[str, str]:
        async with self._lock:
            if not self._admdvs or time.monotonic() - self._admdvs_at > self.refresh_s:
                reply = await self.client().call("1901", {"data": {"type": self.dictionary}})
                rows = (reply.output or {}).get("list") or []
                self._admdvs = {str(r.get("nat_dic_val_code")): str(r.get("nat_dic_val_name") or "")
                                for r in rows if isinstance(r, dict) and str(r.get("vali_flag", "1")) == "1"}
                self._admdvs_at = time.monotonic()
            return self._admdvs

    async def admdvs(self, parent: str | None) -> dict[str, Any]:
        names = await self.names()
        items = [{"code": code, "name": name, "parent": parent_of(code)} for code, name in sorted(names.items())
                 if parent_of(code) == parent]
        return {"parent": parent, "parent_name": names.get(parent or "", None), "items": items}

    # --- checks ------------------------------------------------------------------------------------------------

    async def check(self, body: IdentityBody) -> dict[str, Any]:
        rules = self.rules
        chosen = rules.types.get(body.settle_type)
        base: dict[str, Any] = {"settle_type": body.settle_type, "rules_version": rules.version}
        if chosen is None:
            return {**base, "verified": False, "reason_code": "unknown_type",
                    "reason": f"settle_type: one of {', '.join(rules.types)}"}
        if body.his_visit_id and body.registered_type:
            registered = rules.types.get(body.registered_type)
            if registered is not None and not registered.insured and chosen.insured:
                return {**base, "verified": False, "reason_code": "self_pay_to_insurance",
                        "reason": "a visit registered as 自费 never becomes 医保 (医保 → 自费 only)"}
        if chosen.contract_units and body.contract_unit not in chosen.contract_units:
            return {**base, "verified": False, "reason_code": "contract_unit",
                    "reason": f"contract_unit: one of {', '.join(chosen.contract_units)}"}
        if not chosen.insured:
            return {**base, "verified": True, "insured": False}
        try:
            data = {"mdtrt_cert_type": body.mdtrt_cert_type, "mdtrt_cert_no": body.mdtrt_cert_no}
            if body.mdtrt_cert_type == "02":
                data.update(psn_cert_type="01", certno=body.mdtrt_cert_no)
            reply = await self.client().call("1101", {"data": data})
        except BusinessRejection as exc:
            return {**base, "verified": False, "reason_code": "not_insured",
                    "reason": f"1101: {exc.err_msg[:200]}"}
        except PlatformError as exc:
            return {**base, "verified": False, "reason_code": "platform_unavailable",
                    "reason": f"1101 could not be asked now ({type(exc).__name__}); try again"}
        insured = [i for i in (reply.output or {}).get("insuinfo") or [] if isinstance(i, dict)
                   and str(i.get("psn_insu_stas", "1")) == "1"]
        if not insured:
            return {**base, "verified": False, "reason_code": "not_insured", "reason": "1101: no active insurance"}
        info = insured[0]
        admdvs = str(info.get("insuplc_admdvs") or "")
        names = await self._names_or_empty()
        out = {**base, "insutype": info.get("insutype"), "insuplc_admdvs": admdvs,
               "insuplc_name": names.get(admdvs), "area": classify_admdvs(admdvs, rules.local_admdvs)}
        if body.insuplc_admdvs and body.insuplc_admdvs != admdvs:
            return {**out, "verified": False, "reason_code": "admdvs_differs",
                    "reason": "insuplc_admdvs: the platform knows another 参保地 for this patient",
                    "suggested": rules.suggest(admdvs)}
        if not rules.allows(body.settle_type, admdvs):
            return {**out, "verified": False, "reason_code": "type_differs",
                    "reason": f"{chosen.label} does not take this 参保地", "suggested": rules.suggest(admdvs)}
        return {**out, "verified": True, "insured": True}

    async def _names_or_empty(self) -> dict[str, str]:
        try:
            return await self.names()
        except PlatformError:
            return {}
